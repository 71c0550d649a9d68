"""Connections per process: a gunicorn worker holds more websockets than gunicorn's old default
(1,000), health checks answer meanwhile, and per-message deflate is never negotiated.

Real parts: `gunicorn -k gevent -w 1 wsgi:app` with gunicorn.conf.py as shipped, real websocket
upgrades to /socket.io/ (raw sockets in one selectors loop, so the test holds a thousand cheaply).
"""

from __future__ import annotations

import base64
import os
import resource
import selectors
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from core.fdlimit import raise_open_file_limit
from tests.servers import http_get, start_gunicorn

OLD_DEFAULT = 1000  # gunicorn's worker_connections default, which this file must get past
HELD = OLD_DEFAULT + 100
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"  # browsers and socket.io-client


class Upgrade:
    """One websocket upgrade to Engine.IO: the request sent, the answer read so far."""

    def __init__(self, port: int, offer_deflate: bool) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        extension = f"Sec-WebSocket-Extensions: {DEFLATE_OFFER}\r\n" if offer_deflate else ""
        self.sock.sendall(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extension}\r\n"
            ).encode()
        )
        self.sock.setblocking(False)
        self.data = bytearray()

    @property
    def head(self) -> bytes:
        return bytes(self.data.partition(b"\r\n\r\n")[0])

    def served(self) -> bool:
        """Tell whether the server answered 101 and sent its first frame (Engine.IO open)."""
        head, sep, rest = self.data.partition(b"\r\n\r\n")
        return bool(sep) and len(rest) >= 2 and len(rest) >= 2 + (rest[1] & 0x7F)

    def extensions(self) -> str:
        for line in self.head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions":
                return value.strip()
        return ""

    def close(self) -> None:
        self.sock.close()


def upgrade_all(port: int, n: int, *, offer_deflate: bool, timeout: float) -> list[Upgrade]:
    """Open n websockets at once and read until each is served (or the timeout: a failure)."""
    upgrades: list[Upgrade] = []
    try:
        for _ in range(n):
            upgrades.append(Upgrade(port, offer_deflate))
        waiting = {u.sock.fileno(): u for u in upgrades}
        with selectors.DefaultSelector() as selector:
            for u in upgrades:
                selector.register(u.sock, selectors.EVENT_READ, u)
            deadline = time.monotonic() + timeout
            while waiting and time.monotonic() < deadline:
                for key, _ in selector.select(0.2):
                    u = key.data
                    chunk = u.sock.recv(65536)
                    if not chunk:
                        pytest.fail(f"the server closed a websocket: {u.head!r}")
                    u.data += chunk
                    if u.served():
                        assert u.head.startswith(b"HTTP/1.1 101"), u.head
                        selector.unregister(u.sock)
                        del waiting[u.sock.fileno()]
        served = n - len(waiting)
        assert served == n, f"only {served} of {n} websockets were served"
        return upgrades
    except BaseException:
        for u in upgrades:
            u.close()
        raise


@contextmanager
def soft_file_limit(limit: int) -> Iterator[None]:
    """Lower this process's soft open-file limit (for the children it starts meanwhile)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def file_limit() -> int:
    """This process's soft limit of open files, raised to the hard limit (held by the test)."""
    soft, hard = raise_open_file_limit()
    if soft < 2 * HELD + 200:
        pytest.skip(f"the open-file limit ({soft}, hard {hard}) is too low to hold {HELD}")
    return soft


def gunicorn_as_shipped(redis_server: str, **env: str):
    """A gunicorn with the shipped configuration (no worker_connections override)."""
    assert "GUNICORN_WORKER_CONNECTIONS" not in os.environ
    return start_gunicorn(redis_server, extra_env=env)


def test_a_worker_holds_more_websockets_than_the_old_default_and_health_answers(
    redis_server, file_limit
):
    # Started with a soft limit of 1,024 open files, a common default: the server raises it.
    with soft_file_limit(1024):
        server = gunicorn_as_shipped(redis_server)
    held: list[Upgrade] = []
    try:
        held = upgrade_all(server.port, HELD, offer_deflate=True, timeout=60)
        status, body = http_get(server.url + "/healthz", timeout=10)
        assert status == 200, body
        one_more = upgrade_all(server.port, 1, offer_deflate=True, timeout=10)
        held += one_more
        # Browsers offer per-message deflate; the server never takes it.
        assert {u.extensions() for u in held} == {""}
        assert all(u.sock.fileno() >= 0 for u in held)
    finally:
        for u in held:
            u.close()
        server.close()
