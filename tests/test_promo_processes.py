"""Promotions across real server processes: exact caps under concurrency, visit coupons issued
by the servers' consumer group, and `coupon_issued` fanned out to a socket on another process."""

from __future__ import annotations

import queue
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import socketio

from app.sinks import redis_connect
from promotions import keys
from promotions.models import CampaignIn, OfferIn
from tests.servers import wait_for
from tests.test_processes import (
    NS,
    bearer,
    session_for,
)
from tests.two_servers import (  # noqa: F401 - fixtures
    _server_logs,
    helper_app,
    servers,
    shared_redis,
)

STORE = {
    "id": "bailian-promo",
    "name": "Bailian Plaza",
    "brand": "Bailian",
    "city": "Shanghai",
    "lat": 31.2400,
    "lon": 121.4800,
    "fence": {"type": "circle", "radius_m": 100},
}


@pytest.fixture(scope="module")
def campaign(helper_app) -> str:
    """A live campaign (real clock) targeting the Bailian store, with a marketer session."""
    promos = helper_app.extensions["promotions"]
    helper_app.extensions["stores"].create(dict(STORE))
    now = time.time()
    created = promos.campaigns.create(
        CampaignIn(
            name="Processes",
            starts_at=now - 60,
            ends_at=now + 3600,
            targets={"stores": [STORE["id"]]},
        ),
        actor="test",
    )
    promos.campaigns.transition(created["id"], "scheduled", actor="test")
    return created["id"]


def add_offer(helper_app, cid: str, **spec) -> str:
    body = {
        "name": "10 off",
        "kind": "amount_off",
        "amount_off_fen": 1000,
        "channels": ["manual"],
        **spec,
    }
    promos = helper_app.extensions["promotions"]
    return promos.campaigns.create_offer(cid, OfferIn(**body), actor="test")["id"]


def shoppers(helper_app, n: int) -> list[str]:
    return [session_for(helper_app, "shopper")["user"]["id"] for _ in range(n)]


def keep_alive_session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=64))
    return session


def test_cap_of_50_holds_for_200_concurrent_attempts_on_two_processes(
    servers, helper_app, campaign, shared_redis
):
    oid = add_offer(helper_app, campaign, caps={"total": 50})
    marketer = bearer(session_for(helper_app, "marketer")["token"])
    people = shoppers(helper_app, 200)
    url = f"/api/campaigns/{campaign}/offers/{oid}/issue"

    def attempt(i: int) -> tuple[int, str]:
        server = servers[i % 2]
        response = http.post(
            server.url + url,
            headers=marketer,
            timeout=30,
            json={"shopper_id": people[i], "idempotency_key": f"a-{i}"},
        )
        body = response.json()
        return response.status_code, body.get("error", {}).get("code", "")

    with keep_alive_session() as http, ThreadPoolExecutor(40) as pool:
        outcomes = Counter(pool.map(attempt, range(200)))
    assert outcomes == {(201, ""): 50, (409, "CAP_TOTAL_REACHED"): 150}
    r = redis_connect(shared_redis, decode_responses=True)
    assert r.hget(keys.offer(campaign, oid), "issued") == "50"
    issues = [
        f for _, f in r.xrange(keys.ledger(campaign)) if f["type"] == "issue" and f["offer"] == oid
    ]
    assert len(issues) == 50 and len({f["coupon"] for f in issues}) == 50
    assert len({f["shopper"] for f in issues}) == 50
    r.close()


def test_per_shopper_cap_and_idempotency_hold_across_processes(servers, helper_app, campaign):
    oid = add_offer(helper_app, campaign, caps={"per_shopper": 3})
    marketer = bearer(session_for(helper_app, "marketer")["token"])
    [shopper] = shoppers(helper_app, 1)
    url = f"/api/campaigns/{campaign}/offers/{oid}/issue"

    def attempt(args: tuple[int, str]) -> tuple[int, str]:
        i, key = args
        response = http.post(
            servers[i % 2].url + url,
            headers=marketer,
            timeout=30,
            json={"shopper_id": shopper, "idempotency_key": key},
        )
        body = response.json()
        return response.status_code, body.get("coupon", {}).get("id") or body["error"]["code"]

    with keep_alive_session() as http, ThreadPoolExecutor(20) as pool:
        distinct = list(pool.map(attempt, [(i, f"d-{i}") for i in range(20)]))
        same = list(pool.map(attempt, [(i, "same-key") for i in range(20)]))
    assert Counter(status for status, _ in distinct) == {201: 3, 409: 17}
    assert {code for status, code in distinct if status == 409} == {"CAP_PER_SHOPPER_REACHED"}
    # The per-shopper cap is spent, so the shared key is refused every time: nothing issued.
    assert {code for _, code in same} == {"CAP_PER_SHOPPER_REACHED"}

    oid2 = add_offer(helper_app, campaign)
    url = f"/api/campaigns/{campaign}/offers/{oid2}/issue"
    with keep_alive_session() as http, ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(attempt, [(i, "retry-key") for i in range(20)]))
    assert Counter(status for status, _ in replies) == {201: 1, 200: 19}
    assert len({coupon for _, coupon in replies}) == 1


def test_dwell_on_one_process_issues_once_and_reaches_a_socket_on_the_other(
    servers, helper_app, campaign
):
    server_a, server_b = servers
    add_offer(helper_app, campaign, channels=["visit"], visit_trigger="dwell")
    session = session_for(helper_app, "shopper")
    helper_app.extensions["geo"].set_consent(session["user"]["id"], True)
    received: queue.Queue[dict] = queue.Queue()
    client = socketio.Client(reconnection=False)
    client.on("coupon_issued", received.put, namespace=NS)
    client.connect(
        server_a.url,
        transports=["websocket"],
        namespaces=[NS],
        auth={"token": session["token"]},
        wait_timeout=10,
    )
    try:
        now = time.time()
        fixes = [
            {"lat": STORE["lat"], "lon": STORE["lon"], "accuracy_m": 5, "recorded_at": now - 170},
            {
                "lat": STORE["lat"],
                "lon": STORE["lon"] + 0.00001,
                "accuracy_m": 5,
                "recorded_at": now - 10,
            },
        ]
        with requests.Session() as http:
            response = http.post(
                server_b.url + "/api/location/fixes",
                json={"fixes": fixes},
                headers=bearer(session["token"]),
                timeout=10,
            )
            assert response.status_code == 200, response.text
            kinds = [e["kind"] for r in response.json()["results"] for e in r["events"]]
            assert kinds == ["enter", "dwell"]
            # Both servers' consumers read the group; exactly one of them handles the dwell.
            coupon = received.get(timeout=15)
            assert coupon["source"]["channel"] == "visit"
            assert coupon["store_id"] == STORE["id"]
            wallet = wait_for(
                lambda: http.get(
                    server_b.url + "/api/wallet", headers=bearer(session["token"]), timeout=10
                ).json()["items"],
                10,
                "the wallet",
            )
            assert [c["id"] for c in wallet] == [coupon["id"]]
            # Re-sending the same fixes produces no new events and no second coupon.
            http.post(
                server_a.url + "/api/location/fixes",
                json={"fixes": fixes},
                headers=bearer(session["token"]),
                timeout=10,
            )
        with pytest.raises(queue.Empty):
            received.get(timeout=2)
    finally:
        client.disconnect()
