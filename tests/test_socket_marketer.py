"""The /marketer namespace (the console's live funnel) with the Flask-SocketIO test client: in
process, no message queue; the periodic push is driven by calling its tick with the test clock."""

from __future__ import annotations

import pytest

from app.sockets.marketer import COST_FACTOR, WATCHED, tick, watch_ttl

from .conftest import T0
from .test_promo_api import SHANGHAI, Promo

NS = "/marketer"
FIX = {"lat": SHANGHAI[0], "lon": SHANGHAI[1], "accuracy_m": 5}


@pytest.fixture
def socketio(app):
    return app.extensions["socketio"]


@pytest.fixture
def promo(client, auth):
    """Acme stores, a live campaign, an offer issued on entering a store (and by hand)."""
    return Promo(client, auth, visit_trigger="enter", caps={"total": 10, "per_store_day": 3})


def token_of(headers):
    return headers["Authorization"].split(" ", 1)[1]


def connect(socketio, app, client, headers):
    return socketio.test_client(
        app, namespace=NS, auth={"token": token_of(headers)}, flask_test_client=client
    )


def funnel_events(sock):
    return [m["args"][0] for m in sock.get_received(NS) if m["name"] == "funnel"]


def visit(app, client, auth, clock, lat=SHANGHAI[0]):
    """A consenting shopper's fix inside acme-1's fence (or the store at `lat`: acme-2 is
    0.01° north); the consumer counts it and issues."""
    headers, user = auth.headers("shopper")
    fix = {**FIX, "lat": lat, "recorded_at": clock.now()}
    response = client.post("/api/location/fix", json=fix, headers=headers)
    assert response.status_code == 200, response.get_json()
    app.extensions["promotions"].consumer("test").run_once()
    return headers, user


def test_connect_admits_marketers_and_admins_only(socketio, app, client, auth):
    assert not socketio.test_client(app, namespace=NS).is_connected(NS)
    for role in ("shopper", "staff", "host"):
        headers, _ = auth.headers(role, store_id="s1" if role == "staff" else None)
        assert not connect(socketio, app, client, headers).is_connected(NS), role
    for role in ("marketer", "admin"):
        headers, _ = auth.headers(role)
        assert connect(socketio, app, client, headers).is_connected(NS), role


@pytest.mark.parametrize(
    ("event", "payload", "code", "field"),
    [
        ("watch", "not an object", "invalid_payload", "payload"),
        ("watch", {}, "validation_error", "campaign_id"),
        ("watch", {"campaign_id": "../1"}, "validation_error", "campaign_id"),
        ("watch", {"campaign_id": "1", "more": 1}, "unknown_field", "more"),
        ("watch", {"campaign_id": "999999"}, "campaign_not_found", "campaign_id"),
        ("unwatch", {}, "not_watching", "campaign_id"),
        ("subscribe", {}, "unknown_event", "event"),
    ],
)
def test_bad_input_gets_an_error_ack_and_keeps_the_connection(
    socketio, app, client, auth, promo, event, payload, code, field
):
    sock = connect(socketio, app, client, promo.marketer)
    ack = sock.emit(event, payload, namespace=NS, callback=True)
    assert ack["error"]["code"] == code and ack["error"]["field"] == field
    errors = [m for m in sock.get_received(NS) if m["name"] == "error"]
    assert errors and errors[0]["args"][0]["event"] == event
    assert sock.is_connected(NS)
    ack = sock.emit("watch", {"campaign_id": promo.cid}, namespace=NS, callback=True)
    assert ack["campaign_id"] == promo.cid and ack["snapshot"]["campaign_id"] == promo.cid


def test_the_snapshot_follows_a_visit_an_issue_and_a_redemption(
    socketio, app, client, auth, promo, clock
):
    sock = connect(socketio, app, client, promo.marketer)
    first = sock.emit("watch", {"campaign_id": promo.cid}, namespace=NS, callback=True)
    assert first["snapshot"]["funnel"]["visits"] == 0 and first["snapshot"]["days"] == []
    assert first["push_s"] == app.config["FUNNEL_PUSH_S"]

    shopper, _ = visit(app, client, auth, clock)  # enter acme-1: a visit and a visit coupon
    coupon = client.get("/api/wallet", headers=shopper).get_json()["items"][0]
    till, _ = auth.headers("staff", store_id="acme-1")
    redeemed = client.post(
        "/api/redemptions",
        json={"code": coupon["token"], "basket_fen": 15_000, "order_ref": "R1"},
        headers=till,
    )
    assert redeemed.status_code == 201, redeemed.get_json()

    snap = sock.emit("watch", {"campaign_id": promo.cid}, namespace=NS, callback=True)["snapshot"]
    assert snap["funnel"]["visits"] == 1 and snap["funnel"]["coupons_from_visits"] == 1
    assert snap["funnel"]["coupons"] == 1 and snap["funnel"]["redeemed"] == 1
    assert snap["days"] == [
        {**snap["days"][0], "day": "2026-05-29", "visits_enter": 1, "issued": 1, "redeemed": 1}
    ]  # T0 is 04:26 on the 29th in Shanghai, the campaign's zone
    (store,) = snap["stores"]
    assert (store["store"], store["name"], store["issued"], store["redeemed"]) == (
        "acme-1",
        "acme-1",
        1,
        1,
    )
    offer = snap["usage"]["offers"][0]
    assert offer["total"] == {"used": 1, "cap": 10}
    assert offer["per_store_day"]["cap"] == 3
    assert offer["per_store_day"]["stores"] == [{"store_id": "acme-1", "name": "acme-1", "used": 1}]
    assert snap["usage"]["campaign"]["total"] == {"used": 1, "cap": None}
    assert snap["usage"]["day"] == "2026-05-29"
    heat = {s["store_id"]: s for s in snap["heatmap"]["stores"]}
    assert heat["acme-1"]["visits"] == 1 and heat["acme-1"]["redeemed"] == 1
    assert heat["acme-1"]["lat"] == SHANGHAI[0] and len(snap["heatmap"]["bbox"]) == 4


