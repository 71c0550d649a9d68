"""The promotions REST API in process: campaigns, manual issuance, wallet, till, reports."""

from __future__ import annotations

import csv
import io

import pytest
import zxingcpp
from PIL import Image, ImageChops, ImageStat

from .conftest import T0
from .helpers import assert_error

SHANGHAI = (31.2400, 121.4800)


def store(sid, brand="Acme", lat=SHANGHAI[0], lon=SHANGHAI[1]):
    return {
        "id": sid,
        "name": sid,
        "brand": brand,
        "city": "Shanghai",
        "lat": lat,
        "lon": lon,
        "fence": {"type": "circle", "radius_m": 80},
    }


class Promo:
    """A marketer with stores, a live campaign and an offer, driven over HTTP."""

    def __init__(self, client, auth, **offer):
        self.client = client
        self.auth = auth
        self.marketer, _ = auth.headers("marketer")
        for s in (
            store("acme-1"),
            store("acme-2", lat=SHANGHAI[0] + 0.01),
            store("other-1", brand="Other", lat=SHANGHAI[0] + 0.02),
        ):
            assert client.post("/api/stores", json=s, headers=self.marketer).status_code == 201
        response = client.post(
            "/api/campaigns",
            headers=self.marketer,
            json={
                "name": "Double 11",
                "starts_at": "2026-05-28T00:00:00+08:00",
                "ends_at": T0 + 30 * 86_400,
                "targets": {"brands": ["Acme"]},
            },
        )
        assert response.status_code == 201, response.get_json()
        self.campaign = response.get_json()
        self.cid = self.campaign["id"]
        spec = {
            "name": "20 off",
            "kind": "amount_off",
            "amount_off_fen": 2000,
            "min_spend_fen": 10_000,
            "channels": ["manual", "visit"],
        }
        spec.update(offer)
        response = client.post(
            f"/api/campaigns/{self.cid}/offers", json=spec, headers=self.marketer
        )
        assert response.status_code == 201, response.get_json()
        self.offer = response.get_json()
        self.oid = self.offer["id"]
        response = client.post(
            f"/api/campaigns/{self.cid}/transition", json={"to": "scheduled"}, headers=self.marketer
        )
        assert response.get_json()["status"] == "live"

    def issue(self, shopper_id, key, **extra):
        return self.client.post(
            f"/api/campaigns/{self.cid}/offers/{self.oid}/issue",
            json={"shopper_id": shopper_id, "idempotency_key": key, **extra},
            headers=self.marketer,
        )


@pytest.fixture
def promo(client, auth):
    return Promo(client, auth)


@pytest.fixture
def shopper(auth):
    headers, user = auth.headers("shopper")
    return headers, user["id"]


def test_campaign_lifecycle_over_http(client, promo):
    m = promo.marketer
    got = client.get(f"/api/campaigns/{promo.cid}", headers=m).get_json()
    assert got["status"] == "live" and got["targets"]["brands"] == ["Acme"]
    listed = client.get("/api/campaigns?status=live", headers=m).get_json()
    assert [c["id"] for c in listed["items"]] == [promo.cid]
    paused = client.post(f"/api/campaigns/{promo.cid}/transition", json={"to": "paused"}, headers=m)
    assert paused.get_json()["status"] == "paused"
    error = assert_error(
        client.post(f"/api/campaigns/{promo.cid}/transition", json={"to": "draft"}, headers=m),
        409,
        "INVALID_TRANSITION",
        "to",
    )
    assert error["details"] == {"status": "paused"}
    patched = client.patch(f"/api/campaigns/{promo.cid}", json={"name": "Double 12"}, headers=m)
    assert patched.get_json()["name"] == "Double 12"
    assert (
        client.post(
            f"/api/campaigns/{promo.cid}/transition", json={"to": "ended"}, headers=m
        ).get_json()["status"]
        == "ended"
    )
    assert_error(
        client.patch(f"/api/campaigns/{promo.cid}", json={"name": "x"}, headers=m),
        409,
        "CAMPAIGN_ENDED",
        "campaign_id",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "kind": "amount_off"}, "amount_off_fen"),
        ({"name": "x", "kind": "gift", "gift_item": "bag", "percent_off": 5}, "percent_off"),
        ({"name": "x", "kind": "amount_off", "amount_off_fen": 1.5}, "amount_off_fen"),
        ({"name": "x", "kind": "percent_off", "percent_off": 10}, "max_off_fen"),
        ({"name": "x", "kind": "percent_off", "percent_off": 150, "max_off_fen": 1}, "percent_off"),
        (
            {
                "name": "x",
                "kind": "gift",
                "gift_item": "bag",
                "validity": {"starts_at": T0, "ends_at": T0 - 5},
            },
            "validity.ends_at",
        ),
        ({"name": "x", "kind": "gift", "gift_item": "bag", "channels": ["air"]}, "channels[0]"),
        ({"name": "x", "kind": "gift", "gift_item": "bag", "caps": {"total": -1}}, "caps.total"),
        (
            {"name": "x", "kind": "gift", "gift_item": "bag", "validity": {"days": 0}},
            "validity.days",
        ),
    ],
)
def test_bad_offers_are_refused_with_the_field(client, promo, body, field):
    response = client.post(f"/api/campaigns/{promo.cid}/offers", json=body, headers=promo.marketer)
    error = assert_error(response, 422, "validation_error", field)
    assert error["message"]


