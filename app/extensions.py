"""Unbound extension objects, bound to an app in create_app(), and their accessors."""

from __future__ import annotations

import select

import redis
from flask import current_app
from flask_socketio import SocketIO

socketio = SocketIO()


def get_redis() -> redis.Redis:
    """Return the app's Redis client."""
    return current_app.extensions["redis"]


def _os_poll():
    """Return the operating system's poll(), even when gevent has patched select."""
    try:
        from gevent import monkey

        if monkey.is_module_patched("select"):
            return monkey.get_original("select", "poll")
    except ImportError:
        pass
    return select.poll


_OS_POLL = _os_poll() if hasattr(select, "poll") else None

# QuickCheckConnection reads two private attributes of redis-py's Connection (`_sock`, and
# `_parser._reader`, the hiredis reader): pyproject.toml pins redis exactly and
# tests/test_extensions.py checks both assumptions against the installed version, so an upgrade
# that moves them fails the suite instead of silently falling back.
REDIS_PY_PINNED = "8.2.0"


class QuickCheckConnection(redis.Connection):
    """A pool connection whose zero-timeout "is anything pending?" check skips the gevent hub.

    redis-py asks every connection it takes from the pool whether unread data is waiting. Under
    gevent that zero-timeout check goes through the hub: measured on `POST /api/location/fix`
    (bench/geo_bench.py, one worker) it costs 0.25 ms of the request's 1.57 ms of worker CPU,
    i.e. 16 % of the throughput. A zero-timeout OS poll never blocks, so it is safe here; when
    it reports anything, redis-py's own check decides. redis-py has no public hook for this
    check (the pin and the test above keep the private reads honest).
    """

    def can_read(self, timeout: float = 0) -> bool:
        sock = self._sock
        if timeout or sock is None or _OS_POLL is None:
            return super().can_read(timeout)
        poller = _OS_POLL()
        poller.register(sock.fileno(), select.POLLIN)
        if poller.poll(0):
            return super().can_read(timeout)
        reader = getattr(self._parser, "_reader", None)  # hiredis keeps parsed-ahead data here
        return bool(reader is not None and reader.has_data())


def make_redis(url: str, max_connections: int = 256) -> redis.Redis:
    """Build a Redis client that fails fast while the server is down and reconnects after.

    The pool is bounded and blocking: a burst of a thousand requests in one gevent worker (a
    flash drop's claims) waits a moment for a free connection instead of opening a thousand
    sockets at once, whose connects would time out and answer 503 although Redis is up.
    """
    options = {}
    if url.startswith("redis://"):
        options["connection_class"] = QuickCheckConnection
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=10,
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=5.0,
        health_check_interval=30,
        **options,
    )
    return redis.Redis.from_pool(pool)  # close() then closes the pool and its connections
