"""The location endpoints: fixes one at a time or batched, consent, what the shopper can see."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from app import create_app
from config import TestConfig
from geo import keys
from tests.servers import SECRET_KEY, start_gunicorn

from .conftest import T0

STORE = {
    "id": "s1",
    "name": "Bund One",
    "brand": "B",
    "city": "Shanghai",
    "lat": 31.24,
    "lon": 121.48,
    "fence": {"type": "circle", "radius_m": 100},
}
FIX = {"lat": 31.24, "lon": 121.48, "accuracy_m": 5, "recorded_at": T0}


@pytest.fixture
def shopper(client, auth):
    marketer, _ = auth.headers("marketer")
    assert client.post("/api/stores", json=STORE, headers=marketer).status_code == 201
    headers, _ = auth.headers("shopper")
    return headers


def test_one_fix_enters_and_answers_the_verdict(client, shopper):
    body = client.post("/api/location/fix", json=FIX, headers=shopper).get_json()
    (result,) = body["results"]
    assert result["verdict"] == "ok" and result["trust"] == 100
    assert [e["kind"] for e in result["events"]] == ["enter"]
    inside = client.get("/api/location/inside", headers=shopper).get_json()["items"]
    assert [(i["store_id"], i["store"]["name"]) for i in inside] == [("s1", "Bund One")]


def test_iso_8601_time_with_offset(client, shopper):
    fix = {**FIX, "recorded_at": "2026-05-29T04:26:40+08:00"}  # T0 in Shanghai time
    body = client.post("/api/location/fix", json=fix, headers=shopper).get_json()
    assert body["results"][0]["recorded_at"] == T0


def test_batch_in_recorded_order_and_idempotent(client, shopper):
    batch = [{**FIX, "recorded_at": T0 + 130}, FIX, {**FIX, "recorded_at": T0 + 60}]
    first = client.post("/api/location/fixes", json={"fixes": batch}, headers=shopper)
    body = first.get_json()
    assert [r["recorded_at"] for r in body["results"]] == [T0, T0 + 60, T0 + 130]
    assert [e["kind"] for r in body["results"] for e in r["events"]] == ["enter", "dwell"]
    again = client.post("/api/location/fixes", json={"fixes": batch}, headers=shopper)
    assert again.get_json()["ignored"] == 3 and again.get_json()["accepted"] == 0


@pytest.mark.parametrize(("size", "status"), [(100, 200), (101, 422), (0, 422)])
def test_batch_size(client, shopper, size, status):
    fixes = [{**FIX, "recorded_at": T0 - 200 + i} for i in range(size)]
    response = client.post("/api/location/fixes", json={"fixes": fixes}, headers=shopper)
    assert response.status_code == status
    if status == 422:
        assert response.get_json()["error"]["field"] == "fixes"


def test_no_fix_before_consent(client, auth):
    headers, _ = auth.headers("shopper", consent=False)
    response = client.post("/api/location/fix", json=FIX, headers=headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "consent_required"
    assert (
        client.put("/api/me/consent", json={"location": True}, headers=headers).status_code == 200
    )
    assert client.post("/api/location/fix", json=FIX, headers=headers).status_code == 200


def test_the_shopper_sees_own_fixes_and_trust_only(client, shopper, auth):
    client.post("/api/location/fix", json={**FIX, "mock": True}, headers=shopper)
    fixes = client.get("/api/location/fixes", headers=shopper).get_json()
    assert [f["verdict"] for f in fixes["items"]] == ["mocked"]
    assert fixes["retention_s"] == 86400
    assert client.get("/api/location/trust", headers=shopper).get_json() == {"trust": 75}
    other, _ = auth.headers("shopper")
    assert client.get("/api/location/fixes", headers=other).get_json()["items"] == []


def test_future_fix_names_its_index(client, shopper):
    batch = [FIX, {**FIX, "recorded_at": T0 + 3600}]
    response = client.post("/api/location/fixes", json={"fixes": batch}, headers=shopper)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "fixes[1].recorded_at"


def test_fix_after_logout_is_refused(client, shopper):
    # The location endpoints check the session inside the engine's first round trip.
    assert client.post("/api/auth/logout", headers=shopper).status_code == 200
    response = client.post("/api/location/fix", json=FIX, headers=shopper)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "session_revoked"
    batch = client.post("/api/location/fixes", json={"fixes": [FIX]}, headers=shopper)
    assert batch.status_code == 401


def test_fix_after_logout_is_refused_when_the_state_is_cached(app, client, shopper, redis_client):
    # The session key is under the shopper's hash tag: the commit script checks it (one round
    # trip for a shopper this process has seen) and writes nothing for an ended session.
    assert client.post("/api/location/fix", json=FIX, headers=shopper).status_code == 200
    user_id = client.get("/api/me", headers=shopper).get_json()["id"]
    assert client.post("/api/auth/logout", headers=shopper).status_code == 200
    later = {**FIX, "recorded_at": T0 + 30}
    response = client.post("/api/location/fix", json=later, headers=shopper)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "session_revoked"
    assert redis_client.zcard(keys.shopper_fixes(user_id)) == 1


def test_ended_session_is_told_so_before_anything_else(client, auth):
    # A refusal that comes before the commit (no consent, a fix from the future) still answers
    # an ended session with session_revoked, not with what it would have learnt otherwise.
    headers, _ = auth.headers("shopper", consent=False)
    assert client.post("/api/auth/logout", headers=headers).status_code == 200
    response = client.post("/api/location/fix", json=FIX, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "session_revoked"
    future = {**FIX, "recorded_at": T0 + 3_600}
    response = client.post("/api/location/fix", json=future, headers=headers)
    assert response.get_json()["error"]["code"] == "session_revoked"


def test_token_from_before_the_tagged_session_keys(app, client, shopper, redis_client, clock):
    # A token issued before session keys carried the account's tag names the older key: it
    # keeps working until it expires, and logout still ends it.
    user_id = client.get("/api/me", headers=shopper).get_json()["id"]
    accounts = app.extensions["accounts"]
    redis_client.set("auth:session:old-sid", user_id, ex=3_600)
    payload = {"u": user_id, "r": "shopper", "s": None, "sid": "old-sid", "iat": int(T0)}
    old = {"Authorization": "Bearer " + accounts.signer.sign({**payload, "exp": int(T0) + 3_600})}
    assert client.post("/api/location/fix", json=FIX, headers=old).status_code == 200
    assert client.post("/api/auth/logout", headers=old).status_code == 200
    assert redis_client.exists("auth:session:old-sid") == 0
    later = {**FIX, "recorded_at": T0 + 30}
    response = client.post("/api/location/fix", json=later, headers=old)
    assert response.get_json()["error"]["code"] == "session_revoked"
    assert client.post("/api/location/fix", json=later, headers=shopper).status_code == 200


@pytest.mark.parametrize("lat", [89.0, -90.0, 85.06])
def test_fix_beyond_the_geo_index_range(client, shopper, lat):
    # Redis GEO indexes stop at +-85.05 degrees; such a fix is still a fix (found by fuzzing).
    response = client.post(
        "/api/location/fix", json={**FIX, "lat": lat, "lon": 0.0}, headers=shopper
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["results"][0]["events"] == []
    batch = [
        {**FIX, "lat": lat, "lon": 0.0, "recorded_at": T0 + 10},
        {**FIX, "lat": lat, "lon": 1.0, "recorded_at": T0 + 200},
    ]
    response = client.post("/api/location/fixes", json={"fixes": batch}, headers=shopper)
    assert response.status_code == 200, response.get_json()


def test_more_concurrent_fixes_than_pool_connections(redis_server, redis_client):
    """A fix request holds one pooled connection at a time, so a burst larger than the pool
    waits its turn instead of deadlocking until the pool timeout (503)."""
    pool, requests_n = 3, 24
    helper = create_app(TestConfig(REDIS_URL=redis_server, SECRET_KEY=SECRET_KEY))
    accounts, geo = helper.extensions["accounts"], helper.extensions["geo"]
    helper.extensions["stores"].create(dict(STORE))
    tokens = []
    for i in range(requests_n):
        accounts.create_user(f"burst{i}@example.test", "correct-horse-1", "shopper")
        session = accounts.open_session(accounts.find_by_email(f"burst{i}@example.test"))
        geo.set_consent(session["user"]["id"], True)
        tokens.append(session["token"])
    helper.extensions["redis"].close()
    env = {"REDIS_MAX_CONNECTIONS": str(pool), "BACKGROUND_TASKS": "0"}
    with start_gunicorn(redis_server, extra_env=env) as server:

        def send(token: str) -> int:
            # Two fixes: the second has an anchor (a segment search) and a commit to make.
            fixes = [
                {**FIX, "recorded_at": time.time() - 5},
                {**FIX, "lat": 31.2410, "recorded_at": time.time()},
            ]
            response = requests.post(
                server.url + "/api/location/fixes",
                json={"fixes": fixes},
                timeout=30,
                headers={"Authorization": f"Bearer {token}"},
            )
            return response.status_code

        with ThreadPoolExecutor(requests_n) as workers:
            statuses = list(workers.map(send, tokens))
        with ThreadPoolExecutor(requests_n) as workers:
            statuses += list(workers.map(send, tokens))
    assert statuses == [200] * (2 * requests_n), server.output()
