"""Flash drops (exactly N, one per viewer, coupons through promotions), the broadcast history
with offsets, and presence across processes."""

from __future__ import annotations

import multiprocessing

import pytest

from app.sinks import redis_connect
from core.clock import FrozenClock
from live.drops import DropRefused, Drops
from live.history import History
from live.models import StreamIn
from live.presence import Presence
from live.streams import Caller, Streams
from promotions.models import CampaignIn, OfferIn

from .conftest import T0
from .promo_helpers import make_promotions

MARKETER = Caller("m1", "marketer")


def build(r, clock):
    promos = make_promotions(r, clock)
    streams = Streams(r, clock, promos, lambda uid: "host")
    return promos, streams, Drops(r, clock, promos)


@pytest.fixture
def world(redis_client, clock):
    promos, streams, drops = build(redis_client, clock)
    cid = promos.campaigns.create(
        CampaignIn(name="c", starts_at=T0 - 60, ends_at=T0 + 86400), actor="m"
    )["id"]
    oid = promos.campaigns.create_offer(
        cid,
        OfferIn(name="flash", kind="amount_off", amount_off_fen=1000, channels=["live_drop"]),
        actor="m",
    )["id"]
    promos.campaigns.transition(cid, "scheduled", actor="m")
    stream = streams.create(
        StreamIn(
            title="t",
            brand="b",
            playback_url="https://v.example/x",
            hosts=["h1"],
            starts_at=T0,
            campaign_id=cid,
        ),
        MARKETER,
    )
    stream = streams.transition(stream["id"], "live", MARKETER)
    return {
        "promos": promos,
        "streams": streams,
        "drops": drops,
        "stream": stream,
        "cid": cid,
        "oid": oid,
        "r": redis_client,
        "clock": clock,
    }


def refused(code, fn, *args):
    with pytest.raises(DropRefused) as info:
        fn(*args)
    assert info.value.code == code, info.value.message
    return info.value


def test_first_n_win_once_each_then_sold_out(world):
    drops, sid = world["drops"], world["stream"]["id"]
    drop = drops.start(world["stream"], world["oid"], 3, 60)
    results = [drops.claim(sid, drop["id"], f"v{i}") for i in range(3)]
    assert [r["claim"] for r in results] == [1, 2, 3]
    assert [r["remaining"] for r in results] == [2, 1, 0] and results[-1]["sold_out"]
    assert all(r["coupon"]["source"]["channel"] == "live_drop" for r in results)
    again = drops.claim(sid, drop["id"], "v0")
    assert again["outcome"] == "already_won" and again["coupon"]["id"] == results[0]["coupon"]["id"]
    refused("SOLD_OUT", drops.claim, sid, drop["id"], "v9")
    assert drops.get(sid, drop["id"])["status"] == "sold_out" and drops.active(sid) is None
    wallet = world["promos"].coupons.wallet("v1")["items"]
    assert [c["id"] for c in wallet] == [results[1]["coupon"]["id"]]


def test_a_drop_closes_with_its_window_and_only_one_runs_at_a_time(world):
    drops, sid, clock = world["drops"], world["stream"]["id"], world["clock"]
    drop = drops.start(world["stream"], world["oid"], 10, 30)
    refused("DROP_ALREADY_ACTIVE", drops.start, world["stream"], world["oid"], 5, 30)
    assert drops.active(sid)["id"] == drop["id"]
    clock.advance(30)
    refused("DROP_CLOSED", drops.claim, sid, drop["id"], "late")
    assert drops.get(sid, drop["id"])["status"] == "closed" and drops.active(sid) is None
    second = drops.start(world["stream"], world["oid"], 5, 30)
    assert second["id"] != drop["id"]


@pytest.mark.parametrize(
    ("quantity", "window", "field"),
    [(0, 60, "quantity"), (100_001, 60, "quantity"), (5, 9, "window_s"), (5, 301, "window_s")],
)
def test_bad_drops_are_refused(world, quantity, window, field):
    from core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as info:
        world["drops"].start(world["stream"], world["oid"], quantity, window)
    assert info.value.field == field


