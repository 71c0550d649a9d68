"""Outgoing webhooks: endpoints over the API, delivery to a real local receiver, signatures
checked with the reference verifier (standardwebhooks from PyPI), the retry schedule on an
injected clock, 410/429/timeouts, failure disabling, the log, retry now and ping."""

from __future__ import annotations

import ipaddress
import json

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.promo_helpers import add_stores, append_geo_event, issue, live_campaign
from tests.webhook_receiver import Answer, Receiver
from webhooks.delivery import SCHEDULE_S
from webhooks.outbound import OutboundPolicy, Refused


@pytest.fixture
def receiver():
    with Receiver() as rec:
        yield rec


@pytest.fixture
def timeout_s():
    """The attempts' timeout: the default, unless a test holds a request to time it out (a
    short one there, and never elsewhere: a loaded machine may take over a second to answer)."""
    return 15.0


@pytest.fixture
def hook_app(make_app, timeout_s):
    app = make_app(WEBHOOK_TIMEOUT_S=timeout_s)
    yield app
    app.extensions["webhooks"].dispatcher.close()  # its pool's threads end with the test


@pytest.fixture
def marketer(hook_app):
    accounts = hook_app.extensions["accounts"]
    accounts.create_user("m@example.test", "correct-horse-1", "marketer")
    session = accounts.open_session(accounts.find_by_email("m@example.test"))
    return {"Authorization": f"Bearer {session['token']}"}