def test_unknown_target_store_is_named(client, auth):
    m, _ = auth.headers("marketer")
    response = client.post(
        "/api/campaigns",
        headers=m,
        json={"name": "x", "starts_at": T0, "ends_at": T0 + 10, "targets": {"stores": ["nope"]}},
    )
    assert_error(response, 422, "unknown_store", "targets.stores[0]")
    response = client.post(
        "/api/campaigns", headers=m, json={"name": "x", "starts_at": T0 + 10, "ends_at": T0}
    )
    assert_error(response, 422, "validation_error", "ends_at")
    campaign = client.post(
        "/api/campaigns", headers=m, json={"name": "x", "starts_at": T0, "ends_at": T0 + 10}
    ).get_json()
    response = client.patch(f"/api/campaigns/{campaign['id']}", headers=m, json={"ends_at": T0})
    assert_error(response, 422, "validation_error", "ends_at")


def test_manual_issue_is_idempotent_and_capped(client, auth, promo, shopper):
    client.patch(
        f"/api/campaigns/{promo.cid}/offers/{promo.oid}",
        json={"caps": {"total": 1}},
        headers=promo.marketer,
    )
    _, shopper_id = shopper
    first = promo.issue(shopper_id, "ticket-1")
    assert first.status_code == 201
    coupon = first.get_json()["coupon"]
    assert "token" not in coupon and coupon["code"]
    again = promo.issue(shopper_id, "ticket-1")
    assert again.status_code == 200
    assert again.get_json() == {"outcome": "existing", "coupon": coupon}
    assert_error(promo.issue(shopper_id, "ticket-2"), 409, "CAP_TOTAL_REACHED", "offer_id")
    assert_error(promo.issue("no-such-shopper", "ticket-3"), 422, "NOT_ELIGIBLE", "shopper_id")
    assert_error(
        promo.issue(shopper_id, "ticket-4", store_id="other-1"), 409, "NOT_ELIGIBLE", "offer_id"
    )
    offer = client.get(
        f"/api/campaigns/{promo.cid}/offers/{promo.oid}", headers=promo.marketer
    ).get_json()
    assert offer["counters"]["issued"] == 1 and offer["counters"]["value_fen"] == 2000


def test_wallet_codes_and_images(client, auth, promo, shopper):
    headers, shopper_id = shopper
    coupon_id = promo.issue(shopper_id, "k1").get_json()["coupon"]["id"]
    wallet = client.get("/api/wallet", headers=headers).get_json()
    assert [c["id"] for c in wallet["items"]] == [coupon_id]
    mine = client.get(f"/api/wallet/{coupon_id}", headers=headers).get_json()
    assert mine["status"] == "issued" and mine["token"].startswith("FF1.")
    png = client.get(f"/api/wallet/{coupon_id}/qr.png", headers=headers)
    assert png.mimetype == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
    assert [d.text for d in decoded] == [mine["token"]]
    svg = client.get(f"/api/wallet/{coupon_id}/qr.svg", headers=headers)
    assert svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    card = client.get(f"/api/wallet/{coupon_id}/card.png", headers=headers)
    image = Image.open(io.BytesIO(card.data))
    assert image.size == (600, 900)
    assert [d.text for d in zxingcpp.read_barcodes(image)] == [mine["token"]]
    other, _ = auth.headers("shopper")
    for suffix in ("", "/qr.png", "/card.png"):
        assert_error(
            client.get(f"/api/wallet/{coupon_id}{suffix}", headers=other),
            404,
            "NOT_FOUND",
            "coupon_id",
        )
    assert client.get("/api/wallet?status=redeemed", headers=headers).get_json()["items"] == []