def test_drops_need_a_live_stream_and_a_drop_offer(world):
    promos, streams = world["promos"], world["streams"]
    manual = promos.campaigns.create_offer(
        world["cid"],
        OfferIn(name="m", kind="amount_off", amount_off_fen=100, channels=["manual"]),
        actor="m",
    )["id"]
    from core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as info:
        world["drops"].start(world["stream"], manual, 5, 30)
    assert info.value.code == "offer_not_for_drops"
    later = streams.create(
        StreamIn(
            title="t",
            brand="b",
            playback_url="https://v.example/x",
            hosts=["h1"],
            starts_at=T0,
            campaign_id=world["cid"],
        ),
        MARKETER,
    )
    refused("STREAM_NOT_LIVE", world["drops"].start, later, world["oid"], 5, 30)


def test_a_refused_coupon_gives_the_slot_back(world):
    promos, drops, sid = world["promos"], world["drops"], world["stream"]["id"]
    from promotions.models import OfferPatch

    promos.campaigns.update_offer(world["cid"], world["oid"], OfferPatch(caps={"total": 1}))
    drop = drops.start(world["stream"], world["oid"], 2, 60)
    drops.claim(sid, drop["id"], "v1")
    refused("CAP_TOTAL_REACHED", drops.claim, sid, drop["id"], "v2")
    assert drops.get(sid, drop["id"])["remaining"] == 1


def _claimers(url, sid, did, viewers, out):
    r = redis_connect(url, decode_responses=True)
    _, _, drops = build(r, FrozenClock(T0 + 1))
    won = 0
    for viewer in viewers:
        try:
            drops.claim(sid, did, viewer)
            won += 1
        except DropRefused:
            pass
    out.put(won)