def register(client, headers, url, types=("*",), **extra):
    response = client.post(
        "/api/webhooks/endpoints",
        json={"url": url, "event_types": list(types), **extra},
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def deliver(app, rounds=200):
    """Turn due drop endings into events, then run the dispatcher until nothing is due now."""
    hooks = app.extensions["webhooks"]
    return hooks.live.due() + hooks.dispatcher.drain(rounds)


def campaign(app):
    promos = app.extensions["promotions"]
    add_stores(app.extensions["stores"], 2)
    cid, oid = live_campaign(promos)
    return promos, cid, oid


def verified(received, secret):
    return Webhook(secret).verify(received.body, received.headers)


def test_an_issued_coupon_reaches_the_receiver_signed_and_without_the_account_id(
    hook_app, marketer, receiver
):
    client = hook_app.test_client()
    created = register(client, marketer, receiver.url, ["coupon.issued"], description="CRM")
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 44
    assert "secret" not in json.dumps(created["endpoint"]).replace("secret_", "")
    promos, cid, oid = campaign(hook_app)
    coupon = issue(promos, cid, oid, shopper="shopper-42").coupon
    deliver(hook_app)
    (req,) = receiver.wait_count(1)
    doc = verified(req, secret)
    assert doc["type"] == "coupon.issued"
    assert doc["data"]["coupon_id"] == coupon["id"]
    assert doc["data"]["campaign_id"] == cid
    assert doc["data"]["shopper"].startswith("shp_")
    assert "shopper-42" not in req.body.decode()
    assert len(req.body) <= 20 * 1024
    assert req.headers["content-type"] == "application/json"
    # A forged body or another secret fails the reference verifier.
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(req.body.replace(b"coupon.issued", b"coupon.voided"), req.headers)
    log = client.get(
        f"/api/webhooks/endpoints/{created['endpoint']['id']}/attempts", headers=marketer
    )
    (attempt,) = log.get_json()["items"]
    assert attempt["result"] == "succeeded" and attempt["status"] == 200
    assert attempt["msg_id"] == req.msg_id and attempt["attempt"] == 1


def test_redeem_void_and_status_events_follow_the_ledger_and_scoping(
    hook_app, marketer, receiver, clock
):
    client = hook_app.test_client()
    everything = register(client, marketer, receiver.url + "/all", ["*"])
    promos, cid, oid = campaign(hook_app)
    _, other, other_offer = campaign_two(hook_app)
    clock.advance(1)
    scoped = register(client, marketer, receiver.url + "/one", ["*"], campaign_id=cid)
    coupon = issue(promos, cid, oid, shopper="s1").coupon
    issue(promos, other, other_offer, shopper="s2")
    promos.coupons.void(coupon["id"], actor_admin(), reason="test")
    promos.campaigns.transition(cid, "paused", actor="m1")
    deliver(hook_app)
    expected = {
        # each campaign: draft -> scheduled (m1), scheduled -> live (the clock), one coupon
        "/hook/all": ["campaign.status_changed"] * 5 + ["coupon.issued"] * 2 + ["coupon.voided"],
        # the scoped endpoint: only its campaign, and only what happened after it was made
        "/hook/one": ["coupon.issued", "coupon.voided", "campaign.status_changed"],
    }
    try:
        got = receiver.wait_count(sum(map(len, expected.values())))
    except AssertionError:
        logs = hook_app.extensions["webhooks"].log
        raise AssertionError(
            [
                (i["type"], i["result"], i["status"], i["error"])
                for e in (everything, scoped)
                for i in logs.attempts(e["endpoint"]["id"])["items"]
            ]
        ) from None
    by_path: dict[str, list[dict]] = {}
    for req in got:
        secret = everything["secret"] if req.path.endswith("/all") else scoped["secret"]
        by_path.setdefault(req.path, []).append(verified(req, secret))
    assert {p: sorted(d["type"] for d in docs) for p, docs in by_path.items()} == {
        p: sorted(types) for p, types in expected.items()
    }
    assert all(d["data"]["campaign_id"] == cid for d in by_path["/hook/one"])
    paused = [d["data"] for d in by_path["/hook/one"] if d["type"] == "campaign.status_changed"]
    assert paused == [{"campaign_id": cid, "from": "live", "to": "paused", "actor": "m1"}]
    voided = next(d["data"] for d in by_path["/hook/all"] if d["type"] == "coupon.voided")
    assert voided["coupon_id"] == coupon["id"] and voided["reason"] == "test"


def campaign_two(app):
    promos = app.extensions["promotions"]
    cid, oid = live_campaign(promos)
    return promos, cid, oid


def actor_admin():
    from promotions.coupons import Actor

    return Actor("admin-1", "admin", None)


def test_geofence_events_carry_store_and_opaque_shopper_but_no_coordinates(
    hook_app, marketer, receiver, clock
):
    client = hook_app.test_client()
    created = register(client, marketer, receiver.url, ["geofence.enter", "geofence.exit"])
    r = hook_app.extensions["redis"]
    append_geo_event(r, "shopper-7", "acme-0", "enter", clock.now(), lat=31.2, lon=121.4)
    append_geo_event(r, "shopper-7", "acme-0", "dwell", clock.now() + 60)
    append_geo_event(r, "shopper-7", "acme-0", "exit", clock.now() + 120)
    deliver(hook_app)
    got = receiver.wait_count(2)
    # Concurrent sends: no ordering guarantee between messages (docs/webhooks.md).
    docs = sorted((verified(req, created["secret"]) for req in got), key=lambda d: d["type"])
    assert [d["type"] for d in docs] == ["geofence.enter", "geofence.exit"]
    for doc in docs:
        assert doc["data"]["store_id"] == "acme-0"
        assert doc["data"]["shopper"].startswith("shp_")
        assert not {"lat", "lon", "latitude", "longitude"} & set(doc["data"])
    assert docs[0]["data"]["shopper"] == docs[1]["data"]["shopper"]
    assert len(receiver.requests) == 2  # dwell was not asked for


@pytest.mark.parametrize("timeout_s", [3.0])
def test_retry_schedule_timeouts_429_and_the_same_webhook_id(hook_app, marketer, receiver, clock):
    client = hook_app.test_client()
    created = register(client, marketer, receiver.url, ["coupon.issued"])
    eid = created["endpoint"]["id"]
    release = __import__("threading").Event()
    receiver.answer(
        Answer(500),
        Answer(200, hold=release),  # answers after the 3 s timeout: a failed attempt
        Answer(429, headers={"Retry-After": "7200"}),
        Answer(204),
    )
    hooks = hook_app.extensions["webhooks"]
    msg = hooks.dispatcher.ping(eid)
    deliver(hook_app)
    receiver.wait_count(1)
    page = client.get(f"/api/webhooks/endpoints/{eid}/attempts", headers=marketer).get_json()
    first = page["items"][0]
    assert first["result"] == "retrying" and first["status"] == 500
    assert SCHEDULE_S[0] * 0.9 <= first["next_at"] - clock.now() <= SCHEDULE_S[0] * 1.1
    deliver(hook_app)
    assert len(receiver.requests) == 1  # not due yet
    clock.advance(SCHEDULE_S[0] * 1.1 + 0.01)
    deliver(hook_app)
    receiver.wait_count(2)
    release.set()
    second = client.get(f"/api/webhooks/endpoints/{eid}/attempts", headers=marketer).get_json()
    assert second["items"][0]["error"] == "timeout"
    assert second["items"][0]["result"] == "retrying"
    clock.advance(SCHEDULE_S[1] * 1.1 + 0.01)
    deliver(hook_app)
    receiver.wait_count(3)
    third = client.get(f"/api/webhooks/endpoints/{eid}/attempts", headers=marketer).get_json()
    entry = third["items"][0]
    assert entry["status"] == 429 and entry["result"] == "retrying"
    # Retry-After (900 s) wins over the schedule's 30 min? No: the later of the two.
    assert entry["next_at"] - clock.now() >= SCHEDULE_S[2] * 0.9
    # Meanwhile the endpoint is paused: a new message waits instead of being sent.
    second_msg = hooks.dispatcher.ping(eid)
    deliver(hook_app)
    assert len(receiver.requests) == 3
    clock.advance(SCHEDULE_S[2] * 1.1)
    deliver(hook_app)
    assert len(receiver.requests) == 3  # past the schedule's delay, not past Retry-After
    clock.advance(7200)
    deliver(hook_app)
    got = receiver.wait_count(5)
    assert [r.msg_id for r in got[:3]] == [msg] * 3
    assert sorted(r.msg_id for r in got[3:]) == sorted([msg, second_msg])
    ok = client.get(
        f"/api/webhooks/endpoints/{eid}/attempts?result=succeeded", headers=marketer
    ).get_json()
    full = client.get(f"/api/webhooks/endpoints/{eid}/attempts", headers=marketer).get_json()
    assert {item["msg_id"] for item in ok["items"]} == {msg, second_msg}, (
        [
            (i["msg_id"][-4:], i["attempt"], i["result"], i["status"], i["error"])
            for i in full["items"]
        ],
        [(r.msg_id[-4:]) for r in got],
    )
    assert all(item["result"] == "succeeded" for item in ok["items"])


def test_410_disables_the_endpoint_and_retry_now_sends_again(hook_app, marketer, receiver):
    client = hook_app.test_client()
    created = register(client, marketer, receiver.url)
    eid = created["endpoint"]["id"]
    receiver.answer(Answer(410))
    msg = hook_app.extensions["webhooks"].dispatcher.ping(eid)
    deliver(hook_app)
    receiver.wait_count(1)
    endpoint = client.get(f"/api/webhooks/endpoints/{eid}", headers=marketer).get_json()
    assert endpoint["status"] == "disabled" and endpoint["disabled_code"] == "gone"
    assert "410" in endpoint["disabled_reason"]
    failed = client.get(f"/api/webhooks/endpoints/{eid}/failed", headers=marketer).get_json()
    assert failed["items"] == [
        {"msg_id": msg, "type": "webhook.ping", "attempts": 1, "why": "gone"}
    ]
    # Disabled: a ping is not sent, and lands among the failed messages.
    second = hook_app.extensions["webhooks"].dispatcher.ping(eid)
    deliver(hook_app)
    assert len(receiver.requests) == 1
    enabled = client.patch(
        f"/api/webhooks/endpoints/{eid}", json={"status": "active"}, headers=marketer
    )
    assert enabled.get_json()["status"] == "active"
    for m in (msg, second):
        answer = client.post(f"/api/webhooks/endpoints/{eid}/messages/{m}/retry", headers=marketer)
        assert answer.status_code == 202 and answer.get_json()["state"] == "requeued"
    deliver(hook_app)
    got = receiver.wait_count(3)
    assert {r.msg_id for r in got[1:]} == {msg, second}
    assert client.get(f"/api/webhooks/endpoints/{eid}/failed", headers=marketer).get_json() == {
        "items": []
    }
    missing = client.post(
        f"/api/webhooks/endpoints/{eid}/messages/msg_aaaa/retry", headers=marketer
    )
    assert missing.status_code == 404 and missing.get_json()["error"]["field"] == "msg_id"


def test_an_endpoint_failing_for_five_days_is_disabled_with_the_reason(
    hook_app, marketer, receiver, clock
):
    client = hook_app.test_client()
    eid = register(client, marketer, receiver.url)["endpoint"]["id"]
    receiver.answer(*[Answer(500)] * 20)
    dispatcher = hook_app.extensions["webhooks"].dispatcher
    dispatcher.ping(eid)
    deliver(hook_app)
    endpoints = hook_app.extensions["webhooks"].endpoints  # tokens expire over 5 days
    attempts = 1
    while endpoints.get(eid)["status"] == "active":
        clock.advance(3 * 86_400)  # beyond any one delay of the schedule
        dispatcher.ping(eid)
        deliver(hook_app)
        attempts += 1
        assert attempts < 10
    # Failing since the first attempt; disabled at the first failure 5 days after it.
    assert attempts == 3
    endpoint = endpoints.get(eid)
    assert endpoint["disabled_code"] == "failing"
    assert "failed since" in endpoint["disabled_reason"]


def test_retries_run_out_after_the_tenth_attempt(hook_app, marketer, receiver, clock):
    client = hook_app.test_client()
    eid = register(client, marketer, receiver.url)["endpoint"]["id"]
    receiver.answer(*[Answer(503)] * 10)
    msg = hook_app.extensions["webhooks"].dispatcher.ping(eid)
    for delay in (0, *SCHEDULE_S):
        clock.advance(delay * 1.1 + 0.01)
        deliver(hook_app)
    got = receiver.wait_count(10)
    assert {r.msg_id for r in got} == {msg} and len(got) == 10
    failed = hook_app.extensions["webhooks"].log.failed(eid)  # tokens expire over 3 days
    assert failed == [{"msg_id": msg, "type": "webhook.ping", "attempts": 10, "why": "exhausted"}]


def test_rotation_signs_with_both_secrets_during_the_overlap(hook_app, marketer, receiver, clock):
    client = hook_app.test_client()
    created = register(client, marketer, receiver.url)
    eid, old = created["endpoint"]["id"], created["secret"]
    rotated = client.post(
        f"/api/webhooks/endpoints/{eid}/rotate-secret", json={"overlap_s": 3600}, headers=marketer
    ).get_json()
    new = rotated["secret"]
    assert new != old and rotated["endpoint"]["previous_secret_expires_at"] == clock.now() + 3600
    dispatcher = hook_app.extensions["webhooks"].dispatcher
    dispatcher.ping(eid)
    deliver(hook_app)
    (req,) = receiver.wait_count(1)
    assert len(req.headers["webhook-signature"].split(" ")) == 2
    verified(req, old)
    verified(req, new)
    clock.advance(3601)
    dispatcher.ping(eid)
    deliver(hook_app)
    later = receiver.wait_count(2)[1]
    verified(later, new)
    with pytest.raises(WebhookVerificationError):
        verified(later, old)


def test_ping_and_log_filters(hook_app, marketer, receiver):
    client = hook_app.test_client()
    eid = register(client, marketer, receiver.url)["endpoint"]["id"]
    receiver.answer(Answer(500))
    for _ in range(3):
        assert (
            client.post(f"/api/webhooks/endpoints/{eid}/ping", headers=marketer).status_code == 202
        )
    deliver(hook_app)
    receiver.wait_count(3)
    url = f"/api/webhooks/endpoints/{eid}/attempts"
    assert len(client.get(url + "?result=succeeded", headers=marketer).get_json()["items"]) == 2
    assert len(client.get(url + "?result=retrying", headers=marketer).get_json()["items"]) == 1
    assert client.get(url + "?type=coupon.issued", headers=marketer).get_json()["items"] == []
    page = client.get(url + "?limit=2", headers=marketer).get_json()
    rest = client.get(url + f"?cursor={page['next_cursor']}", headers=marketer).get_json()
    assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    bad = client.get(url + "?result=maybe", headers=marketer)
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "result"


def test_endpoint_rules_roles_and_errors(make_app, redis_client):
    app = make_app(WEBHOOK_ALLOW_HTTP=False, WEBHOOK_ALLOW_NETS="")
    client = app.test_client()
    accounts = app.extensions["accounts"]
    headers = {}
    for role in ("marketer", "host", "shopper"):
        accounts.create_user(f"{role}@example.test", "correct-horse-1", role, store_id=None)
        session = accounts.open_session(accounts.find_by_email(f"{role}@example.test"))
        headers[role] = {"Authorization": f"Bearer {session['token']}"}
    post = lambda body, who="marketer": client.post(  # noqa: E731
        "/api/webhooks/endpoints", json=body, headers=headers[who]
    )
    plain = post({"url": "http://example.com/hook", "event_types": ["*"]})
    assert plain.status_code == 422 and plain.get_json()["error"]["field"] == "url"
    local = post({"url": "https://127.0.0.1:9/hook", "event_types": ["*"]})
    assert local.get_json()["error"]["code"] == "address_refused"
    unknown = post({"url": "https://1.1.1.1/hook", "event_types": ["coupon.printed"]})
    assert unknown.status_code == 422 and unknown.get_json()["error"]["field"] == "event_types"
    for who in ("shopper", "host"):
        assert post({"url": "https://1.1.1.1/h", "event_types": ["*"]}, who).status_code == 403
    assert client.get("/api/webhooks/endpoints").status_code == 401
    ok = post({"url": "https://1.1.1.1/h", "event_types": ["coupon.redeemed"]})
    assert ok.status_code == 201
    eid = ok.get_json()["endpoint"]["id"]
    listed = client.get("/api/webhooks/endpoints", headers=headers["marketer"]).get_json()
    assert [e["id"] for e in listed["items"]] == [eid]
    assert "whsec_" not in json.dumps(listed)
    assert (
        client.delete(f"/api/webhooks/endpoints/{eid}", headers=headers["marketer"]).status_code
        == 200
    )
    assert (
        client.get(f"/api/webhooks/endpoints/{eid}", headers=headers["marketer"]).status_code == 404
    )


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.10",
        "169.254.169.254",
        "100.100.100.200",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
    ],
)
def test_outbound_refuses_non_public_addresses(address):
    policy = OutboundPolicy()
    assert not policy.allowed(address)
    # An allow-list entry lets it through; an IPv4-mapped IPv6 address is checked as the IPv4
    # address it maps.
    checked = ipaddress.ip_address(address)
    checked = getattr(checked, "ipv4_mapped", None) or checked
    assert OutboundPolicy(allow_nets=[f"{checked}/{checked.max_prefixlen}"]).allowed(address)


