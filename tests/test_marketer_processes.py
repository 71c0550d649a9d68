"""The live funnel across two real gunicorn processes: a visit made through one process reaches a
marketer watching on the other, and with watchers on both the snapshot is computed once per
period (counted from the servers' logs, not from time)."""

from __future__ import annotations

import json
import queue
import time
from collections import Counter

import pytest
import requests
import socketio

from promotions.models import CampaignIn, OfferIn
from tests.servers import ServerProcess
from tests.test_processes import bearer, signup_with_consent
from tests.two_servers import _server_logs, helper_app, servers, shared_redis  # noqa: F401

NS = "/marketer"
PUSH_S = 0.5
SERVER_ENV = {"FUNNEL_PUSH_S": str(PUSH_S)}  # two processes pushing every 0.5 s
STORE = {
    "id": "funnel-bailian",
    "name": "Bailian Funnel",
    "brand": "FunnelBrand",
    "city": "Shanghai",
    "lat": 31.2300,
    "lon": 121.4700,
    "fence": {"type": "circle", "radius_m": 100},
}


@pytest.fixture(scope="module")
def marketer(helper_app) -> dict:
    accounts = helper_app.extensions["accounts"]
    accounts.create_user("funnel-marketer@example.test", "correct-horse-1", "marketer")
    return accounts.open_session(accounts.find_by_email("funnel-marketer@example.test"))


@pytest.fixture(scope="module")
def store(helper_app) -> dict:
    return helper_app.extensions["stores"].create(dict(STORE))


def live_campaign(helper_app, name: str) -> str:
    """A live campaign on the real clock targeting the store, with an offer issued on entry."""
    promos = helper_app.extensions["promotions"]
    now = time.time()
    cid = promos.campaigns.create(
        CampaignIn(
            name=name, starts_at=now - 60, ends_at=now + 3600, targets={"stores": [STORE["id"]]}
        ),
        actor="test",
    )["id"]
    promos.campaigns.create_offer(
        cid,
        OfferIn(
            name="hello",
            kind="amount_off",
            amount_off_fen=500,
            channels=["visit"],
            visit_trigger="enter",
        ),
        actor="test",
    )
    promos.campaigns.transition(cid, "scheduled", actor="test")
    return cid


class Watcher:
    """A marketer's python-socketio client on /marketer (websocket only, no reconnection)."""

    def __init__(self, url: str, token: str) -> None:
        self.pushes: queue.Queue[dict] = queue.Queue()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("funnel", self.pushes.put, namespace=NS)
        self.sio.connect(
            url, transports=["websocket"], namespaces=[NS], auth={"token": token}, wait_timeout=10
        )

    def watch(self, cid: str) -> dict:
        return self.sio.call("watch", {"campaign_id": cid}, namespace=NS, timeout=15)

    def wait_for(self, check, timeout: float = 15.0) -> dict:
        """Return the first pushed snapshot that passes `check` within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                snapshot = self.pushes.get(timeout=left)
            except queue.Empty:
                break
            seen.append(snapshot["funnel"])
            if check(snapshot):
                return snapshot
        raise AssertionError(f"no matching funnel push within {timeout} s; got {seen}")

    def close(self) -> None:
        self.sio.disconnect()


def enter_store(server: ServerProcess) -> None:
    """A new shopper consents and sends a fix inside the store's fence through `server`."""
    with requests.Session() as http:
        session = signup_with_consent(http, server)
        fix = {
            "lat": STORE["lat"],
            "lon": STORE["lon"],
            "accuracy_m": 10,
            "recorded_at": time.time(),
        }
        response = http.post(
            server.url + "/api/location/fix", json=fix, headers=bearer(session["token"]), timeout=10
        )
        assert response.status_code == 200, response.text
        events = response.json()["results"][0]["events"]
        assert [e["kind"] for e in events] == ["enter"], response.json()


def computed_slots(servers, cid: str) -> Counter:
    """Count the servers' 'funnel snapshot computed' log lines of a campaign, per period."""
    slots: Counter = Counter()
    for server in servers:
        for line in server.output(limit=10**9).splitlines():
            if "funnel snapshot computed" not in line:
                continue
            record = json.loads(line[line.index("{") :])
            if record.get("campaign_id") == cid:
                slots[record["funnel_slot"]] += 1
    return slots


def test_a_visit_through_b_reaches_a_watcher_on_a(servers, helper_app, marketer, store):
    server_a, server_b = servers
    cid = live_campaign(helper_app, "cross-process")
    watcher = Watcher(server_a.url, marketer["token"])
    try:
        ack = watcher.watch(cid)
        before = ack["snapshot"]["funnel"]
        assert before["visits"] == 0 and before["coupons"] == 0
        enter_store(server_b)
        pushed = watcher.wait_for(
            lambda s: s["funnel"]["visits"] == 1 and s["funnel"]["coupons"] == 1
        )
        assert pushed["campaign_id"] == cid
        assert pushed["stores"][0]["store"] == STORE["id"]
        assert pushed["stores"][0]["name"] == STORE["name"]
        assert pushed["heatmap"]["stores"][0]["visits"] == 1
        assert pushed["usage"]["offers"][0]["total"]["used"] == 1
    finally:
        watcher.close()


def test_watchers_on_both_processes_share_one_snapshot_per_period(
    servers, helper_app, marketer, store
):
    server_a, server_b = servers
    cid = live_campaign(helper_app, "once per period")
    watchers = [Watcher(server.url, marketer["token"]) for server in servers]
    try:
        for watcher in watchers:
            assert watcher.watch(cid)["snapshot"]["funnel"]["visits"] == 0
        for visits, server in enumerate((server_a, server_b, server_a), start=1):
            enter_store(server)
            got = [w.wait_for(lambda s, v=visits: s["funnel"]["visits"] == v) for w in watchers]
            # One computation reached both: the same snapshot, computed at the same moment.
            assert got[0] == got[1]
        slots = computed_slots(servers, cid)
        assert len(slots) >= 3  # at least one period per visit
        assert set(slots.values()) == {1}, slots  # never two computations in one period
    finally:
        for watcher in watchers:
            watcher.close()