def test_exactly_n_across_processes(world, redis_server):
    drop = world["drops"].start(world["stream"], world["oid"], 50, 120)
    sid = world["stream"]["id"]
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=_claimers,
            args=(redis_server, sid, drop["id"], [f"v{k}-{i}" for i in range(60)], out),
        )
        for k in range(4)
    ]
    for p in procs:
        p.start()
    won = sum(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    assert won == 50
    state = world["drops"].get(sid, drop["id"])
    assert (state["claimed"], state["remaining"], state["status"]) == (50, 0, "sold_out")
    offer = world["promos"].campaigns.get_offer(world["cid"], world["oid"])
    assert offer["counters"]["issued"] == 50


def test_history_replays_after_an_offset_or_says_too_far(redis_client):
    history = History(redis_client, size=10)
    offsets = [history.append("7", "comment", {"n": i}) for i in range(5)]
    assert offsets == [1, 2, 3, 4, 5] and history.offset("7") == 5
    missed = history.since("7", 2)
    assert not missed.too_far and [e["data"]["n"] for e in missed.events] == [2, 3, 4]
    assert [e["offset"] for e in missed.events] == [3, 4, 5]
    assert history.since("7", 5).events == [] and not history.since("7", 5).too_far
    for i in range(5, 200):
        history.append("7", "comment", {"n": i})
    behind = history.since("7", 3)
    assert behind.too_far and behind.offset == 200
    assert history.since("7", 999).too_far  # not an offset of this stream
    recent = history.since("7", 195)
    assert [e["offset"] for e in recent.events] == [196, 197, 198, 199, 200]


def test_presence_counts_across_processes_and_heals(redis_client, clock):
    a = Presence(redis_client, clock, "proc-a", ttl_s=30, process_ttl_s=5)
    b = Presence(redis_client, clock, "proc-b", ttl_s=30, process_ttl_s=5)
    assert a.join("7", "s1", "v1") == 1 and a.join("7", "s2", "v2") == 2
    assert b.join("7", "s3", "v3") == 3
    assert b.leave("7", "s3", "v3") == 2
    b.join("7", "s4", "v4")
    for _ in range(35):  # process b has died: only a says it is alive, every second
        clock.advance(1)
        a.heartbeat([("7", "s1", "v1"), ("7", "s2", "v2")])
    assert a.count("7") == 2 and b.count("7") == 2


def test_a_dead_process_stops_counting_within_seconds_and_nobody_counts_twice(redis_client, clock):
    from live.feedback import FeedbackCounters

    a = Presence(redis_client, clock, "proc-a", ttl_s=30, process_ttl_s=5)
    b = Presence(redis_client, clock, "proc-b", ttl_s=30, process_ttl_s=5)
    feedback = FeedbackCounters(redis_client, clock)
    viewers = [f"v{i}" for i in range(10)]
    for i, viewer in enumerate(viewers):
        feedback.set_viewers("7", (a if i < 4 else b).join("7", f"c{i}", viewer))
    # Two tabs of one viewer are one viewer.
    feedback.set_viewers("7", a.join("7", "c0-tab2", "v0"))
    assert a.count("7") == 10 and feedback.totals("7")["peak_viewers"] == 10
    # Process b dies; its six viewers reconnect through a at once.
    for i, viewer in enumerate(viewers[4:], start=4):
        feedback.set_viewers("7", a.join("7", f"c{i}-again", viewer))
    assert a.count("7") == 10 and feedback.totals("7")["peak_viewers"] == 10
    # Two of them closed the app instead. Within the process TTL (not the 30 s of a
    # connection) the count is right again.
    a.leave("7", "c8-again", "v8")
    a.leave("7", "c9-again", "v9")
    conns = [("7", f"c{i}", v) for i, v in enumerate(viewers[:4])] + [("7", "c0-tab2", "v0")]
    conns += [("7", f"c{i}-again", v) for i, v in enumerate(viewers[4:8], start=4)]
    for _ in range(5):
        clock.advance(1)
        a.heartbeat(conns)
    count = a.count("7")
    feedback.set_viewers("7", count)
    assert count == 8 and feedback.totals("7")["viewers"] == 8
    assert feedback.totals("7")["peak_viewers"] == 10
    # A process taken for dead after a long pause puts its connections back when it returns.
    clock.advance(10)
    assert b.count("7") == 0
    a.heartbeat(conns)
    assert b.count("7") == 8


def test_pins_at_most_three_in_order_and_announcements(redis_client, clock):
    from core.errors import DomainError, NotFound, ValidationFailed
    from live.models import ProductIn
    from live.stage import Stage

    promos, streams, _ = build(redis_client, clock)
    stream = streams.create(
        StreamIn(
            title="t", brand="b", playback_url="https://v.example/x", hosts=["h1"], starts_at=T0
        ),
        MARKETER,
    )
    sid = stream["id"]
    pids = [
        streams.add_product(sid, ProductIn(name=f"p{i}", price_fen=100), MARKETER)["id"]
        for i in range(4)
    ]
    stage = Stage(redis_client, clock)
    for pid in pids[:3]:
        stage.pin(sid, pid)
    assert [p["id"] for p in stage.pin(sid, pids[0])] == pids[:3]  # again: no change
    with pytest.raises(DomainError) as info:
        stage.pin(sid, pids[3])
    assert info.value.code == "TOO_MANY_PINS"
    with pytest.raises(NotFound):
        stage.pin(sid, "p99")
    assert [p["id"] for p in stage.unpin(sid, pids[1])] == [pids[0], pids[2]]
    assert [p["id"] for p in stage.pin(sid, pids[3])] == [pids[0], pids[2], pids[3]]
    assert stage.announcement(sid) is None
    assert stage.announce(sid, "  20% off coats for ten minutes! ")["text"] == (
        "20% off coats for ten minutes!"
    )
    assert stage.announcement(sid)["at"] == T0
    with pytest.raises(ValidationFailed):
        stage.announce(sid, " ")


def test_a_late_joiner_gets_the_state_and_a_reconnect_gets_what_it_missed(world):
    from live.chat import Chat
    from live.history import History
    from live.models import ProductIn
    from live.presence import Presence
    from live.room import Room
    from live.stage import Stage

    r, clock, sid = world["r"], world["clock"], world["stream"]["id"]
    chat, stage, history = Chat(r, clock), Stage(r, clock), History(r, size=20)
    presence = Presence(r, clock, "proc-a")
    room = Room(world["streams"], chat, stage, world["drops"], history, presence)
    pid = world["streams"].add_product(sid, ProductIn(name="coat", price_fen=100), MARKETER)["id"]
    stage.pin(sid, pid)
    poll = chat.start_poll(sid, "Colour?", ["red", "blue"], 600)
    chat.vote(sid, poll["id"], "v1", 1)
    drop = world["drops"].start(world["stream"], world["oid"], 10, 300)
    world["drops"].claim(sid, drop["id"], "v1")
    for i in range(60):
        clock.advance(3)
        chat.comment(sid, f"v{i}", f"comment {i}")
        history.append(sid, "comment", {"n": i})
    presence.join(sid, "conn-1", "v1")
    state = room.state(sid)
    assert state["offset"] == 60 and [p["id"] for p in state["pinned"]] == [pid]
    assert state["poll"]["tallies"] == [0, 1] and state["poll"]["open"]
    assert state["drop"]["id"] == drop["id"] and state["drop"]["remaining"] == 9
    assert state["drop"]["ends_at"] == T0 + 300
    assert len(state["comments"]) == 50 and state["comments"][-1]["text"] == "comment 59"
    assert state["viewers"] == 1 and state["stream"]["status"] == "live"
    recovered = room.recover(sid, 55)
    assert recovered["recovered"] and [e["data"]["n"] for e in recovered["events"]] == [
        55,
        56,
        57,
        58,
        59,
    ]
    for i in range(60, 400):  # the history keeps about the last `size` entries
        history.append(sid, "like", {"n": i})
    behind = room.recover(sid, 2)
    assert not behind["recovered"] and behind["state"]["offset"] == 400


def test_only_a_granted_stream_attaches_a_campaign_and_drops_its_offers(world):
    from core.errors import Forbidden
    from live.models import StreamPatch

    promos, streams, drops, cid = world["promos"], world["streams"], world["drops"], world["cid"]
    host = Caller("h1", "host")
    body = dict(
        title="t", brand="b", playback_url="https://v.example/x", hosts=["h1"], starts_at=T0
    )
    with pytest.raises(Forbidden) as info:  # a host cannot attach a campaign by scheduling
        streams.create(StreamIn(**body, campaign_id=cid), host)
    assert info.value.code == "CAMPAIGN_NOT_GRANTED"
    mine = streams.create(StreamIn(**body), host)
    with pytest.raises(Forbidden) as info:
        streams.update(mine["id"], StreamPatch(campaign_id=cid), host)
    assert info.value.code == "CAMPAIGN_NOT_GRANTED"
    # A stream record naming the campaign without its grant (as a host could make one before)
    # drops nothing: the drop's own script checks the grant.
    other = streams.transition(streams.create(StreamIn(**body), host)["id"], "live", host)
    refused("CAMPAIGN_NOT_GRANTED", drops.start, {**other, "campaign_id": cid}, world["oid"], 5, 30)
    # A marketer grants it; now the host may attach the campaign and drop.
    grant = streams.grant(mine["id"], cid, "marketer:m1")
    assert grant["stream_id"] == mine["id"] and grant["granted_by"] == "marketer:m1"
    assert streams.update(mine["id"], StreamPatch(campaign_id=cid), host)["campaign_id"] == cid
    stream = streams.transition(mine["id"], "live", host)
    drop = drops.start(stream, world["oid"], 5, 60)
    assert drops.claim(mine["id"], drop["id"], "v1")["outcome"] == "won"
    # Revoked: the running drop stops paying out, and no new drop starts.
    streams.revoke(mine["id"], cid, "marketer:m1")
    refused("CAMPAIGN_NOT_GRANTED", drops.claim, mine["id"], drop["id"], "v2")
    assert drops.claim(mine["id"], drop["id"], "v1")["outcome"] == "already_won"
    world["clock"].advance(61)
    refused("CAMPAIGN_NOT_GRANTED", drops.start, stream, world["oid"], 5, 30)
    assert [g["stream_id"] for g in promos.campaigns.grants(cid)] == [world["stream"]["id"]]
    entries = promos.reports.ledger(cid)["items"]
    assert [(e["type"], e["stream_id"]) for e in entries if e["type"] in ("grant", "revoke")] == [
        ("grant", world["stream"]["id"]),
        ("grant", mine["id"]),
        ("revoke", mine["id"]),
    ]