def test_outbound_connects_to_the_checked_address_and_follows_no_redirect(receiver):
    port = receiver.server.server_address[1]
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    calls = []

    def resolver(host, p):
        calls.append(host)
        return next(answers)

    policy = OutboundPolicy(allow_http=True, allow_nets=["127.0.0.0/8"], resolver=resolver)
    receiver.answer(Answer(302, headers={"Location": "http://127.0.0.1:9/elsewhere"}))
    response = policy.post(f"http://hooks.example:{port}/x", b"{}", {"webhook-id": "msg_a"})
    assert response.status == 302  # not followed
    response.release_conn()
    (req,) = receiver.wait_count(1)
    assert req.path == "/x" and req.headers["host"] == f"hooks.example:{port}"
    assert calls == ["hooks.example"]  # resolved once, then connected to that address
    # The next resolution answers a private address: refused before any connection.
    with pytest.raises(Refused):
        policy.post(f"http://hooks.example:{port}/x", b"{}", {})
    assert len(receiver.requests) == 1
    assert OutboundPolicy(resolver=lambda h, p: ["8.8.8.8", "10.0.0.1"]).allowed("8.8.8.8")
    with pytest.raises(Refused):
        OutboundPolicy(resolver=lambda h, p: ["8.8.8.8", "10.0.0.1"]).check("https://x.example/")


