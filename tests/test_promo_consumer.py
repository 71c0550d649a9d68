"""The visit consumer on the real geo event partitions: visits, visit coupons, replays,
recovery, and the drain of the legacy single stream."""

from __future__ import annotations

import json

import pytest

from geo import keys as geo_keys
from geo.engine import EngineSettings, Fix, LocationEngine
from promotions import keys as promo_keys
from promotions.consumer import pending_summary

from .conftest import T0
from .promo_helpers import (
    SHANGHAI,
    add_stores,
    append_geo_event,
    ledger_entries,
    live_campaign,
    make_promotions,
    streamed_geo_events,
)

NEXT_SHANGHAI_MIDNIGHT = 1_780_070_400.0  # T0 is 04:26:40 on 2026-05-29 in Shanghai


@pytest.fixture
def promos(redis_client, clock):
    promotions = make_promotions(redis_client, clock)
    add_stores(promotions.campaigns.catalog)
    return promotions


@pytest.fixture
def outcomes():
    return []


@pytest.fixture
def consumer(promos, outcomes):
    return promos.consumer("worker-b", on_issue=outcomes.append)


def wallet(promos, shopper):
    return promos.coupons.wallet(shopper, limit=100)["items"]


def pending(r):
    streams = [*geo_keys.event_streams(), geo_keys.LEGACY_EVENTS]
    return pending_summary(r, streams)["pending"]


def read_as(r, consumer_name):
    """XREADGROUP every partition as consumer_name (one command per partition); return entries."""
    entries = []
    for stream in geo_keys.event_streams():
        reply = r.xreadgroup(promo_keys.CONSUMER_GROUP, consumer_name, {stream: ">"}, count=100)
        entries += reply[0][1] if reply else []
    return entries


@pytest.mark.parametrize(
    "trigger, kind, issues",
    [
        ("dwell", "dwell", True),
        ("dwell", "enter", False),
        ("dwell", "exit", False),
        ("dwell", "transit", False),
        ("enter", "enter", True),
        ("enter", "dwell", False),
        ("enter", "exit", False),
        ("enter", "transit", False),
    ],
)
def test_event_kinds(promos, consumer, redis_client, clock, trigger, kind, issues):
    cid, oid = live_campaign(promos, channels=["visit"], visit_trigger=trigger)
    event = append_geo_event(redis_client, "u1", "acme-0", kind, clock.now())
    assert consumer.run_once() == 1
    coupons = wallet(promos, "u1")
    assert len(coupons) == int(issues)
    if issues:
        coupon = coupons[0]
        assert (coupon["offer_id"], coupon["store_id"], coupon["status"]) == (
            oid,
            "acme-0",
            "issued",
        )
        assert coupon["source"] == {"channel": "visit", "event_id": event["id"], "kind": kind}
        entry = ledger_entries(redis_client, cid, "issue")[0]
        assert (entry["channel"], entry["actor"], json.loads(entry["source"])) == (
            "visit",
            "visit",
            {"event_id": event["id"], "kind": kind},
        )
    totals = promos.reports.analytics(cid)["totals"]
    assert (totals["visits_enter"], totals["visits_dwell"]) == (
        int(kind == "enter"),
        int(kind == "dwell"),
    )
    assert pending(redis_client) == 0


def test_offer_without_the_visit_channel_counts_the_visit_only(
    promos, consumer, redis_client, clock
):
    cid, _ = live_campaign(promos, channels=["manual", "game"])
    append_geo_event(redis_client, "u1", "acme-0", "dwell", clock.now())
    consumer.run_once()
    assert wallet(promos, "u1") == []
    assert promos.reports.analytics(cid)["funnel"]["visits"] == 1


def test_one_visit_coupon_per_store_and_campaign_day(
    promos, consumer, outcomes, redis_client, clock
):
    cid, _ = live_campaign(promos, channels=["visit"])
    first = append_geo_event(redis_client, "u1", "acme-0", "dwell", clock.now())
    # The same event again.
    redis_client.xadd(geo_keys.shopper_events("u1"), {"event": json.dumps(first)})
    assert consumer.run_once() == 2
    assert [r.outcome for r in outcomes] == ["issued", "existing"]
    clock.advance(2 * 3600)  # later the same Shanghai day: another dwell at the same store
    append_geo_event(redis_client, "u1", "acme-0", "dwell", clock.now())
    consumer.run_once()
    assert [r.outcome for r in outcomes][2:] == ["existing"]
    assert len(wallet(promos, "u1")) == 1
    append_geo_event(redis_client, "u1", "acme-1", "dwell", clock.now())  # another store
    consumer.run_once()
    clock.set(NEXT_SHANGHAI_MIDNIGHT + 60)  # the next campaign day
    append_geo_event(redis_client, "u1", "acme-0", "dwell", clock.now())
    consumer.run_once()
    assert [r.outcome for r in outcomes][3:] == ["issued", "issued"]
    stores = sorted((c["store_id"], c["issued_at"]) for c in wallet(promos, "u1"))
    assert stores == [
        ("acme-0", T0),
        ("acme-0", NEXT_SHANGHAI_MIDNIGHT + 60),
        ("acme-1", T0 + 2 * 3600),
    ]
    assert len(ledger_entries(redis_client, cid, "issue")) == 3


