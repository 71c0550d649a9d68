"""core.throttle and the four limits built on it: sliding windows, atomic hits, Retry-After.

The limiter (`limits`' moving window) counts in wall-clock time, not the app's injectable clock,
so these tests use windows of a few seconds and wait on the wall clock with wait_for.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.sinks import redis_connect
from core.errors import RateLimited
from core.throttle import Rule, Throttle
from promotions.codes import CouponCodec

from .helpers import assert_error
from .servers import wait_for

WINDOW = 2  # seconds: short enough to wait for, long enough for a few requests


def wall_clock_passes(moment: float) -> None:
    """Wait until the wall clock has passed a moment (the limiter's windows are wall-clock)."""
    wait_for(lambda: time.time() > moment, timeout=WINDOW + 10, message="the window to pass")


# -- the limiter -------------------------------------------------------------------------------
def test_a_hit_is_counted_atomically_across_connections(redis_server):
    """100 parallel hits on separate connections: exactly `limit` pass."""
    rule = Rule("parallel", 10, 600)
    clients = [redis_connect(redis_server, decode_responses=True) for _ in range(4)]
    clients[0].flushdb()
    throttles = [Throttle(c) for c in clients]

    def attempt(i: int) -> bool:
        try:
            throttles[i % 4].hit(rule, "one-till")
            return True
        except RateLimited:
            return False

    with ThreadPoolExecutor(32) as pool:
        passed = sum(pool.map(attempt, range(100)))
    for client in clients:
        client.close()
    assert passed == 10


def test_the_window_slides(redis_client):
    """After the oldest hit leaves the window exactly one more is allowed (a fixed window that
    turned over would allow `limit` again)."""
    throttle = Throttle(redis_client)
    rule = Rule("sliding", 3, WINDOW)
    throttle.hit(rule, "x")
    first = time.time()
    wall_clock_passes(first + WINDOW / 2)
    throttle.hit(rule, "x")
    throttle.hit(rule, "x")
    with pytest.raises(RateLimited) as info:
        throttle.hit(rule, "x")
    assert 1 <= info.value.retry_after <= WINDOW
    wall_clock_passes(first + WINDOW)
    throttle.hit(rule, "x")  # the first hit has left the window
    with pytest.raises(RateLimited):
        throttle.hit(rule, "x")  # the second and third are still in it


def test_a_refused_hit_is_not_counted_and_keys_are_named_as_documented(redis_client):
    throttle = Throttle(redis_client)
    rule = Rule("named", 2, 600)
    throttle.hit(rule, "a@example.test")
    throttle.hit(rule, "a@example.test")
    for _ in range(5):
        with pytest.raises(RateLimited):
            throttle.hit(rule, "a@example.test")
    assert redis_client.llen("throttle:named/a@example.test/2/600/second") == 2
    throttle.reset(rule, "a@example.test")
    assert throttle.remaining(rule, "a@example.test") == 2


# -- the four limits over HTTP: Retry-After is the real window ---------------------------------
def _login(client, email, password="wrong-password-1", addr="10.0.0.1"):
    return client.post(
        "/api/auth/login",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": addr},
    )


def _signup(client, n, addr="10.0.0.1"):
    return client.post(
        "/api/auth/signup",
        json={"email": f"new{n}@example.test", "password": "correct-horse-1"},
        environ_base={"REMOTE_ADDR": addr},
    )


def _guest(client, n, addr="10.0.0.1"):
    return client.post("/api/auth/guest", environ_base={"REMOTE_ADDR": addr})


CASES = {
    # name: (settings, request n -> response, the request after the window)
    "login-account": (
        {"LOGIN_MAX_ATTEMPTS": 2, "LOGIN_WINDOW_S": WINDOW},
        lambda c, n: _login(c, "kim@example.test", addr=f"10.0.0.{n}"),
        lambda c: _login(c, "kim@example.test", "correct-horse-1", "10.0.9.9"),
        200,
    ),
    "login-address": (
        {"LOGIN_IP_MAX_ATTEMPTS": 2, "LOGIN_WINDOW_S": WINDOW},
        lambda c, n: _login(c, f"u{n}@example.test"),
        lambda c: _login(c, "kim@example.test", "correct-horse-1"),
        200,
    ),
    "signup": (
        {"SIGNUP_IP_MAX": 2, "SIGNUP_WINDOW_S": WINDOW},
        _signup,
        lambda c: _signup(c, 99),
        201,
    ),
    "guest": (
        {"SIGNUP_IP_MAX": 2, "SIGNUP_WINDOW_S": WINDOW},
        _guest,
        lambda c: _guest(c, 99),
        201,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_429_carries_the_real_window_and_the_next_request_after_it_passes(make_app, case):
    settings, attempt, after, status = CASES[case]
    app = make_app(**settings)
    app.extensions["accounts"].create_user("kim@example.test", "correct-horse-1", "shopper")
    client = app.test_client()
    first = time.time()
    for n in range(2):
        assert attempt(client, n).status_code in (201, 401)
    refused = attempt(client, 2)
    assert_error(refused, 429, "rate_limited")
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW
    assert after(client).status_code == 429  # still inside the window
    wall_clock_passes(first + WINDOW)
    assert after(client).status_code == status, case


def test_invalid_codes_429_carries_the_real_window_and_clears_after_it(make_app, auth):
    from .test_promo_api import Promo

    app = make_app(COUPON_INVALID_MAX=2, COUPON_INVALID_WINDOW_S=WINDOW)
    client = app.test_client()
    auth = type(auth)(app, client)
    promo = Promo(client, auth)
    headers, user = auth.headers("shopper")
    coupon_id = promo.issue(user["id"], "k1").get_json()["coupon"]["id"]
    token = client.get(f"/api/wallet/{coupon_id}", headers=headers).get_json()["token"]
    till, _ = auth.headers("staff", store_id="acme-1")
    stranger = CouponCodec([("k9", b"not-the-servers-key")])
    first = time.time()
    for n in range(2):
        code = stranger.short_code(f"{promo.cid}-{n + 1}")
        assert_error(
            client.post(
                "/api/redemptions/preview", json={"code": code, "basket_fen": 20_000}, headers=till
            ),
            422,
            "INVALID_CODE",
            "code",
        )
    body = {"code": token, "basket_fen": 20_000}
    refused = client.post("/api/redemptions/preview", json=body, headers=till)
    assert_error(refused, 429, "too_many_invalid_codes", "code")
    assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW
    wall_clock_passes(first + WINDOW)
    assert (
        client.post("/api/redemptions/preview", json=body, headers=till).get_json()["applies"]
        is True
    )
