"""Unbound extension objects, bound to an app in create_app(), and their accessors."""

from __future__ import annotations

import redis
from flask import current_app
from flask_socketio import SocketIO

from core.clock import Clock

socketio = SocketIO()


def get_redis() -> redis.Redis:
    """Return the app's Redis client."""
    return current_app.extensions["redis"]


def get_clock() -> Clock:
    """Return the app's clock."""
    return current_app.extensions["clock"]


def make_redis(url: str) -> redis.Redis:
    """Build a Redis client that fails fast while the server is down and reconnects after."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=5.0,
        health_check_interval=30,
    )
