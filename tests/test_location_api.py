"""The location endpoints: fixes one at a time or batched, consent, what the shopper can see."""

from __future__ import annotations

import pytest

from .conftest import T0

STORE = {"id": "s1", "name": "Bund One", "brand": "B", "city": "Shanghai", "lat": 31.24,
         "lon": 121.48, "fence": {"type": "circle", "radius_m": 100}}
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
    assert client.put("/api/me/consent", json={"location": True},
                      headers=headers).status_code == 200
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


@pytest.mark.parametrize("lat", [89.0, -90.0, 85.06])
def test_fix_beyond_the_geo_index_range(client, shopper, lat):
    # Redis GEO indexes stop at +-85.05 degrees; such a fix is still a fix (found by fuzzing).
    response = client.post("/api/location/fix", json={**FIX, "lat": lat, "lon": 0.0},
                           headers=shopper)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["results"][0]["events"] == []
    batch = [{**FIX, "lat": lat, "lon": 0.0, "recorded_at": T0 + 10},
             {**FIX, "lat": lat, "lon": 1.0, "recorded_at": T0 + 200}]
    response = client.post("/api/location/fixes", json={"fixes": batch}, headers=shopper)
    assert response.status_code == 200, response.get_json()