def test_wallet_names_the_store_a_coupon_was_earned_at(client, promo, shopper):
    headers, shopper_id = shopper
    named = dict(store("acme-9"), name="Acme · Nanjing Road")
    assert client.post("/api/stores", json=named, headers=promo.marketer).status_code == 201
    issued = promo.issue(shopper_id, "k1", store_id="acme-9")
    assert issued.status_code == 201, issued.get_json()
    at_store = issued.get_json()["coupon"]["id"]
    nowhere = promo.issue(shopper_id, "k2").get_json()["coupon"]["id"]
    items = client.get("/api/wallet", headers=headers).get_json()["items"]
    names = {c["id"]: (c["store_id"], c["store_name"]) for c in items}
    assert names == {at_store: ("acme-9", "Acme · Nanjing Road"), nowhere: (None, None)}
    one = client.get(f"/api/wallet/{at_store}", headers=headers).get_json()
    assert one["store_name"] == "Acme · Nanjing Road"


def test_till_preview_redeem_void(client, auth, promo, shopper):
    headers, shopper_id = shopper
    coupon_id = promo.issue(shopper_id, "k1").get_json()["coupon"]["id"]
    token = client.get(f"/api/wallet/{coupon_id}", headers=headers).get_json()["token"]
    code = client.get(f"/api/wallet/{coupon_id}", headers=headers).get_json()["code"]
    till, _ = auth.headers("staff", store_id="acme-1")
    elsewhere, _ = auth.headers("staff", store_id="other-1")

    low = client.post(
        "/api/redemptions/preview", json={"code": token, "basket_fen": 5_000}, headers=till
    ).get_json()
    assert (low["applies"], low["reason"], low["discount_fen"]) == (False, "MIN_SPEND_NOT_MET", 0)
    ok = client.post(
        "/api/redemptions/preview", json={"code": code.lower(), "basket_fen": 12_000}, headers=till
    ).get_json()
    assert (ok["applies"], ok["discount_fen"], ok["pay_fen"]) == (True, 2000, 10_000)
    assert "shopper_id" not in ok["coupon"]
    foreign = client.post(
        "/api/redemptions/preview", json={"code": token, "basket_fen": 12_000}, headers=elsewhere
    ).get_json()
    assert foreign["reason"] == "WRONG_STORE"
    assert_error(
        client.post(
            "/api/redemptions",
            json={"code": token, "basket_fen": 12_000, "order_ref": "A-1"},
            headers=elsewhere,
        ),
        403,
        "WRONG_STORE",
        "code",
    )

    body = {"code": token, "basket_fen": 12_000, "order_ref": "A-1"}
    first = client.post("/api/redemptions", json=body, headers=till)
    assert first.status_code == 201
    assert first.get_json()["redemption"]["store_id"] == "acme-1"
    repeat = client.post("/api/redemptions", json=body, headers=till)
    assert repeat.status_code == 200 and repeat.get_json()["outcome"] == "existing"
    error = assert_error(
        client.post("/api/redemptions", json={**body, "order_ref": "A-2"}, headers=till),
        409,
        "ALREADY_REDEEMED",
        "code",
    )
    assert error["details"]["store_id"] == "acme-1" and error["details"]["order_ref"] == "A-1"
    assert error["details"]["at"] == T0

    assert_error(
        client.post("/api/redemptions/void", json={"coupon_id": coupon_id}, headers=elsewhere),
        403,
        "not_your_store",
        "coupon_id",
    )
    voided = client.post(
        "/api/redemptions/void", json={"code": token, "order_ref": "A-1"}, headers=till
    )
    assert voided.status_code == 200 and voided.get_json()["status"] == "issued"
    again = client.post("/api/redemptions", json={**body, "order_ref": "A-3"}, headers=till)
    assert again.status_code == 201
    ledger = client.get(
        f"/api/campaigns/{promo.cid}/ledger?type=redeem", headers=promo.marketer
    ).get_json()
    assert [e["order_ref"] for e in ledger["items"]] == ["A-1", "A-3"]


def test_forged_codes_are_refused_and_throttled(client, auth, make_app):
    app = make_app(COUPON_INVALID_MAX=3)
    client = app.test_client()
    from .conftest import AuthActions

    auth = AuthActions(app, client)
    promo = Promo(client, auth)
    headers, user = auth.headers("shopper")
    coupon_id = promo.issue(user["id"], "k1").get_json()["coupon"]["id"]
    token = client.get(f"/api/wallet/{coupon_id}", headers=headers).get_json()["token"]
    till, _ = auth.headers("staff", store_id="acme-1")
    forged = [
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        token.replace(f".{coupon_id}.", f".{promo.cid}-999."),
        "2222-2222-22",
    ]
    for code in forged:
        assert_error(
            client.post(
                "/api/redemptions/preview", json={"code": code, "basket_fen": 20_000}, headers=till
            ),
            422,
            "INVALID_CODE",
            "code",
        )
    throttled = client.post(
        "/api/redemptions/preview", json={"code": token, "basket_fen": 20_000}, headers=till
    )
    assert_error(throttled, 429, "too_many_invalid_codes", "code")
    # A sliding window from the first invalid code (its end: tests/test_throttle.py).
    window = app.config["COUPON_INVALID_WINDOW_S"]
    assert window - 30 <= int(throttled.headers["Retry-After"]) <= window


