"""Fixtures: a real Valkey/Redis server per test session, an app per test on an empty database."""

from __future__ import annotations

import os

import pytest

from app import create_app
from app.redis_supervisor import EmbeddedCluster, EmbeddedRedis, free_port
from app.sinks import redis_connect
from config import TestConfig
from core.clock import FrozenClock

# The one headless Chromium of the session, shared by every browser test module (a fixture
# imported into two modules would be two session fixtures: two Playwrights, which cannot run
# at once). Modules import `web` and `open_page` from tests.browser themselves.
from tests.browser import browser  # noqa: F401

T0 = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC, a Thursday; tests move the clock from here


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """Start a throwaway real server on a free port (or use TEST_REDIS_URL when given).

    With TEST_REDIS_CLUSTER=1, a throwaway cluster instead (3 masters, 1 replica each, 1 s node
    timeout), whose redis+cluster:// URL the tests get.
    """
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    if os.environ.get("TEST_REDIS_CLUSTER") == "1":
        cluster = EmbeddedCluster(tmp_path_factory.mktemp("redis-cluster"), appendonly=False)
        cluster.start()
        yield cluster.url
        cluster.stop()
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), free_port(), appendonly=False)
    server.start()
    yield server.url
    server.stop()


def pytest_collection_modifyitems(config, items):
    """With TEST_REDIS_CLUSTER=1, run only the tests that use the suite's Redis (`redis_server`).

    The others (pure unit tests, tests that start servers of their own such as the benchmark
    smoke tests, the supervisor's and dev.py's tests, and modules that define their own
    `redis_server`, such as tests/test_cluster_*.py with a cluster of their own) would run
    exactly as in the single-server run, so they are deselected there, with their count in
    pytest's summary, not skipped.
    """
    if os.environ.get("TEST_REDIS_CLUSTER") != "1":
        return
    keep, dropped = [], []
    for item in items:
        own_store = getattr(getattr(item, "module", None), "redis_server", None) is not None
        uses_redis = "redis_server" in getattr(item, "fixturenames", ()) and not own_store
        (keep if uses_redis else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session")
def session_redis_client(redis_server):
    """One client of the session's server for every test (a cluster client's start costs a
    CLUSTER SLOTS and COMMAND round, tens of ms, which every test would pay)."""
    client = redis_connect(redis_server, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def redis_client(session_redis_client):
    """The session's client on an empty database (on a cluster: every master flushed)."""
    session_redis_client.flushdb()
    return session_redis_client


@pytest.fixture
def clock():
    return FrozenClock(T0)


@pytest.fixture
def make_app(redis_server, redis_client, clock, tmp_path):
    """Build an app on the test server; keyword arguments override TestConfig settings."""

    def factory(**overrides):
        config = TestConfig(**{"REDIS_URL": redis_server, "VAR_DIR": tmp_path / "var", **overrides})
        return create_app(config, clock=clock)

    return factory


@pytest.fixture
def app(make_app):
    yield make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class AuthActions:
    """Multi-step account helpers: sign up shoppers, create staff/marketers, get headers."""

    def __init__(self, app, client):
        self.app = app
        self.client = client
        self._n = 0

    def _email(self, role: str) -> str:
        self._n += 1
        return f"{role}{self._n}@example.test"

    def signup(self, email: str | None = None, password: str = "correct-horse-1"):
        email = email or self._email("shopper")
        response = self.client.post("/api/auth/signup", json={"email": email, "password": password})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def user(self, role: str, store_id: str | None = None, password: str = "correct-horse-1"):
        """Create an account of any role directly and return its session."""
        accounts = self.app.extensions["accounts"]
        if role == "guest":
            return accounts.create_guest()
        email = self._email(role)
        accounts.create_user(email, password, role, store_id=store_id)
        return accounts.open_session(accounts.find_by_email(email))

    def headers(self, role: str = "shopper", store_id: str | None = None, consent: bool = True):
        session = self.signup() if role == "shopper" else self.user(role, store_id)
        if role == "shopper" and consent:
            self.app.extensions["geo"].set_consent(session["user"]["id"], True)
        return {"Authorization": f"Bearer {session['token']}"}, session["user"]


@pytest.fixture
def auth(app, client):
    return AuthActions(app, client)