def test_drop_and_stream_endings_reach_the_receiver_with_their_counts(
    hook_app, marketer, receiver, clock
):
    from live.models import StreamIn
    from live.streams import Caller
    from promotions.models import OfferIn

    client = hook_app.test_client()
    created = register(client, marketer, receiver.url, ["live.drop_ended", "live.stream_ended"])
    promos, cid, _ = campaign(hook_app)
    oid = promos.campaigns.create_offer(
        cid,
        OfferIn(name="flash", kind="amount_off", amount_off_fen=500, channels=["live_drop"]),
        actor="m1",
    )["id"]
    live = hook_app.extensions["live"]
    boss = Caller("m1", "marketer")
    accounts = hook_app.extensions["accounts"]
    host = accounts.create_user("host@example.test", "correct-horse-1", "host")["id"]
    stream = live.streams.create(
        StreamIn(
            title="Launch",
            brand="Acme",
            playback_url="https://v.example/x",
            hosts=[host],
            starts_at=clock.now(),
            campaign_id=cid,
        ),
        boss,
    )
    sid = stream["id"]
    live.streams.grant(sid, cid, "m1")
    stream = live.streams.transition(sid, "live", boss)
    sold = live.drops.start(stream, oid, 2, 60)
    for viewer in ("v1", "v2"):
        live.drops.claim(sid, sold["id"], viewer)
    deliver(hook_app)  # sold out: its end is due at once
    clock.advance(61)
    timed = live.drops.start(stream, oid, 5, 30)
    live.drops.claim(sid, timed["id"], "v3")
    deliver(hook_app)
    assert len(receiver.requests) == 1  # the second drop's window has not closed yet
    clock.advance(31)
    live.streams.transition(sid, "ended", boss)
    deliver(hook_app)
    got = receiver.wait_count(3)
    docs = [verified(req, created["secret"]) for req in got]
    ends = {d["data"]["drop_id"]: d["data"] for d in docs if d["type"] == "live.drop_ended"}
    assert (ends[sold["id"]]["claimed"], ends[sold["id"]]["quantity"]) == (2, 2)
    assert ends[sold["id"]]["sold_out"] is True
    assert (ends[timed["id"]]["claimed"], ends[timed["id"]]["quantity"]) == (1, 5)
    assert ends[timed["id"]]["campaign_id"] == cid
    (report,) = [d["data"] for d in docs if d["type"] == "live.stream_ended"]
    assert report["stream_id"] == sid and report["title"] == "Launch"
    assert sorted((d["drop_id"], d["claimed"]) for d in report["drops"]) == sorted(
        [(sold["id"], 2), (timed["id"], 1)]
    )
    deliver(hook_app)
    assert len(receiver.requests) == 3  # each ending once


def test_outbound_keeps_a_connection_per_concurrent_send(receiver):
    """Sends at once to one endpoint, up to the pool size, keep their connections for the next
    ones (urllib3 would otherwise close every connection beyond its pool after one request)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    policy = OutboundPolicy(allow_http=True, allow_nets=["127.0.0.0/8"], pool_size=24)

    def send(i: int) -> int:
        response = policy.post(receiver.url, b"{}", {"webhook-id": f"msg_{i}"})
        response.read()
        response.release_conn()
        return response.status

    with ThreadPoolExecutor(20) as pool:
        for burst in (1, 2):
            release = threading.Event()  # all 20 are held at once, on 20 connections
            receiver.answer(*[Answer(200, hold=release) for _ in range(20)])
            futures = [pool.submit(send, i) for i in range(20)]
            receiver.wait_count(20 * burst)
            release.set()
            assert [f.result() for f in futures] == [200] * 20
    assert receiver.connections == 20  # the second burst reused the first one's connections
    policy.close()