def test_marketer_void_releases_the_cap(client, promo, shopper):
    client.patch(
        f"/api/campaigns/{promo.cid}/offers/{promo.oid}",
        json={"caps": {"total": 1}},
        headers=promo.marketer,
    )
    _, shopper_id = shopper
    coupon_id = promo.issue(shopper_id, "k1").get_json()["coupon"]["id"]
    assert_error(promo.issue(shopper_id, "k2"), 409, "CAP_TOTAL_REACHED", "offer_id")
    voided = client.post(
        f"/api/coupons/{coupon_id}/void", json={"reason": "wrong shopper"}, headers=promo.marketer
    )
    assert voided.get_json()["status"] == "voided"
    assert promo.issue(shopper_id, "k2").status_code == 201
    assert_error(
        client.post(f"/api/coupons/{coupon_id}/void", json={}, headers=promo.marketer),
        409,
        "NOT_VOIDABLE",
        "coupon_id",
    )


def test_reports_over_http(client, auth, promo, shopper):
    headers, shopper_id = shopper
    other, other_user = auth.headers("shopper")
    promo.issue(shopper_id, "k1", store_id="acme-1")
    promo.issue(other_user["id"], "k2", store_id="acme-2")
    coupon = client.get("/api/wallet", headers=headers).get_json()["items"][0]
    till, _ = auth.headers("staff", store_id="acme-1")
    client.post(
        "/api/redemptions",
        json={"code": coupon["token"], "basket_fen": 15_000, "order_ref": "R1"},
        headers=till,
    )
    m = promo.marketer
    page1 = client.get(f"/api/campaigns/{promo.cid}/ledger?limit=2", headers=m).get_json()
    page2 = client.get(
        f"/api/campaigns/{promo.cid}/ledger?limit=10&after={page1['next_cursor']}", headers=m
    ).get_json()
    kinds = [e["type"] for e in page1["items"] + page2["items"]]
    assert kinds == ["status", "status", "issue", "issue", "redeem"]
    assert page2["next_cursor"] is None
    stats = client.get(f"/api/campaigns/{promo.cid}/analytics?group=store", headers=m).get_json()
    by_store = {g["store"]: g for g in stats["groups"]}
    assert by_store["acme-1"]["issued"] == 1 and by_store["acme-1"]["redeemed"] == 1
    assert by_store["acme-1"]["discount_fen"] == 2000 and by_store["acme-2"]["redeemed"] == 0
    assert stats["funnel"]["coupons"] == 2 and stats["funnel"]["coupon_to_redemption"] == 0.5
    exported = client.get(f"/api/campaigns/{promo.cid}/analytics.csv", headers=m)
    assert exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert {(r["store_id"], r["issued"], r["redeemed"]) for r in rows} == {
        ("acme-1", "1", "1"),
        ("acme-2", "1", "0"),
    }
    png = client.get(f"/api/campaigns/{promo.cid}/heatmap.png", headers=m)
    assert png.mimetype == "image/png" and Image.open(io.BytesIO(png.data)).size == (800, 600)
    assert_error(
        client.get(f"/api/campaigns/{promo.cid}/ledger?after=bogus", headers=m),
        422,
        "invalid_cursor",
        "after",
    )


def test_membership_gates_an_offer(client, auth):
    promo = Promo(client, auth)
    m = promo.marketer
    assert (
        client.post(
            "/api/membership-programs",
            json={"id": "acme-club", "name": "Acme Club", "number_pattern": "^AC[0-9]{6}$"},
            headers=m,
        ).status_code
        == 201
    )
    offer = client.post(
        f"/api/campaigns/{promo.cid}/offers",
        headers=m,
        json={
            "name": "members",
            "kind": "gift",
            "gift_item": "tote bag",
            "channels": ["manual"],
            "membership_program": "acme-club",
        },
    ).get_json()
    headers, user = auth.headers("shopper")
    url = f"/api/campaigns/{promo.cid}/offers/{offer['id']}/issue"
    body = {"shopper_id": user["id"], "idempotency_key": "m1"}
    assert_error(client.post(url, json=body, headers=m), 409, "MEMBERSHIP_REQUIRED", "offer_id")
    assert_error(
        client.put("/api/me/memberships/acme-club", json={"member_number": "123"}, headers=headers),
        422,
        "invalid_member_number",
        "member_number",
    )
    linked = client.put(
        "/api/me/memberships/acme-club", json={"member_number": "AC000001"}, headers=headers
    )
    assert linked.get_json()["member_number"] == "AC000001"
    taker, _ = auth.headers("shopper")
    assert_error(
        client.put(
            "/api/me/memberships/acme-club", json={"member_number": "AC000001"}, headers=taker
        ),
        409,
        "member_number_taken",
        "member_number",
    )
    assert client.post(url, json=body, headers=m).status_code == 201
    assert (
        client.get("/api/me/memberships", headers=headers).get_json()["items"][0]["program"]
        == "acme-club"
    )
    assert client.delete("/api/me", headers=headers).status_code == 200
    # Erasure freed the number for someone else.
    assert (
        client.put(
            "/api/me/memberships/acme-club", json={"member_number": "AC000001"}, headers=taker
        ).status_code
        == 200
    )