@pytest.mark.parametrize("trust, issued", [(0, False), (49, False), (50, True), (100, True)])
def test_untrusted_events_never_issue(promos, consumer, redis_client, clock, trust, issued):
    cid, _ = live_campaign(promos, channels=["visit"])  # min_trust 50
    append_geo_event(redis_client, "u1", "acme-0", "dwell", clock.now(), trust=trust)
    consumer.run_once()
    assert len(wallet(promos, "u1")) == int(issued)
    report = promos.reports.analytics(cid)
    assert report["refusals"] == ({} if issued else {"UNTRUSTED": 1})
    assert report["funnel"]["visits"] == 1  # the visit itself still counts


def test_visits_count_once_per_event_id(promos, consumer, redis_client, clock):
    cid, _ = live_campaign(promos, channels=["visit"])
    enter = append_geo_event(redis_client, "u1", "acme-0", "enter", clock.now())
    redis_client.xadd(geo_keys.shopper_events("u1"), {"event": json.dumps(enter)})
    clock.advance(120)
    append_geo_event(redis_client, "u1", "acme-0", "dwell", clock.now())
    other = append_geo_event(redis_client, "u2", "acme-1", "dwell", clock.now())
    for _ in range(2):
        redis_client.xadd(geo_keys.shopper_events("u2"), {"event": json.dumps(other)})
    append_geo_event(redis_client, "u3", "acme-1", "exit", clock.now())
    assert consumer.run_once() == 7
    funnel = promos.reports.analytics(cid)["funnel"]
    assert (funnel["visits"], funnel["visitors"], funnel["coupons_from_visits"]) == (3, 2, 2)
    assert funnel["visit_to_coupon"] == round(2 / 3, 4)
    by_store = {
        g["store"]: (g["visits_enter"], g["visits_dwell"])
        for g in promos.reports.analytics(cid, group="store")["groups"]
    }
    assert by_store == {"acme-0": (1, 1), "acme-1": (0, 1)}


def test_events_outside_the_campaign_are_ignored(promos, consumer, redis_client, clock):
    add_stores(promos.campaigns.catalog, n=1, brand="Other")
    cid, _ = live_campaign(promos, channels=["visit"], starts=T0 - 60)
    append_geo_event(redis_client, "u1", "other-0", "dwell", clock.now())  # not a target
    append_geo_event(redis_client, "u2", "ghost-9", "dwell", clock.now())  # not in the catalog
    append_geo_event(redis_client, "u3", "acme-0", "dwell", T0 - 61)  # before the start
    assert consumer.run_once() == 3
    assert [wallet(promos, u) for u in ("u1", "u2", "u3")] == [[], [], []]
    assert promos.reports.analytics(cid)["funnel"]["visits"] == 0


def test_a_visit_issues_for_every_live_campaign_targeting_the_store(
    promos, consumer, redis_client, clock
):
    one, _ = live_campaign(promos, channels=["visit"])
    two, _ = live_campaign(promos, channels=["visit"], targets={"stores": ["acme-0"]})
    paused, _ = live_campaign(promos, channels=["visit"])
    promos.campaigns.transition(paused, "paused", actor="m1")
    append_geo_event(redis_client, "u1", "acme-0", "dwell", clock.now())
    consumer.run_once()
    assert sorted(c["campaign_id"] for c in wallet(promos, "u1")) == sorted([one, two])
    # A paused campaign neither issues nor counts the visit.
    stats = promos.reports.analytics(paused)
    assert stats["refusals"] == {} and stats["funnel"]["visits"] == 0
    assert promos.reports.analytics(one)["funnel"]["visits"] == 1


