"""The app's Redis client: the pinned redis-py internals QuickCheckConnection relies on."""

from __future__ import annotations

import socket
from importlib.metadata import version

import redis

from app.extensions import REDIS_PY_PINNED, QuickCheckConnection, make_redis


def test_redis_py_is_the_pinned_version():
    # QuickCheckConnection reads redis-py's private `_sock` and `_parser._reader`: an upgrade
    # must come with a new look at them (and a new pin), never silently.
    assert version("redis") == redis.__version__ == REDIS_PY_PINNED


def test_the_app_client_uses_the_quick_check_on_redis_urls(redis_server):
    r = make_redis(redis_server)
    try:
        assert r.connection_pool.connection_class is QuickCheckConnection
        assert r.ping() is True
        conn = r.connection_pool.get_connection()
        try:
            # The private attributes the check reads exist, with the types it expects.
            assert isinstance(conn._sock, socket.socket)
            assert callable(conn._parser._reader.has_data)
        finally:
            r.connection_pool.release(conn)
    finally:
        r.close()


def test_the_quick_check_sees_pending_and_parsed_ahead_replies(redis_server):
    r = make_redis(redis_server)
    conn = r.connection_pool.get_connection()
    try:
        assert conn.can_read() is False  # nothing pending
        conn.send_command("PING")
        conn.send_command("PING")
        # A reply waiting in the socket: the OS poll sees it (wait for it to arrive).
        assert conn.can_read(timeout=5) is True
        assert conn.read_response() == "PONG"
        # The second reply was read from the socket with the first and now sits in hiredis's
        # buffer, where no poll of the socket can see it: the check must still say so.
        assert conn.can_read() is True
        assert conn.read_response() == "PONG"
        assert conn.can_read() is False
    finally:
        r.connection_pool.release(conn)
        r.close()
