"""Unbound extension objects, bound to an app in create_app(), and their accessors."""

from __future__ import annotations

import redis
from flask import current_app
from flask_socketio import SocketIO

from .sinks import is_cluster_url, redis_connect

socketio = SocketIO()


def get_redis() -> redis.Redis:
    """Return the app's Redis client."""
    return current_app.extensions["redis"]


def make_redis(url: str, max_connections: int = 256) -> redis.Redis | redis.RedisCluster:
    """Build a Redis client that fails fast while the server is down and reconnects after.

    The pool is bounded and blocking: a burst of a thousand requests in one gevent worker (a
    flash drop's claims) waits a moment for a free connection instead of opening a thousand
    sockets at once, whose connects would time out and answer 503 although Redis is up.
    A cluster URL (redis+cluster://) gives a cluster client with such a pool per node.
    """
    options = {
        "max_connections": max_connections,
        "timeout": 10,
        "decode_responses": True,
        "socket_connect_timeout": 1.0,
        "socket_timeout": 5.0,
    }
    if is_cluster_url(url):
        # One bounded, blocking pool per node (the cluster client builds them).
        return redis_connect(url, connection_pool_class=redis.BlockingConnectionPool, **options)
    pool = redis.BlockingConnectionPool.from_url(
        url,
        health_check_interval=30,
        **options,
    )
    return redis.Redis.from_pool(pool)  # close() then closes the pool and its connections