def test_coupon_issued_reaches_the_shoppers_socket(app, client, auth, promo, shopper):
    headers, shopper_id = shopper
    token = headers["Authorization"].split(" ", 1)[1]
    socketio = app.extensions["socketio"]
    sock = socketio.test_client(
        app, namespace="/shopper", auth={"token": token}, flask_test_client=client
    )
    sock.get_received("/shopper")
    coupon_id = promo.issue(shopper_id, "k1").get_json()["coupon"]["id"]
    received = sock.get_received("/shopper")
    assert [m["name"] for m in received] == ["coupon_issued"]
    assert received[0]["args"][0]["id"] == coupon_id
    promo.issue(shopper_id, "k1")
    assert sock.get_received("/shopper") == []


def test_visit_to_coupon_through_the_api_and_consumer(app, client, auth, promo, clock):
    """A shopper walks into an Acme store and dwells: the consumer issues one coupon."""
    headers, user = auth.headers("shopper")
    fix = {"lat": SHANGHAI[0], "lon": SHANGHAI[1], "accuracy_m": 5}
    client.post("/api/location/fix", json={**fix, "recorded_at": T0}, headers=headers)
    clock.advance(150)
    client.post("/api/location/fix", json={**fix, "recorded_at": T0 + 150}, headers=headers)
    consumer = app.extensions["promotions"].consumer("test")
    consumer.run_once()
    consumer.run_once()
    items = client.get("/api/wallet", headers=headers).get_json()["items"]
    assert len(items) == 1
    assert items[0]["source"]["channel"] == "visit" and items[0]["store_id"] == "acme-1"
    funnel = client.get(f"/api/campaigns/{promo.cid}/analytics", headers=promo.marketer).get_json()[
        "funnel"
    ]
    assert funnel["visits"] == 2 and funnel["coupons_from_visits"] == 1


def test_campaign_list_pages_newest_first_without_gaps(client, auth):
    m, _ = auth.headers("marketer")
    made = [
        client.post(
            "/api/campaigns",
            headers=m,
            json={"name": f"c{i}", "starts_at": T0 + 60, "ends_at": T0 + 600},
        ).get_json()["id"]
        for i in range(5)
    ]
    client.post(f"/api/campaigns/{made[1]}/transition", json={"to": "scheduled"}, headers=m)
    seen, cursor = [], None
    while True:
        url = "/api/campaigns?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=m).get_json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]
    scheduled = client.get("/api/campaigns?status=scheduled", headers=m).get_json()
    assert [c["id"] for c in scheduled["items"]] == [made[1]]
    assert_error(
        client.get("/api/campaigns?cursor=abc", headers=m), 422, "validation_error", "cursor"
    )


def test_nulls_in_a_patch_change_nothing(client, promo):
    m = promo.marketer
    nulls = {
        "name": None,
        "starts_at": None,
        "ends_at": None,
        "timezone": None,
        "targets": None,
        "budget": None,
        "min_trust": None,
    }
    response = client.patch(f"/api/campaigns/{promo.cid}", json=nulls, headers=m)
    assert response.status_code == 200 and response.get_json()["name"] == "Double 11"
    response = client.patch(
        f"/api/campaigns/{promo.cid}/offers/{promo.oid}",
        headers=m,
        json={"caps": None, "channels": None, "name": None, "visit_trigger": None, "active": None},
    )
    assert response.status_code == 200 and response.get_json()["name"] == "20 off"
    capped = client.patch(
        f"/api/campaigns/{promo.cid}/offers/{promo.oid}",
        headers=m,
        json={"caps": {"total": 5, "per_shopper": None}},
    )
    assert capped.get_json()["caps"]["total"] == 5


def test_targets_and_budget_in_a_patch_replace_the_old_ones(client, promo):
    m = promo.marketer
    got = client.patch(
        f"/api/campaigns/{promo.cid}",
        headers=m,
        json={"targets": {"stores": ["acme-1"]}, "budget": {"count": 9}},
    )
    body = got.get_json()
    assert body["targets"] == {"cities": [], "stores": ["acme-1"], "brands": []}
    assert body["budget"] == {"count": 9, "value_fen": None}
    emptied = client.patch(f"/api/campaigns/{promo.cid}", headers=m, json={"targets": {}})
    assert emptied.get_json()["targets"] == {"cities": [], "stores": [], "brands": []}


