"""JSON bodies: booleans and strings are not numbers; times lie between 2000 and 2100."""

from __future__ import annotations

import pytest

from .conftest import T0
from .helpers import assert_error

FIX = {"lat": 31.24, "lon": 121.48, "accuracy_m": 10, "recorded_at": T0}
STORE = {"name": "S", "brand": "B", "city": "Shanghai", "lat": 31.23, "lon": 121.47}
CAMPAIGN = {"name": "C", "starts_at": T0, "ends_at": T0 + 86400}
OFFER = {"name": "O", "kind": "amount_off", "amount_off_fen": 500}
GAME = {"species": [{"id": "cat", "name": "Cat", "rarity": "common", "weight": 1}]}


def stream(people_host_id: str, **changes) -> dict:
    return {
        "title": "T",
        "brand": "B",
        "playback_url": "https://video.example/a",
        "hosts": [people_host_id],
        "starts_at": T0 + 3600,
        **changes,
    }


# (role, method, path, body, field)
BOOLEANS = [
    ("shopper", "post", "/api/location/fix", {**FIX, "lat": True}, "lat"),
    ("shopper", "post", "/api/location/fix", {**FIX, "lon": False}, "lon"),
    ("shopper", "post", "/api/location/fix", {**FIX, "accuracy_m": True}, "accuracy_m"),
    ("shopper", "post", "/api/location/fix", {**FIX, "speed_mps": True}, "speed_mps"),
    ("shopper", "post", "/api/location/fix", {**FIX, "mock": 1}, "mock"),
    (
        "shopper",
        "post",
        "/api/location/fixes",
        {"fixes": [FIX, {**FIX, "lat": True}]},
        "fixes[1].lat",
    ),
    ("shopper", "put", "/api/me/consent", {"location": 1}, "location"),
    ("marketer", "post", "/api/stores", {**STORE, "lon": True}, "lon"),
    ("marketer", "post", "/api/campaigns", {**CAMPAIGN, "min_trust": True}, "min_trust"),
    ("marketer", "post", "/api/campaigns", {**CAMPAIGN, "budget": {"count": True}}, "budget.count"),
    (
        "marketer",
        "post",
        "/api/campaigns/1/offers",
        {**OFFER, "amount_off_fen": True},
        "amount_off_fen",
    ),
    (
        "marketer",
        "post",
        "/api/campaigns/1/offers",
        {**OFFER, "caps": {"total": True}},
        "caps.total",
    ),
    ("marketer", "post", "/api/campaigns/1/offers", {**OFFER, "active": 1}, "active"),
    (
        "marketer",
        "put",
        "/api/campaigns/1/game",
        {"species": [{**GAME["species"][0], "weight": True}]},
        "species[0].weight",
    ),
    (
        "marketer",
        "put",
        "/api/campaigns/1/game",
        {"species": [{**GAME["species"][0], "points": True}]},
        "species[0].points",
    ),
    (
        "marketer",
        "put",
        "/api/campaigns/1/game",
        {**GAME, "density_per_cell": True},
        "density_per_cell",
    ),
]
# Numbers spelled as strings: JSON has one spelling for a number.
STRINGS = [
    ("shopper", "post", "/api/location/fix", {**FIX, "lat": "31.24"}, "lat"),
    ("marketer", "post", "/api/stores", {**STORE, "lat": "31.23"}, "lat"),
    (
        "marketer",
        "post",
        "/api/campaigns/1/offers",
        {**OFFER, "amount_off_fen": "500"},
        "amount_off_fen",
    ),
    (
        "marketer",
        "post",
        "/api/campaigns/1/offers",
        {**OFFER, "amount_off_fen": 500.5},
        "amount_off_fen",
    ),
]


@pytest.mark.parametrize(("role", "method", "path", "body", "field"), BOOLEANS + STRINGS)
def test_a_boolean_or_a_string_is_not_a_number(client, auth, role, method, path, body, field):
    headers, _ = auth.headers(role)
    response = getattr(client, method)(path, json=body, headers=headers)
    assert_error(response, 422, "validation_error", field)


def test_integers_are_fine_numbers(client, auth):
    headers, _ = auth.headers("shopper")
    response = client.post(
        "/api/location/fix", headers=headers, json={**FIX, "lat": 31, "lon": 121, "accuracy_m": 10}
    )
    assert response.status_code == 200, response.get_json()


# Unix seconds outside 2000-01-01..2100-01-01, huge numbers and ISO times at the calendar's ends.
BAD_TIMES = [
    1e308,
    -1e308,
    0,
    -1,
    946_684_799,
    4_102_444_801,
    True,
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "1999-12-31T23:59:59Z",
]


@pytest.mark.parametrize("value", BAD_TIMES, ids=repr)
def test_stream_start_is_a_sane_time(client, auth, value):
    marketer, _ = auth.headers("marketer")
    _, host = auth.headers("host")
    response = client.post(
        "/api/streams", json=stream(host["id"], starts_at=value), headers=marketer
    )
    assert_error(response, 422, "validation_error", "starts_at")
    created = client.post("/api/streams", json=stream(host["id"]), headers=marketer)
    assert created.status_code == 201, created.get_json()
    response = client.patch(
        f"/api/streams/{created.get_json()['id']}", json={"starts_at": value}, headers=marketer
    )
    assert_error(response, 422, "validation_error", "starts_at")


@pytest.mark.parametrize("value", BAD_TIMES, ids=repr)
@pytest.mark.parametrize(
    ("role", "path", "body", "field"),
    [
        ("marketer", "/api/campaigns", {**CAMPAIGN, "ends_at": T0 + 86400}, "starts_at"),
        ("marketer", "/api/campaigns", {**CAMPAIGN}, "ends_at"),
        (
            "marketer",
            "/api/campaigns/1/offers",
            {**OFFER, "validity": {"starts_at": T0, "ends_at": T0 + 60}},
            "validity.starts_at",
        ),
        ("shopper", "/api/location/fix", {**FIX}, "recorded_at"),
    ],
)
def test_every_time_taken_is_a_sane_time(client, auth, value, role, path, body, field):
    headers, _ = auth.headers(role)
    *parents, leaf = field.split(".")
    body = {k: (dict(v) if isinstance(v, dict) else v) for k, v in body.items()}
    target = body
    for name in parents:
        target = target[name]
    target[leaf] = value
    assert_error(client.post(path, json=body, headers=headers), 422, "validation_error", field)


@pytest.mark.parametrize("value", [946_684_800, 4_102_444_800, "2000-01-01T00:00:00Z"])
def test_the_ends_of_the_range_are_accepted(client, auth, value):
    marketer, _ = auth.headers("marketer")
    _, host = auth.headers("host")
    response = client.post(
        "/api/streams", json=stream(host["id"], starts_at=value), headers=marketer
    )
    assert response.status_code == 201, response.get_json()
