"""Real server processes (gunicorn + gevent in production mode; run.py) with real clients.

The Flask-SocketIO test client refuses a message queue, so whatever crosses processes is tested
here: Socket.IO fan-out through Redis, websocket-only clients, the socket error envelope, what a
running process does while Redis goes away and comes back, and the development server.
"""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import socketio

import config
from app import create_app
from app.redis_supervisor import EmbeddedRedis, free_port
from app.sinks import QUEUE_CHANNEL, QUEUE_SHARDS, is_cluster_url, redis_connect, shard_channels
from tests.servers import (
    SECRET_KEY,
    ServerProcess,
    reported,
    shown_on_failure,
    start_dev_server,
    start_gunicorn,
    wait_for,
)

NS = "/shopper"
STORE = {
    "name": "Bailian Plaza",
    "brand": "Footfall",
    "city": "Shanghai",
    "lat": 31.2400,
    "lon": 121.4800,
    "fence": {"type": "circle", "radius_m": 100},
}
PASSWORD = "correct-horse-1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fix_at_store(**extra: Any) -> dict[str, Any]:
    """A precise fix at the store's centre, recorded now (the servers run on the real clock)."""
    return {
        "lat": STORE["lat"],
        "lon": STORE["lon"],
        "accuracy_m": 10,
        "recorded_at": time.time(),
        **extra,
    }


def queue_subscribers(redis_url: str, shards: int = QUEUE_SHARDS) -> int:
    """Count the server processes whose Socket.IO queue listener is subscribed right now (on
    a cluster: to every one of the `shards` shard channels, each asked of the master that
    serves it).

    python-socketio starts a process's listener when its first client connects.
    """
    client = redis_connect(redis_url, socket_connect_timeout=1, socket_timeout=1)
    try:
        if not is_cluster_url(redis_url):
            return dict(client.pubsub_numsub(QUEUE_CHANNEL)).get(QUEUE_CHANNEL.encode(), 0)
        counts = []
        for channel in shard_channels(QUEUE_CHANNEL, shards):
            node = client.get_redis_connection(client.get_node_from_key(channel))
            counts.append(dict(node.pubsub_shardnumsub(channel)).get(channel.encode(), 0))
        return min(counts)
    finally:
        client.close()


def start_servers(
    redis_url: str, count: int, env: dict[str, str] | None = None
) -> list[ServerProcess]:
    """Start `count` gunicorn processes side by side (in parallel: each takes ~1.5 s to boot)."""
    with ThreadPoolExecutor(count) as pool:
        futures = [
            pool.submit(start_gunicorn, redis_url, free_port(), 1, env) for _ in range(count)
        ]
    started, failures = [], []
    for future in futures:
        try:
            started.append(future.result())
        except Exception as exc:
            failures.append(exc)
    if failures:
        stop_servers(started)
        raise failures[0]
    return started


def stop_servers(servers: list[ServerProcess]) -> None:
    """Stop servers in parallel, so teardown costs one graceful shutdown, not one per process."""
    if not servers:
        return
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda server: server.close(), servers))


class ShopperSocket:
    """A python-socketio client on /shopper over the websocket transport only."""

    def __init__(self, base_url: str, token: str) -> None:
        # No automatic reconnection: a test must see it if the connection ever drops.
        self.client = socketio.Client(reconnection=False)
        self.geofence: queue.Queue[dict] = queue.Queue()
        self.errors: queue.Queue[dict] = queue.Queue()
        self.client.on("geofence", self.geofence.put, namespace=NS)
        self.client.on("error", self.errors.put, namespace=NS)
        try:
            self.client.connect(
                base_url,
                transports=["websocket"],
                namespaces=[NS],
                auth={"token": token},
                wait_timeout=10,
            )
        except BaseException:
            self.client.disconnect()
            raise

    @property
    def sid(self) -> str | None:
        return self.client.get_sid(NS)

    def call(self, event: str, data: Any = None) -> Any:
        """Send an event and return its ack."""
        return self.client.call(event, data, namespace=NS, timeout=10)

    def next_geofence(self, timeout: float = 10.0) -> dict:
        """Wait for the next `geofence` event."""
        try:
            return self.geofence.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no geofence event within {timeout} s") from None

    def close(self) -> None:
        self.client.disconnect()