def test_pushes_when_changed_once_per_period_and_only_while_watched(
    socketio, app, client, auth, promo, clock, redis_client
):
    period = app.config["FUNNEL_PUSH_S"]
    assert tick(app) == {"computed": [], "pushed": []}  # nobody watches: no work
    sock = connect(socketio, app, client, promo.marketer)
    other_campaign_watcher = connect(socketio, app, client, auth.headers("admin")[0])
    sock.emit("watch", {"campaign_id": promo.cid}, namespace=NS, callback=True)
    assert tick(app) == {"computed": [promo.cid], "pushed": [promo.cid]}
    assert funnel_events(sock)[0]["funnel"]["visits"] == 0
    assert funnel_events(other_campaign_watcher) == []  # not in the campaign's room
    assert tick(app) == {"computed": [], "pushed": []}  # the period is taken

    clock.advance(period)
    assert tick(app) == {"computed": [], "pushed": []}  # nothing changed: not even computed
    assert funnel_events(sock) == []

    visit(app, client, auth, clock)
    assert tick(app) == {"computed": [], "pushed": []}  # still this period
    clock.advance(period)
    assert tick(app)["pushed"] == [promo.cid]
    (pushed,) = funnel_events(sock)
    assert pushed["funnel"]["visits"] == 1 and pushed["funnel"]["coupons"] == 1
    assert pushed["at"] == clock.now()

    assert sock.emit("unwatch", namespace=NS, callback=True) == {"unwatched": promo.cid}
    clock.advance(watch_ttl(period) + period)
    assert tick(app) == {"computed": [], "pushed": []}  # the watch expired
    assert redis_client.zcard(WATCHED) == 0


def test_a_disconnected_watcher_stops_refreshing_the_watch(
    socketio, app, client, auth, promo, clock, redis_client
):
    sock = connect(socketio, app, client, promo.marketer)
    sock.emit("watch", {"campaign_id": promo.cid}, namespace=NS, callback=True)
    sock.disconnect(NS)
    assert app.extensions["marketer_namespace"].watched() == set()
    clock.advance(watch_ttl(app.config["FUNNEL_PUSH_S"]) + 1)
    assert tick(app)["computed"] == []
    assert clock.now() > T0


def test_a_status_change_is_pushed_without_new_statistics(
    socketio, app, client, auth, promo, clock
):
    period = app.config["FUNNEL_PUSH_S"]
    sock = connect(socketio, app, client, promo.marketer)
    sock.emit("watch", {"campaign_id": promo.cid}, namespace=NS, callback=True)
    assert tick(app)["pushed"] == [promo.cid]
    funnel_events(sock)
    paused = client.post(
        f"/api/campaigns/{promo.cid}/transition", json={"to": "paused"}, headers=promo.marketer
    )
    assert paused.status_code == 200, paused.get_json()
    clock.advance(period)
    assert tick(app) == {"computed": [promo.cid], "pushed": [promo.cid]}
    assert funnel_events(sock)[0]["status"] == "paused"


def test_a_costly_snapshot_rests_its_campaign(socketio, app, client, auth, promo, clock):
    period = app.config["FUNNEL_PUSH_S"]
    sock = connect(socketio, app, client, promo.marketer)
    sock.emit("watch", {"campaign_id": promo.cid}, namespace=NS, callback=True)
    readings = iter([100.0, 100.0 + period])  # a snapshot that took a whole period
    assert tick(app, timer=lambda: next(readings))["pushed"] == [promo.cid]
    visit(app, client, auth, clock)
    for _ in range(COST_FACTOR - 1):  # it rests COST_FACTOR times its cost
        clock.advance(period)
        assert tick(app)["computed"] == []
    clock.advance(period)
    assert tick(app)["pushed"] == [promo.cid]
    assert funnel_events(sock)[-1]["funnel"]["visits"] == 1


def test_the_snapshot_agrees_with_the_analytics_and_keeps_the_top_stores(
    socketio, app, client, auth, promo, clock
):
    visit(app, client, auth, clock)
    visit(app, client, auth, clock)
    visit(app, client, auth, clock, lat=SHANGHAI[0] + 0.01)  # acme-2: fewer visits
    app.config["FUNNEL_TOP_STORES"] = 1
    sock = connect(socketio, app, client, promo.marketer)
    snap = sock.emit("watch", {"campaign_id": promo.cid}, namespace=NS, callback=True)["snapshot"]
    url = f"/api/campaigns/{promo.cid}/analytics"
    by_day = client.get(f"{url}?group=day", headers=promo.marketer).get_json()
    by_store = client.get(f"{url}?group=store", headers=promo.marketer).get_json()
    assert snap["funnel"] == by_day["funnel"] and snap["totals"] == by_day["totals"]
    assert snap["refusals"] == by_day["refusals"]
    assert snap["days"] == by_day["groups"]
    assert [g["store"] for g in by_store["groups"]] == ["acme-1", "acme-2"]
    assert snap["stores"] == by_store["groups"][:1]  # the most visited only
    assert snap["stores_total"] == 2
    assert {s["store_id"]: s["visits"] for s in snap["heatmap"]["stores"]} == {
        "acme-1": 2,
        "acme-2": 1,
    }
