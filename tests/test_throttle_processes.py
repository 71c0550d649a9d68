"""Limits against real gunicorn processes: client addresses through a real reverse proxy
(TRUSTED_PROXY_HOPS), forged X-Forwarded-For without it, 100 parallel coupon guesses on two
worker processes, and a non-ASCII socket token refused with the envelope."""

from __future__ import annotations

import http.client
import json
import queue
import sys
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest
import socketio

from app.sinks import redis_connect
from promotions.codes import CouponCodec
from tests.servers import ServerProcess, free_port, shown_on_failure, start_gunicorn
from tests.test_processes import NS, PASSWORD, make_helper_app

LIMIT = 50  # LOGIN_IP_MAX_ATTEMPTS: the default


@pytest.fixture(scope="module")
def shared_redis(redis_server) -> str:
    return redis_server


@pytest.fixture
def empty_redis(shared_redis) -> str:
    client = redis_connect(shared_redis)
    client.flushdb()
    client.close()
    return shared_redis


@pytest.fixture(scope="module")
def behind_proxy(shared_redis):
    """A server that trusts one proxy hop, and a real reverse proxy in front of it."""
    server = start_gunicorn(shared_redis, extra_env={"TRUSTED_PROXY_HOPS": "1"})
    port = free_port()
    proxy = ServerProcess(
        [sys.executable, "-m", "tests.proxy", str(port), str(server.port)],
        port,
        {"PATH": "/usr/bin:/bin"},
        name=f"proxy:{port}",
    )
    try:
        proxy.start()
        yield server, proxy
    finally:
        proxy.close()
        server.close()


@pytest.fixture(scope="module")
def direct(shared_redis):
    """A server with the default setting (no trusted proxy), two worker processes."""
    server = start_gunicorn(shared_redis, workers=2)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def helper_app(shared_redis, tmp_path):
    return make_helper_app(shared_redis, tmp_path)


def post(
    port: int, path: str, body: dict, *, source: str = "127.0.0.1", headers: dict | None = None
) -> tuple[int, dict, dict]:
    """POST JSON from a given loopback address; return (status, body, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read() or b"{}"), dict(answer.getheaders())
    finally:
        conn.close()


def failed_login(port: int, source: str, **headers) -> tuple[int, dict, dict]:
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.test"  # a fresh account each time
    return post(
        port,
        "/api/auth/login",
        {"email": email, "password": "wrong-password"},
        source=source,
        headers=headers,
    )


def test_behind_the_proxy_one_client_does_not_lock_out_another(request, behind_proxy, empty_redis):
    server, proxy = behind_proxy
    with shown_on_failure(request, server, proxy):
        for _ in range(LIMIT):
            assert failed_login(proxy.port, "127.0.0.2")[0] == 401
        status, body, headers = failed_login(proxy.port, "127.0.0.2")
        assert (status, body["error"]["code"]) == (429, "rate_limited")
        assert 300 - 30 <= int(headers["Retry-After"]) <= 300  # LOGIN_WINDOW_S
        # Another client behind the same proxy is served...
        assert failed_login(proxy.port, "127.0.0.3")[0] == 401
        # ...and the first cannot escape by claiming another address: the proxy appends the
        # real one, and only the last (trusted) hop counts.
        status, _, _ = failed_login(proxy.port, "127.0.0.2", **{"X-Forwarded-For": "10.1.2.3"})
        assert status == 429


def test_without_the_setting_a_forged_forwarded_for_does_not_escape(request, direct, empty_redis):
    with shown_on_failure(request, direct):
        for n in range(LIMIT):
            forged = {"X-Forwarded-For": f"10.0.{n // 250}.{n % 250 + 1}"}
            assert failed_login(direct.port, "127.0.0.4", **forged)[0] == 401
        status, body, headers = failed_login(
            direct.port, "127.0.0.4", **{"X-Forwarded-For": "10.9.9.9"}
        )
        assert (status, body["error"]["code"]) == (429, "rate_limited")
        assert int(headers["Retry-After"]) <= 300


def test_100_parallel_guesses_on_two_processes_check_at_most_the_limit(
    request, direct, empty_redis, helper_app
):
    limit = 10  # COUPON_INVALID_MAX: the default
    accounts = helper_app.extensions["accounts"]
    email = f"till-{uuid.uuid4().hex[:8]}@example.test"
    accounts.create_user(email, PASSWORD, "staff", store_id="guess-store")
    token = accounts.open_session(accounts.find_by_email(email))["token"]
    stranger = CouponCodec([("k9", b"not-the-servers-key")])
    guesses = [stranger.short_code(f"1-{n + 1}") for n in range(100)]

    def guess(code: str) -> tuple[int, str]:
        status, body, _ = post(
            direct.port,
            "/api/redemptions/preview",
            {"code": code, "basket_fen": 10_000},
            headers={"Authorization": f"Bearer {token}"},
        )
        return status, body.get("error", {}).get("code", "")

    with shown_on_failure(request, direct), ThreadPoolExecutor(100) as pool:
        answers = Counter(pool.map(guess, guesses))
    assert set(answers) <= {(422, "INVALID_CODE"), (429, "too_many_invalid_codes")}, answers
    assert 1 <= answers[(422, "INVALID_CODE")] <= limit, answers


def test_a_non_ascii_socket_token_is_refused_with_the_envelope(request, direct, empty_redis):
    refusals: queue.Queue = queue.Queue()
    client = socketio.Client(reconnection=False)
    client.on("connect_error", refusals.put, namespace=NS)
    token = quote("v1.eyJ1IjoiYSJ9.sig\u00e9\u4e2d")
    with shown_on_failure(request, direct):
        try:
            with pytest.raises(socketio.exceptions.ConnectionError):
                client.connect(
                    f"{direct.url}?token={token}",
                    transports=["websocket"],
                    namespaces=[NS],
                    wait_timeout=10,
                )
        finally:
            client.disconnect()
        refusal = refusals.get(timeout=5)
    assert refusal["data"] == {
        "error": {"code": "invalid_token", "message": "malformed token", "field": None}
    }