def refused_connect(base_url: str, token: str | None) -> Any:
    """Try to connect, expect python-socketio's ConnectionError, return the refusal payload."""
    client = socketio.Client(reconnection=False)
    refusals: queue.Queue[Any] = queue.Queue()
    client.on("connect_error", refusals.put, namespace=NS)
    auth = {"token": token} if token is not None else None
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(
                base_url, transports=["websocket"], namespaces=[NS], auth=auth, wait_timeout=10
            )
    finally:
        client.disconnect()
    return refusals.get(timeout=5)


def make_helper_app(redis_url: str, tmp_path) -> Any:
    """An in-process app on the servers' Redis and SECRET_KEY: its tokens work on the servers."""
    return create_app(
        config.TestConfig(REDIS_URL=redis_url, SECRET_KEY=SECRET_KEY, VAR_DIR=tmp_path / "var")
    )


def session_for(app: Any, role: str) -> dict:
    """Create an account of any role directly in Redis and open a session for it."""
    accounts = app.extensions["accounts"]
    email = f"{role}-{uuid.uuid4().hex[:10]}@example.test"
    accounts.create_user(email, PASSWORD, role)
    return accounts.open_session(accounts.find_by_email(email))


def create_store(
    http: requests.Session, server: ServerProcess, marketer_token: str, store_id: str
) -> dict:
    response = http.post(
        server.url + "/api/stores",
        json={"id": store_id, **STORE},
        headers=bearer(marketer_token),
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def signup_with_consent(http: requests.Session, server: ServerProcess) -> dict:
    """Sign a shopper up and give location consent over HTTP; return the session."""
    email = f"shopper-{uuid.uuid4().hex[:10]}@example.test"
    response = http.post(
        server.url + "/api/auth/signup", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert response.status_code == 201, response.text
    session = response.json()
    response = http.put(
        server.url + "/api/me/consent",
        json={"location": True},
        headers=bearer(session["token"]),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["location"] is True
    return session


# --- two processes sharing one Redis ---------------------------------------------------------


@pytest.fixture(scope="module")
def shared_redis(redis_server) -> str:
    client = redis_connect(redis_server)
    client.flushdb()  # on a cluster: every master
    client.close()
    return redis_server


@pytest.fixture(scope="module")
def servers(shared_redis) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Servers A and B on one Redis. Sockets only ever connect to A; B serves HTTP only."""
    started = start_servers(shared_redis, 2)
    try:
        yield started[0], started[1]
    finally:
        stop_servers(started)


@pytest.fixture(autouse=True)
def _server_logs(request) -> Iterator[None]:
    """Show what servers A and B logged during a test when it fails."""
    if "servers" not in request.fixturenames:
        yield
        return
    with shown_on_failure(request, *request.getfixturevalue("servers")):
        yield


class _FreshConnections(requests.adapters.HTTPAdapter):
    """Open a new connection for every request, never one from the pool.

    gevent's pywsgi (run.py) honours `Connection: close` without saying so in the response, so
    requests would pool the connection and the next request would race the server's close.
    """

    def send(self, request, **kwargs):
        self.poolmanager.clear()
        return super().send(request, **kwargs)


def http_session() -> requests.Session:
    """A requests session without keep-alive.

    A gevent worker's graceful shutdown waits for open keep-alive connections (up to
    `keepalive` seconds), and with urllib3 2 a connection stays checked out, open, for as
    long as its Response object lives, even after the session is closed.
    """
    session = requests.Session()
    session.headers["Connection"] = "close"
    session.mount("http://", _FreshConnections())
    return session


@pytest.fixture(scope="module")
def http(servers) -> Iterator[requests.Session]:
    with http_session() as session:
        yield session


@pytest.fixture(scope="module")
def helper_app(shared_redis, tmp_path_factory):
    return make_helper_app(shared_redis, tmp_path_factory.mktemp("helper"))


@pytest.fixture(scope="module")
def store(servers, http, helper_app) -> dict:
    server_a, _ = servers
    return create_store(http, server_a, session_for(helper_app, "marketer")["token"], "bailian-1")


@pytest.fixture
def socket_shopper(helper_app) -> dict:
    """A shopper created in-process (sign-up over HTTP is throttled per address)."""
    return session_for(helper_app, "shopper")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/api/openapi.json"])
def test_http_api_through_gunicorn(servers, http, path):
    for server in servers:
        response = http.get(server.url + path, timeout=10)
        assert response.status_code == 200, (server, response.text)
        body = response.json()
        if path == "/healthz":
            assert body == {"status": "ok"}
        elif path == "/readyz":
            assert body == {"status": "ok", "redis": True}
        else:
            assert body["openapi"].startswith("3.")
            assert "/api/location/fix" in body["paths"]


def test_geofence_event_fans_out_across_processes(servers, http, store, shared_redis):
    server_a, server_b = servers
    session = signup_with_consent(http, server_b)
    shopper_id = session["user"]["id"]
    socket = ShopperSocket(server_a.url, session["token"])
    try:
        assert socket.client.transport() == "websocket"
        # A subscribes to the queue when its first client connects (python-socketio starts the
        # listener lazily); B never had a socket client, so the one subscriber is A.
        wait_for(lambda: queue_subscribers(shared_redis) >= 1, 10, "A's queue subscription")

        response = http.post(
            server_b.url + "/api/location/fix",
            json=fix_at_store(),
            headers=bearer(session["token"]),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        [result] = response.json()["results"]
        assert [e["kind"] for e in result["events"]] == ["enter"]

        event = socket.next_geofence(timeout=10)
        assert event["kind"] == "enter"
        assert event["store_id"] == store["id"]
        assert event["shopper_id"] == shopper_id
        assert event["id"] == result["events"][0]["id"]
        assert socket.geofence.empty()
    finally:
        socket.close()


def test_location_over_the_socket_acks_results(servers, store, helper_app, socket_shopper):
    server_a, _ = servers
    helper_app.extensions["geo"].set_consent(socket_shopper["user"]["id"], True)
    socket = ShopperSocket(server_a.url, socket_shopper["token"])
    try:
        ack = socket.call("location", {"fixes": [fix_at_store()]})
        assert "error" not in ack, ack
        [result] = ack["results"]
        assert result["verdict"] == "ok"
        assert [e["kind"] for e in result["events"]] == ["enter"]
        # The shopper's own room gets the event too (through the queue, same process).
        assert socket.next_geofence()["store_id"] == store["id"]
    finally:
        socket.close()


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "unauthorized"),
        ("", "unauthorized"),
        ("not-a-token", "invalid_token"),
        ("v1.eyJ1IjoiMSJ9.c2lnbmF0dXJl", "invalid_token"),
    ],
    ids=["no-auth", "empty", "garbage", "bad-signature"],
)
def test_connect_refused_without_a_valid_token(servers, token, code):
    server_a, _ = servers
    refusal = refused_connect(server_a.url, token)
    # Socket.IO's shape: a readable message plus the error envelope as data.
    assert isinstance(refusal["message"], str) and not refusal["message"].startswith("{")
    assert refusal["data"]["error"]["code"] == code


def test_connect_refused_for_a_role_that_may_not_connect(servers, helper_app):
    server_a, _ = servers
    refusal = refused_connect(server_a.url, session_for(helper_app, "marketer")["token"])
    assert refusal["data"]["error"]["code"] == "forbidden_role"


def test_connect_refused_after_logout(servers, http, socket_shopper):
    server_a, server_b = servers
    token = socket_shopper["token"]
    response = http.post(server_b.url + "/api/auth/logout", headers=bearer(token), timeout=10)
    assert response.status_code == 200, response.text
    refusal = refused_connect(server_a.url, token)
    assert refusal["data"]["error"]["code"] == "session_revoked"


def test_logout_on_one_process_closes_the_socket_on_another(
    servers, http, socket_shopper, shared_redis
):
    server_a, server_b = servers
    token = socket_shopper["token"]
    socket = ShopperSocket(server_a.url, token)
    try:
        wait_for(lambda: queue_subscribers(shared_redis) >= 1, 10, "A's queue subscription")
        response = http.post(server_b.url + "/api/auth/logout", headers=bearer(token), timeout=10)
        assert response.status_code == 200, response.text
        # B publishes the disconnect on the queue; A, which holds the socket, closes it.
        wait_for(lambda: not socket.client.connected, 10, "the socket to be closed")
    finally:
        socket.close()


@pytest.mark.parametrize(
    ("event", "payload", "code", "field"),
    [
        ("nope", {}, "unknown_event", "event"),
        ("not an identifier", None, "unknown_event", "event"),
        ("location", "31.24,121.48", "invalid_payload", "payload"),
        ("location", None, "invalid_payload", "payload"),
        (
            "location",
            {"lat": 91, "lon": 121.48, "accuracy_m": 10, "recorded_at": 1.78e9},
            "validation_error",
            "lat",
        ),
        (
            "location",
            {"lat": 31.2, "lon": 121.4, "recorded_at": 1.78e9},
            "validation_error",
            "accuracy_m",
        ),
        (
            "location",
            {"lat": 31.2, "lon": 121.4, "accuracy_m": 5, "recorded_at": 1.78e9, "x": 1},
            "unknown_field",
            "x",
        ),
        ("location", {"fixes": []}, "validation_error", "fixes"),
        ("location", {"blob": "x" * 20_000}, "payload_too_large", "payload"),
    ],
    ids=[
        "unknown",
        "odd-name",
        "string",
        "none",
        "lat-range",
        "missing",
        "extra",
        "empty-batch",
        "too-large",
    ],
)
def test_bad_events_get_an_error_ack_and_the_connection_stays(
    servers, socket_shopper, event, payload, code, field
):
    server_a, _ = servers
    socket = ShopperSocket(server_a.url, socket_shopper["token"])
    try:
        ack = socket.call(event, payload)
        assert set(ack) == {"error"}, ack
        assert ack["error"]["code"] == code
        assert ack["error"]["field"] == field
        assert ack["error"]["message"]
        # The same envelope also arrives as an `error` event naming the event.
        error_event = socket.errors.get(timeout=10)
        assert error_event["error"] == ack["error"] and error_event["event"] == event
        who = socket.call("whoami")
        assert who == {"user_id": socket_shopper["user"]["id"], "role": "shopper"}
        assert socket.client.connected
    finally:
        socket.close()


def test_lifecycle_names_sent_as_events_are_unknown_events(servers, helper_app, socket_shopper):
    """A client cannot re-run connect with another token, nor drop its own principal."""
    server_a, _ = servers
    other = session_for(helper_app, "shopper")
    socket = ShopperSocket(server_a.url, socket_shopper["token"])
    try:
        for event, payload in [("connect", {"token": other["token"]}), ("disconnect", None)]:
            ack = socket.call(event, payload)
            assert ack["error"]["code"] == "unknown_event", (event, ack)
        assert socket.call("whoami")["user_id"] == socket_shopper["user"]["id"]
    finally:
        socket.close()


def test_location_before_consent_is_refused_in_the_ack(servers, socket_shopper):
    server_a, _ = servers
    socket = ShopperSocket(server_a.url, socket_shopper["token"])
    try:
        ack = socket.call("location", fix_at_store())
        assert ack["error"]["code"] == "consent_required"
        assert socket.call("whoami")["role"] == "shopper"
    finally:
        socket.close()


# --- one process while its Redis goes away and comes back ------------------------------------


@pytest.fixture
def own_redis(tmp_path) -> Iterator[EmbeddedRedis]:
    """A dedicated server with AOF on, as in production, that a test may stop and restart."""
    server = EmbeddedRedis(tmp_path / "redis", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_server(request, own_redis) -> Iterator[ServerProcess]:
    server = start_gunicorn(own_redis.url, free_port())
    try:
        with shown_on_failure(request, server):
            yield server
    finally:
        server.close()


@pytest.fixture
def own_http(own_server) -> Iterator[requests.Session]:
    with http_session() as session:
        yield session


def test_redis_outage_and_recovery(own_redis, own_server, own_http, tmp_path):
    server, http = own_server, own_http
    helper = make_helper_app(own_redis.url, tmp_path)
    create_store(http, server, session_for(helper, "marketer")["token"], "outage-1")
    session = signup_with_consent(http, server)
    headers = bearer(session["token"])
    socket = ShopperSocket(server.url, session["token"])
    try:
        sid = socket.sid
        wait_for(lambda: queue_subscribers(own_redis.url) == 1, 10, "the queue subscription")

        own_redis.stop()

        response = http.get(server.url + "/readyz", timeout=10)
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        assert response.headers["Retry-After"].isdigit()
        response = http.get(server.url + "/api/me", headers=headers, timeout=10)
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        assert int(response.headers["Retry-After"]) > 0
        # The socket stays up: events that need storage fail in the ack, the rest still work.
        ack = socket.call("location", fix_at_store())
        assert ack["error"]["code"] == "service_unavailable"
        assert socket.call("whoami")["user_id"] == session["user"]["id"]

        own_redis.start()  # same directory and port: the AOF brings the data back (the session)

        def me_ok() -> bool:
            return http.get(server.url + "/api/me", headers=headers, timeout=5).status_code == 200

        wait_for(me_ok, 15, "GET /api/me to answer 200 again")
        assert http.get(server.url + "/readyz", timeout=5).status_code == 200
        # python-socketio's RedisManager subscribes again after its backoff (1, 2, 4 ... 60 s);
        # until then, events for this process's clients are lost.
        wait_for(lambda: queue_subscribers(own_redis.url) == 1, 20, "the queue re-subscription")

        response = http.post(
            server.url + "/api/location/fix", json=fix_at_store(), headers=headers, timeout=10
        )
        assert response.status_code == 200, response.text
        event = socket.next_geofence(timeout=10)
        assert event["kind"] == "enter" and event["store_id"] == "outage-1"
        assert socket.client.connected and socket.sid == sid  # the same connection throughout
    finally:
        socket.close()


# --- the development server ------------------------------------------------------------------


def test_run_py_serves_on_embedded_redis_and_stops_it_cleanly(tmp_path):
    var_dir = tmp_path / "var"
    server = start_dev_server(var_dir)
    try:
        with reported(server):
            with http_session() as http:
                assert http.get(server.url + "/readyz", timeout=10).json()["redis"] is True
                session = signup_with_consent(http, server)
            socket = ShopperSocket(server.url, session["token"])
            try:
                assert socket.call("whoami")["user_id"] == session["user"]["id"]
            finally:
                socket.close()
            assert f"Footfall on {server.url}" in server.output()
            assert (var_dir / "secret_key").exists()  # development mode made one
            assert int((var_dir / "redis" / "server.pid").read_text()) != server.pid

            # SIGTERM (docker stop, systemd) ends like Ctrl-C, and the embedded Redis goes down
            # through its own clean shutdown (AOF flushed), not the process-group kill after it.
            assert server.stop() == 0
    finally:
        server.close()
    assert "ready to exit" in (var_dir / "redis" / "server.log").read_text()
