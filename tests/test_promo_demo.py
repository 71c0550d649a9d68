"""The demo's live East Nanjing Road campaign: a walk into a store issues a coupon that the demo
staff member redeems at the till."""

from __future__ import annotations

import pytest

from app.demo import DEMO_PASSWORD, DEMO_STAFF_STORE, seed_demo

from .conftest import T0


def login(client, email):
    response = client.post("/api/auth/login", json={"email": email, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def test_a_walk_on_nanjing_road_issues_a_coupon_the_staff_redeem(app, client):
    report = seed_demo(app)
    campaign = report["campaign"]
    assert campaign["status"] == "live" and DEMO_STAFF_STORE in campaign["targets"]["stores"]
    assert seed_demo(app)["campaign"]["id"] == campaign["id"]  # seeding twice changes nothing
    store = app.extensions["stores"].get(DEMO_STAFF_STORE)
    shopper = login(client, "shopper@demo.footfall.test")
    response = client.post(
        "/api/location/fix",
        headers=shopper,
        json={"lat": store["lat"], "lon": store["lon"], "accuracy_m": 8, "recorded_at": T0},
    )
    entered = {
        e["store_id"] for e in response.get_json()["results"][0]["events"] if e["kind"] == "enter"
    }
    assert DEMO_STAFF_STORE in entered and len(entered) > 3  # the street's fences overlap
    app.extensions["promotions"].consumer("demo-test").run_once()
    coupons = client.get("/api/wallet", headers=shopper).get_json()["items"]
    # One walk-in coupon per store entered, up to the offer's three per shopper and day.
    assert len(coupons) == 3 and {c["title"] for c in coupons} == {"¥20 off"}
    assert {c["store_id"] for c in coupons} <= entered
    coupon = coupons[0]
    staff = login(client, "staff@demo.footfall.test")
    redeemed = client.post(
        "/api/redemptions",
        headers=staff,
        json={"code": coupon["code"], "basket_fen": 12_800, "order_ref": "demo-1"},
    )
    assert redeemed.status_code == 201, redeemed.get_json()
    assert redeemed.get_json()["discount_fen"] == 2_000


def test_the_demo_street_has_creatures_with_rarer_ones_in_the_stores(app, client):
    report = seed_demo(app)
    store = app.extensions["stores"].get(DEMO_STAFF_STORE)
    shopper = login(client, "shopper@demo.footfall.test")
    client.post(
        "/api/location/fix",
        headers=shopper,
        json={"lat": store["lat"], "lon": store["lon"], "accuracy_m": 8, "recorded_at": T0},
    )
    spawns = client.get("/api/game/spawns", headers=shopper).get_json()["spawns"]
    assert spawns and {s["campaign_id"] for s in spawns} == {report["campaign"]["id"]}
    in_stores = [s for s in spawns if s["store_id"]]
    assert in_stores and all(s["id"].startswith("s:") for s in in_stores)
    assert all(s["rarity"] != "legendary" for s in spawns if not s["store_id"])


def test_the_demo_has_a_scheduled_stream_with_products_and_a_host(app, client):
    report = seed_demo(app)
    stream = report["stream"]
    assert stream["status"] == "scheduled" and len(stream["products"]) == 3
    assert stream["campaign_id"] == report["campaign"]["id"]
    grants = app.extensions["promotions"].campaigns.grants(report["campaign"]["id"])
    assert [g["stream_id"] for g in grants] == [stream["id"]]  # its host may drop the offers
    assert seed_demo(app)["stream"]["id"] == stream["id"]
    host = login(client, "host@demo.footfall.test")
    # The one drop offer, apart from the walk-in coupons a shopper may have used up today.
    offers = client.get(f"/api/streams/{stream['id']}/offers", headers=host).get_json()["items"]
    assert [o["name"] for o in offers] == ["Live flash: ¥30 off ¥150"]
    mine = client.get(f"/api/streams/{stream['id']}", headers=host).get_json()
    assert len(mine["hosts"]) == 1
    product = stream["products"][0]
    image = client.get(f"/api/streams/{stream['id']}/products/{product['id']}/thumb.jpg")
    assert image.status_code == 200 and image.mimetype == "image/jpeg"


SHANGHAI_MIDNIGHT = T0 - 16_000  # 2026-05-29 00:00 in Shanghai (UTC+8)


@pytest.mark.parametrize("hour", [4, 15, 23])
def test_the_demo_street_is_open_at_any_hour_it_is_walked(app, client, clock, hour):
    # The demo is walkable at any time of day, and what it shows agrees with itself: every
    # store a walk enters, and every store with a creature, is open in the nearby list.
    clock.set(SHANGHAI_MIDNIGHT + hour * 3600)
    seed_demo(app)
    store = app.extensions["stores"].get(DEMO_STAFF_STORE)
    shopper = login(client, "shopper@demo.footfall.test")
    response = client.post(
        "/api/location/fix",
        headers=shopper,
        json={
            "lat": store["lat"],
            "lon": store["lon"],
            "accuracy_m": 8,
            "recorded_at": clock.now(),
        },
    )
    entered = {
        e["store_id"] for e in response.get_json()["results"][0]["events"] if e["kind"] == "enter"
    }
    assert DEMO_STAFF_STORE in entered
    nearby = client.get(
        f"/api/stores/nearby?lat={store['lat']}&lon={store['lon']}&radius_m=400&limit=200",
        headers=shopper,
    ).get_json()["items"]
    open_now = {s["id"]: s["open_now"] for s in nearby}
    assert all(open_now[sid] for sid in entered), open_now
    spawns = client.get("/api/game/spawns", headers=shopper).get_json()["spawns"]
    in_stores = {s["store_id"] for s in spawns if s["store_id"]}
    assert in_stores and all(open_now.get(sid, True) for sid in in_stores)