def test_the_analytics_csv_defuses_formulas(app, client, promo, shopper):
    """Today's ids cannot start like a formula, but the export must not rely on that: a cell
    from the statistics (an older import, a future field) goes through the same helper."""
    from promotions import keys

    _, shopper_id = shopper
    promo.issue(shopper_id, "k1", store_id="acme-1")
    r = app.extensions["redis"]
    r.hset(keys.stats(promo.cid), 'issued|o1|=HYPERLINK("http://x")|2026-05-28T20|-1', 3)
    exported = client.get(f"/api/campaigns/{promo.cid}/analytics.csv", headers=promo.marketer)
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    forged = [row for row in rows if row["issued"] == "3"]
    assert len(forged) == 1
    assert forged[0]["store_id"] == '\'=HYPERLINK("http://x")'
    assert forged[0]["channel"] == "'-1"
    assert {row["store_id"] for row in rows} >= {"acme-1"}


def test_a_stores_redemptions_of_the_day(client, auth, promo):
    """The till's list: this store's redemptions today from every campaign, voids marked."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    till, staff_user = auth.headers("staff", store_id="acme-1")
    other_till, _ = auth.headers("staff", store_id="acme-2")
    codes = []
    for n in range(3):
        _, user = auth.headers("shopper")
        codes.append(promo.issue(user["id"], f"day-{n}").get_json()["coupon"]["code"])
    for code, order, headers in (
        (codes[0], "A-1", till),
        (codes[1], "A-2", till),
        (codes[2], "B-1", other_till),
    ):
        body = {"code": code, "basket_fen": 15_000, "order_ref": order}
        assert client.post("/api/redemptions", json=body, headers=headers).status_code == 201
    voided = client.post(
        "/api/redemptions/void", json={"code": codes[1], "order_ref": "A-2"}, headers=till
    )
    assert voided.status_code == 200

    today = client.get("/api/redemptions", headers=till)
    assert today.status_code == 200, today.get_json()
    page = today.get_json()
    day = datetime.fromtimestamp(T0, ZoneInfo("Asia/Shanghai")).date()
    assert (page["store_id"], page["day"], page["timezone"]) == (
        "acme-1",
        day.isoformat(),
        "Asia/Shanghai",
    )
    rows = {(i["order_ref"], i["status"], i["code"]) for i in page["items"]}
    assert rows == {("A-1", "redeemed", codes[0]), ("A-2", "voided", codes[1])}
    first = next(i for i in page["items"] if i["order_ref"] == "A-1")
    assert (first["basket_fen"], first["discount_fen"], first["at"]) == (15_000, 2000, T0)
    assert first["staff_id"] == staff_user["id"] and first["campaign_id"] == promo.cid

    # Redeemed again after the void: both the voided and the new redemption are listed.
    again = {"code": codes[1], "basket_fen": 15_000, "order_ref": "A-3"}
    assert client.post("/api/redemptions", json=again, headers=till).status_code == 201
    items = client.get("/api/redemptions", headers=till).get_json()["items"]
    assert {(i["order_ref"], i["status"]) for i in items} == {
        ("A-1", "redeemed"),
        ("A-2", "voided"),
        ("A-3", "redeemed"),
    }

    other = client.get("/api/redemptions", headers=other_till).get_json()
    assert [i["order_ref"] for i in other["items"]] == ["B-1"]
    assert_error(
        client.get("/api/redemptions?store_id=acme-2", headers=till),
        403,
        "not_your_store",
        "store_id",
    )
    assert_error(
        client.get("/api/redemptions", headers=promo.marketer),
        422,
        "store_id_required",
        "store_id",
    )
    by_marketer = client.get("/api/redemptions?store_id=acme-1", headers=promo.marketer)
    assert len(by_marketer.get_json()["items"]) == 3
    yesterday = (day - timedelta(days=1)).isoformat()
    earlier = client.get(
        f"/api/redemptions?store_id=acme-1&day={yesterday}", headers=promo.marketer
    )
    assert earlier.get_json()["items"] == []
    assert_error(
        client.get("/api/redemptions?store_id=nope", headers=promo.marketer),
        404,
        "store_not_found",
        "store_id",
    )
    shopper, _ = auth.headers("shopper")
    assert client.get("/api/redemptions", headers=shopper).status_code == 403


def test_analytics_by_day_and_store_heatmap_points_and_grouped_csv(
    app, client, auth, promo, shopper, clock
):
    """The live funnel's REST side: groups per campaign-local day and per store (with names),
    foot traffic per store for the map, and a CSV of the groups as shown."""
    m = promo.marketer
    _, shopper_id = shopper
    promo.issue(shopper_id, "k1", store_id="acme-1")
    clock.advance(86_400)  # tokens last 12 h: new ones
    promo.marketer = m = auth.headers("marketer")[0]
    promo.issue(shopper_id, "k2", store_id="acme-2")
    walker, _ = auth.headers("shopper")
    fix = {"lat": SHANGHAI[0], "lon": SHANGHAI[1], "accuracy_m": 5, "recorded_at": clock.now()}
    assert client.post("/api/location/fix", json=fix, headers=walker).status_code == 200
    app.extensions["promotions"].consumer("test").run_once()

    by_day = client.get(f"/api/campaigns/{promo.cid}/analytics?group=day", headers=m).get_json()
    assert [(g["day"], g["issued"], g["visits_enter"]) for g in by_day["groups"]] == [
        ("2026-05-29", 1, 0),  # T0 is the 29th in Shanghai, the campaign's zone
        ("2026-05-30", 1, 1),
    ]
    by_store = client.get(f"/api/campaigns/{promo.cid}/analytics?group=store", headers=m)
    assert {(g["store"], g["name"]) for g in by_store.get_json()["groups"]} == {
        ("acme-1", "acme-1"),
        ("acme-2", "acme-2"),
    }

    heat = client.get(f"/api/campaigns/{promo.cid}/heatmap", headers=m).get_json()
    stores = {s["store_id"]: s for s in heat["stores"]}
    assert stores["acme-1"] == {
        "store_id": "acme-1",
        "name": "acme-1",
        "lat": SHANGHAI[0],
        "lon": SHANGHAI[1],
        "visits": 1,
        "issued": 1,
        "redeemed": 0,
    }
    assert stores["acme-2"]["issued"] == 1 and stores["acme-2"]["visits"] == 0
    south, west, north, east = heat["bbox"]
    assert south < SHANGHAI[0] < SHANGHAI[0] + 0.01 < north and west < SHANGHAI[1] < east

    per_day = client.get(f"/api/campaigns/{promo.cid}/analytics.csv?group=day", headers=m)
    assert per_day.mimetype == "text/csv"
    assert 'filename="campaign-' in per_day.headers["Content-Disposition"]
    assert "-by-day.csv" in per_day.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(per_day.get_data(as_text=True))))
    assert [(r["day"], r["visits"], r["issued"]) for r in rows] == [
        ("2026-05-29", "0", "1"),
        ("2026-05-30", "1", "1"),
    ]
    per_store = client.get(f"/api/campaigns/{promo.cid}/analytics.csv?group=store", headers=m)
    rows = list(csv.DictReader(io.StringIO(per_store.get_data(as_text=True))))
    assert [(r["store_id"], r["name"], r["issued"]) for r in rows] == [
        ("acme-1", "acme-1", "1"),
        ("acme-2", "acme-2", "1"),
    ]
    hourly = client.get(f"/api/campaigns/{promo.cid}/analytics.csv", headers=m)
    assert hourly.get_data(as_text=True).startswith("hour,offer_id,store_id,channel,")
    assert_error(
        client.get(f"/api/campaigns/{promo.cid}/analytics.csv?group=week", headers=m),
        422,
        "validation_error",
        "group",
    )
    assert_error(
        client.get("/api/campaigns/999/heatmap", headers=m),
        404,
        "campaign_not_found",
        "campaign_id",
    )
    assert client.get(f"/api/campaigns/{promo.cid}/heatmap", headers=walker).status_code == 403


# --- coupon cards in two languages, and the marketer's specimen of an offer's card ---


def card_image(response) -> Image.Image:
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "image/png"
    return Image.open(io.BytesIO(response.data)).convert("RGB")


def test_the_wallet_card_speaks_the_shoppers_language(client, promo, shopper):
    from promotions.cardtext import card_text
    from promotions.images import coupon_card_png

    headers, shopper_id = shopper
    coupon_id = promo.issue(shopper_id, "k-lang").get_json()["coupon"]["id"]
    url = f"/api/wallet/{coupon_id}/card.png"
    mine = client.get(f"/api/wallet/{coupon_id}", headers=headers).get_json()
    en = client.get(f"{url}?lang=en", headers=headers)
    zh = client.get(f"{url}?lang=zh-CN", headers=headers)
    assert card_image(en).tobytes() != card_image(zh).tobytes()
    # Each is the card drawn with that language's words (nothing else differs).
    codec = client.application.extensions["promotions"].codec
    for lang, response in (("en", en), ("zh-CN", zh)):
        words = card_text(mine, lang, timezone="Asia/Shanghai", expires_at=mine["expires_at"])
        expected = coupon_card_png(
            token=mine["token"],
            title=words.title,
            brand=mine["brand"],
            terms=words.terms,
            short_code=codec.short_code(coupon_id),
            expires_label=words.validity,
            status="issued",
        )
        assert response.data == expected, lang
    assert card_text(mine, "zh-CN", timezone="Asia/Shanghai", expires_at=0).title == "立减¥20"
    # No lang: Accept-Language decides (any zh* is zh-CN), else English.
    by_header = client.get(url, headers={**headers, "Accept-Language": "zh-TW,zh;q=0.9"})
    assert by_header.data == zh.data and by_header.headers["Vary"] == "Accept-Language"
    assert client.get(url, headers={**headers, "Accept-Language": "fr"}).data == en.data
    assert client.get(url, headers=headers).data == en.data
    assert_error(client.get(f"{url}?lang=fr", headers=headers), 422, "validation_error", "lang")


def test_an_offers_specimen_card_is_not_a_coupon(client, auth, promo, shopper):
    from promotions.codes import InvalidCode

    url = f"/api/campaigns/{promo.cid}/offers/{promo.oid}/card.png"
    en = card_image(client.get(f"{url}?lang=en", headers=promo.marketer))
    zh = card_image(client.get(f"{url}?lang=zh-CN", headers=promo.marketer))
    assert en.size == zh.size == (600, 900)
    assert en.tobytes() != zh.tobytes()
    # The card is drawn around a QR that holds no signed token, under a "specimen" banner
    # (which also crosses the QR), with "PREVIEW" for the short code: neither verifies.
    from app.blueprints.campaigns import SPECIMEN_TOKEN
    from promotions.cardtext import card_text
    from promotions.images import coupon_card_png

    qr = SPECIMEN_TOKEN.format(campaign_id=promo.cid, offer_id=promo.oid)
    offer = {**promo.offer, "campaign_name": "Double 11"}
    words = card_text(offer, "en", timezone="Asia/Shanghai", valid_days=7, status="specimen")
    expected = coupon_card_png(
        token=qr,
        title=words.title,
        brand="Acme",
        terms=words.terms,
        short_code="PREVIEW",
        expires_label=words.validity,
        status="specimen",
        status_label=words.status_label,
    )
    assert client.get(f"{url}?lang=en", headers=promo.marketer).data == expected
    assert (words.title, words.terms) == ("¥20 off", "min spend ¥100 · Double 11")
    codec = client.application.extensions["promotions"].codec
    for code in (qr, "PREVIEW"):
        with pytest.raises(InvalidCode):
            codec.verify(code)
    staff, _ = auth.headers("staff", store_id="acme-1")
    answer = client.post(
        "/api/redemptions/preview", json={"code": qr, "basket_fen": 50_000}, headers=staff
    )
    assert answer.status_code == 422 and answer.get_json()["error"]["code"] == "INVALID_CODE"
    # The specimen is marked: it differs from a real coupon's card by far more than the code.
    headers, shopper_id = shopper
    coupon_id = promo.issue(shopper_id, "k-specimen").get_json()["coupon"]["id"]
    real = card_image(client.get(f"/api/wallet/{coupon_id}/card.png?lang=en", headers=headers))
    changed = ImageChops.difference(real, en).convert("L").point(lambda v: 255 if v else 0)
    assert ImageStat.Stat(changed).sum[0] / 255 > 0.2 * 600 * 900
    # Roles: marketers and admins; a shopper or staff is refused; unknown offers are 404.
    admin, _ = auth.headers("admin")
    assert client.get(url, headers=admin).status_code == 200
    for role_headers in (headers, staff):
        assert_error(client.get(url, headers=role_headers), 403, "forbidden_role")
    assert_error(
        client.get(f"/api/campaigns/{promo.cid}/offers/o99/card.png", headers=promo.marketer),
        404,
        "offer_not_found",
        "offer_id",
    )


def test_a_specimen_card_shows_the_offers_own_validity(client, promo):
    from promotions.cardtext import card_text

    window = {"starts_at": T0, "ends_at": T0 + 10 * 86_400}
    offer = client.post(
        f"/api/campaigns/{promo.cid}/offers",
        json={"name": "gift", "kind": "gift", "gift_item": "帆布袋", "validity": window},
        headers=promo.marketer,
    ).get_json()
    words = card_text(
        {**offer, "campaign_name": "Double 11"},
        "zh-CN",
        timezone="Asia/Shanghai",
        expires_at=window["ends_at"],
        status="specimen",
    )
    assert words.title == "赠送帆布袋"
    assert words.terms == "无门槛 · Double 11"
    assert words.validity == "有效期至 2026-06-08 04:26（Asia/Shanghai）"
    assert words.status_label == "样券"
    url = f"/api/campaigns/{promo.cid}/offers/{offer['id']}/card.png?lang=zh-CN"
    assert card_image(client.get(url, headers=promo.marketer)).size == (600, 900)