def test_a_dead_consumers_entries_are_recovered_exactly_once(
    promos, consumer, outcomes, redis_client, clock
):
    cid, _ = live_campaign(promos, channels=["visit"])
    consumer.ensure_group()
    for i in range(5):
        append_geo_event(redis_client, f"u{i}", f"acme-{i % 3}", "dwell", clock.now())
    # Consumer "dead" reads the batch and dies before acknowledging anything.
    assert len(read_as(redis_client, "dead")) == 5
    assert consumer.pending() == {"pending": 5, "consumers": {"dead": 5}}
    assert consumer.run_once() == 0  # nothing new for B
    assert consumer.recover() == 0  # not idle long enough: the owner may still be working
    assert consumer.recover(min_idle_ms=0) == 5
    assert [r.outcome for r in outcomes] == ["issued"] * 5
    assert pending(redis_client) == 0
    assert len(ledger_entries(redis_client, cid, "issue")) == 5
    assert all(len(wallet(promos, f"u{i}")) == 1 for i in range(5))
    assert consumer.recover(min_idle_ms=0) == 0


def test_recovery_after_the_work_but_before_the_ack_issues_nothing_twice(
    promos, consumer, outcomes, redis_client, clock
):
    cid, _ = live_campaign(promos, channels=["visit"])
    consumer.ensure_group()
    for i in range(4):
        append_geo_event(redis_client, f"u{i}", "acme-0", "dwell", clock.now())
    dead = promos.consumer("dead")
    for _, fields in read_as(redis_client, "dead"):
        assert [r.outcome for r in dead.handle(fields)] == ["issued"]
    # ... and "dead" crashes here, before XACK.
    assert consumer.recover(min_idle_ms=0) == 4
    assert [r.outcome for r in outcomes] == ["existing"] * 4
    assert pending(redis_client) == 0
    assert len(ledger_entries(redis_client, cid, "issue")) == 4
    assert promos.reports.analytics(cid)["funnel"]["visits"] == 4


def test_a_malformed_entry_is_skipped_without_blocking_the_rest(
    promos, consumer, redis_client, clock, caplog
):
    live_campaign(promos, channels=["visit"])
    append_geo_event(redis_client, "u1", "acme-0", "dwell", clock.now())
    stream = geo_keys.events(3)
    redis_client.xadd(stream, {"event": "{not json"})
    redis_client.xadd(stream, {"something": "else"})
    redis_client.xadd(stream, {"event": json.dumps({"id": "x", "kind": "dwell"})})
    append_geo_event(redis_client, "u2", "acme-1", "dwell", clock.now())
    assert consumer.run_once() == 5
    assert len(wallet(promos, "u1")) == 1 and len(wallet(promos, "u2")) == 1
    assert pending(redis_client) == 0
    assert sum("cannot handle geo event" in r.getMessage() for r in caplog.records) == 3
    assert consumer.run_once() == 0


def test_consumer_recreates_its_group_when_the_stream_is_gone(
    promos, consumer, redis_client, clock
):
    live_campaign(promos, channels=["visit"])
    assert consumer.run_once() == 0
    redis_client.delete(geo_keys.shopper_events("u1"))
    assert consumer.run_once() == 0  # NOGROUP: recreated on the next call
    append_geo_event(redis_client, "u1", "acme-0", "dwell", clock.now())
    assert consumer.run_once() == 1
    assert len(wallet(promos, "u1")) == 1


# -- end to end: the location engine's dwell becomes a coupon ----------------------------------
def test_a_real_dwell_from_the_location_engine_issues_one_coupon(
    promos, consumer, redis_client, clock
):
    cid, oid = live_campaign(promos, channels=["visit"])
    engine = LocationEngine(redis_client, promos.campaigns.catalog, clock, EngineSettings())
    engine.set_consent("walker", True)
    kinds = []
    for dt in range(0, 241, 30):  # four minutes inside acme-0's fence, a fix every 30 s
        clock.set(T0 + dt)
        for result in engine.record_fixes("walker", [Fix(SHANGHAI[0], SHANGHAI[1], 5.0, T0 + dt)]):
            kinds += [e["kind"] for e in result.events]
    assert kinds == ["enter", "dwell"]
    streamed = streamed_geo_events(redis_client)
    assert [(e["kind"], e["store_id"], e["at"]) for e in streamed] == [
        ("enter", "acme-0", T0),
        ("dwell", "acme-0", T0 + 120),
    ]
    assert consumer.run_once() == 2
    coupons = wallet(promos, "walker")
    assert len(coupons) == 1
    coupon = coupons[0]
    assert (
        coupon["offer_id"],
        coupon["store_id"],
        coupon["source"]["kind"],
        coupon["source"]["event_id"],
    ) == (oid, "acme-0", "dwell", streamed[1]["id"])
    funnel = promos.reports.analytics(cid)["funnel"]
    assert (funnel["visits"], funnel["visitors"], funnel["coupons_from_visits"]) == (2, 1, 1)
    # Staying on produces no more events, and so no more coupons.
    clock.advance(600)
    engine.record_fixes("walker", [Fix(SHANGHAI[0], SHANGHAI[1], 5.0, clock.now())])
    assert consumer.run_once() == 0
    assert len(wallet(promos, "walker")) == 1


