"""Fixtures for tests against two real server processes on one Redis (import them into a test
module: module-scoped, so each module gets its own pair, started once). A module may set more
of the servers' environment in a module-level SERVER_ENV dict."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.sinks import redis_connect
from tests.servers import ServerProcess, shown_on_failure
from tests.test_processes import make_helper_app, start_servers, stop_servers


@pytest.fixture(scope="module")
def shared_redis(redis_server) -> str:
    """The session's Redis, emptied once for the module."""
    client = redis_connect(redis_server)
    client.flushdb()
    client.close()
    return redis_server


@pytest.fixture(scope="module")
def servers(shared_redis, request) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two gunicorn processes (A, B) sharing the Redis."""
    started = start_servers(shared_redis, 2, getattr(request.module, "SERVER_ENV", None))
    try:
        yield started[0], started[1]
    finally:
        stop_servers(started)


@pytest.fixture(autouse=True)
def _server_logs(request, servers) -> Iterator[None]:
    """Show what the servers logged during a test when it fails."""
    with shown_on_failure(request, *servers):
        yield


@pytest.fixture(scope="module")
def helper_app(shared_redis, tmp_path_factory):
    """An in-process app on the servers' Redis and secret: its tokens work on the servers."""
    return make_helper_app(shared_redis, tmp_path_factory.mktemp("helper"))