# -- partitions and the legacy stream ----------------------------------------------------------
def test_events_of_every_partition_are_handled(promos, consumer, outcomes, redis_client, clock):
    cid, _ = live_campaign(promos, channels=["visit"])
    shoppers = [f"v{i}" for i in range(20)]
    for shopper in shoppers:
        append_geo_event(redis_client, shopper, "acme-0", "dwell", clock.now())
    used = {geo_keys.partition(s, geo_keys.EVENT_PARTITIONS) for s in shoppers}
    assert len(used) > 5  # spread over many partitions
    assert consumer.run_once() == 20
    assert [r.outcome for r in outcomes] == ["issued"] * 20
    assert all(len(wallet(promos, s)) == 1 for s in shoppers)
    assert pending(redis_client) == 0
    # Each partition has the group, and nothing is left in any of them.
    for stream in geo_keys.event_streams():
        (group,) = redis_client.xinfo_groups(stream)
        assert (group["name"], group["pending"], group["lag"]) == (promo_keys.CONSUMER_GROUP, 0, 0)


def test_a_blocking_read_waits_on_one_partition_at_a_time(promos, consumer, redis_client, clock):
    live_campaign(promos, channels=["visit"])
    assert consumer.run_once(block_ms=1) == 0  # nothing anywhere: one short blocking read
    append_geo_event(redis_client, "u1", "acme-0", "dwell", clock.now())
    assert consumer.run_once(block_ms=1) == 1  # the non-blocking sweep of every partition


def test_the_legacy_stream_is_drained_new_and_pending_entries(
    promos, consumer, outcomes, redis_client, clock
):
    """An upgrade from the single `geo:events` stream loses nothing: entries an old release
    appended and never read, and entries an old consumer read but never acknowledged, are
    handled (once) by the new consumer; then it stops reading the old stream, and looks again
    at each recover() in case an old writer is still running."""
    cid, _ = live_campaign(promos, channels=["visit"])

    def legacy_event(shopper):
        event = append_geo_event(redis_client, shopper, "acme-0", "dwell", clock.now())
        stream = geo_keys.shopper_events(shopper)
        redis_client.delete(stream)  # as the old release appended it: to the single stream
        redis_client.xadd(geo_keys.LEGACY_EVENTS, {"event": json.dumps(event)})
        return event

    # The old release: its group on the single stream, a consumer that read 2 entries and died.
    redis_client.xgroup_create(
        geo_keys.LEGACY_EVENTS, promo_keys.CONSUMER_GROUP, id="0", mkstream=True
    )
    for shopper in ("old1", "old2"):
        legacy_event(shopper)
    read = redis_client.xreadgroup(
        promo_keys.CONSUMER_GROUP, "old-dead", {geo_keys.LEGACY_EVENTS: ">"}, count=10
    )
    assert len(read[0][1]) == 2
    for shopper in ("old3", "old4", "old5"):
        legacy_event(shopper)  # appended, never read
    append_geo_event(redis_client, "new1", "acme-0", "dwell", clock.now())  # after the upgrade

    assert consumer.run_once() == 4  # the new partition entry and the 3 unread legacy ones
    assert consumer.pending()["pending"] == 2  # the dead old consumer's, still in the legacy PEL
    assert consumer.recover(min_idle_ms=0) == 2
    assert pending(redis_client) == 0
    issued = ("old1", "old2", "old3", "old4", "old5", "new1")
    assert all(len(wallet(promos, s)) == 1 for s in issued)
    assert len(ledger_entries(redis_client, cid, "issue")) == 6
    assert consumer.run_once() == 0  # drained: the legacy stream is no longer read
    assert geo_keys.LEGACY_EVENTS not in consumer.sources()
    # An old writer still running during a rolling upgrade: the next recover() finds it.
    legacy_event("old6")
    assert consumer.recover(min_idle_ms=0) == 0
    assert consumer.run_once() == 1
    assert len(wallet(promos, "old6")) == 1
    assert pending(redis_client) == 0


def test_no_legacy_stream_means_no_legacy_reads(promos, consumer, redis_client):
    assert consumer.run_once() == 0
    assert consumer.recover(min_idle_ms=0) == 0
    assert redis_client.exists(geo_keys.LEGACY_EVENTS) == 0  # never created by the consumer
