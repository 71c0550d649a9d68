"""The location engine against a real Redis: state machine, spoof verdicts, ordering, privacy."""

from __future__ import annotations

import json
import math
import multiprocessing
import random

import pytest

from app.sinks import redis_connect
from core.clock import FrozenClock
from core.errors import DomainError
from geo import keys
from geo.engine import EngineSettings, EventSink, Fix, LocationEngine
from geo.geometry import LocalFrame
from geo.stores import StoreCatalog

from .conftest import T0

SHANGHAI = (31.2400, 121.4800)
BEIJING = (39.9042, 116.4074)


class Recorder(EventSink):
    def __init__(self):
        self.events = []

    def publish(self, shopper_id, events):
        self.events.extend(events)


@pytest.fixture
def catalog(redis_client, clock):
    return StoreCatalog(redis_client, clock)


@pytest.fixture
def sink():
    return Recorder()


@pytest.fixture
def engine(redis_client, catalog, clock, sink):
    return LocationEngine(redis_client, catalog, clock, EngineSettings(), sink=sink)


def add_store(catalog, sid="s1", lat=SHANGHAI[0], lon=SHANGHAI[1], fence=None, hours=None):
    data = {
        "id": sid,
        "name": sid,
        "brand": "B",
        "city": "Shanghai",
        "lat": lat,
        "lon": lon,
        "fence": fence or {"type": "circle", "radius_m": 100},
    }
    if hours is not None:
        data["opening_hours"] = hours
    return catalog.create(data)


def offset(lat, lon, east_m, north_m):
    """Return the point east_m/north_m metres away (local tangent frame)."""
    return LocalFrame(lat, lon).to_latlon(east_m, north_m)


def fix_at(lat, lon, t, acc=5.0, **kw):
    return Fix(lat=lat, lon=lon, accuracy_m=acc, recorded_at=t, **kw)


def kinds(results):
    return [e["kind"] for r in results for e in r.events]


def stream_events(r):
    """Every event in the stream partitions (one shopper's are in one partition, in order)."""
    return [
        json.loads(fields["event"])
        for stream in keys.event_streams()
        for _, fields in r.xrange(stream)
    ]


@pytest.fixture
def shopper(engine):
    engine.set_consent("u1", True)
    return "u1"


# -- geometry at the edges, through the engine ------------------------------------------------
@pytest.mark.parametrize("lat", [0.0, 31.24, 60.0, 84.9, -84.9])
@pytest.mark.parametrize("radius", [20, 100, 5000])
def test_circle_radius_plus_minus_one_metre(engine, catalog, shopper, clock, lat, radius):
    add_store(catalog, lat=lat, lon=121.48, fence={"type": "circle", "radius_m": radius})
    outside = offset(lat, 121.48, radius + 1.0, 0)
    inside = offset(lat, 121.48, radius - 1.0, 0)
    t = clock.now()
    assert kinds(engine.record_fixes(shopper, [fix_at(*outside, t, acc=1)])) == []
    assert kinds(engine.record_fixes(shopper, [fix_at(*inside, t + 1, acc=1)])) == ["enter"]


def test_polygon_edges_and_hole(engine, catalog, shopper, clock):
    lat0, lon0 = SHANGHAI
    frame = LocalFrame(lat0, lon0)

    def ring(half):
        pts = [(-half, -half), (half, -half), (half, half), (-half, half), (-half, -half)]
        return [list(reversed(frame.to_latlon(x, y))) for x, y in pts]

    add_store(catalog, fence={"type": "Polygon", "coordinates": [ring(100), ring(30)]})
    t = clock.now()
    in_hole = frame.to_latlon(0, 0)
    assert kinds(engine.record_fixes(shopper, [fix_at(*in_hole, t, acc=1)])) == []
    # Leaving the hole crosses the ring: a pass-by, not a visit.
    just_out = frame.to_latlon(101, 60)
    assert kinds(engine.record_fixes(shopper, [fix_at(*just_out, t + 60, acc=1)])) == ["transit"]
    just_in = frame.to_latlon(99, 60)
    assert kinds(engine.record_fixes(shopper, [fix_at(*just_in, t + 61, acc=1)])) == ["enter"]


def test_large_fence_found_through_its_tier(engine, catalog, shopper, clock):
    add_store(catalog, fence={"type": "circle", "radius_m": 5000})
    point = offset(*SHANGHAI, 4_990, 0)
    assert kinds(engine.record_fixes(shopper, [fix_at(*point, clock.now(), acc=1)])) == ["enter"]


# -- the state machine ------------------------------------------------------------------------
def test_jitter_at_the_edge_gives_one_enter_and_no_exit(engine, catalog, shopper, clock):
    add_store(catalog, fence={"type": "circle", "radius_m": 100})
    rng = random.Random(7)
    events = []
    t = clock.now()
    for i in range(120):  # ten minutes, a fix every 5 s
        angle, dist = rng.uniform(0, 2 * math.pi), 15 * math.sqrt(rng.random())
        point = offset(*SHANGHAI, 95 + dist * math.cos(angle), dist * math.sin(angle))
        clock.set(t + 5 * i)
        events += kinds(engine.record_fixes(shopper, [fix_at(*point, t + 5 * i, acc=15)]))
    assert events.count("enter") == 1
    assert "exit" not in events
    assert events.count("dwell") == 1


def test_dwell_after_loitering_time(engine, catalog, shopper, clock):
    add_store(catalog)
    t = clock.now()
    timeline = {}
    for dt in range(0, 181, 30):
        timeline[dt] = kinds(engine.record_fixes(shopper, [fix_at(*SHANGHAI, t + dt)]))
    assert timeline[0] == ["enter"]
    assert timeline[90] == [] and timeline[120] == ["dwell"] and timeline[150] == []


def test_one_wild_fix_never_exits(engine, catalog, shopper, clock):
    add_store(catalog)
    t = clock.now()
    far = offset(*SHANGHAI, 400, 0)
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t)])
    clock.advance(10)
    assert kinds(engine.record_fixes(shopper, [fix_at(*far, t + 10)])) == []
    clock.advance(10)
    assert kinds(engine.record_fixes(shopper, [fix_at(*SHANGHAI, t + 20)])) == []
    assert engine.inside(shopper)[0]["exit_pending"] is False
    # The sweeper has nothing to confirm: the next fix cancelled the pending exit.
    clock.advance(3600)
    assert engine.sweep() == []


def test_two_outside_fixes_exit(engine, catalog, shopper, clock):
    add_store(catalog)
    t = clock.now()
    far = offset(*SHANGHAI, 400, 0)
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t)])
    engine.record_fixes(shopper, [fix_at(*far, t + 10)])
    results = engine.record_fixes(shopper, [fix_at(*far, t + 20)])
    assert kinds(results) == ["exit"]
    assert results[0].events[0]["at"] == pytest.approx(t + 10)
    assert engine.inside(shopper) == []


def test_hysteresis_band_does_not_exit(engine, catalog, shopper, clock):
    add_store(catalog)  # r = 100 m: exit line at 120 m
    t = clock.now()
    band = offset(*SHANGHAI, 115, 0)
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t)])
    for i in range(1, 6):
        assert kinds(engine.record_fixes(shopper, [fix_at(*band, t + 10 * i)])) == []
    beyond = offset(*SHANGHAI, 125, 0)
    engine.record_fixes(shopper, [fix_at(*beyond, t + 100)])
    assert kinds(engine.record_fixes(shopper, [fix_at(*beyond, t + 110)])) == ["exit"]


def test_one_outside_fix_and_enough_time_exits_via_sweeper(
    engine, catalog, shopper, clock, sink, redis_client
):
    add_store(catalog)
    t = clock.now()
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t)])
    engine.record_fixes(shopper, [fix_at(*offset(*SHANGHAI, 400, 0), t + 10)])
    clock.set(t + 10 + 59)
    assert engine.sweep() == []
    clock.set(t + 10 + 60)
    events = engine.sweep()
    assert [e["kind"] for e in events] == ["exit"]
    assert events[0]["confirmed_by"] == "timeout"
    assert engine.inside(shopper) == []
    assert [e["kind"] for e in stream_events(redis_client)] == ["enter", "exit"]
    assert [e["kind"] for e in sink.events] == ["enter", "exit"]
    assert engine.sweep() == []


def test_inaccurate_fix_changes_no_state(engine, catalog, shopper, clock):
    add_store(catalog)
    results = engine.record_fixes(shopper, [fix_at(*SHANGHAI, clock.now(), acc=200)])
    assert results[0].verdict == "inaccurate" and kinds(results) == []
    assert engine.inside(shopper) == []


def test_closed_store_does_not_trigger_unless_always_active(engine, catalog, shopper, clock):
    # T0 is 20:26 UTC = 04:26 in Shanghai: the store opens at 10:00.
    hours = {
        "tz": "Asia/Shanghai",
        "weekly": {
            d: [["10:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        },
    }
    add_store(catalog, sid="closed", hours=hours)
    add_store(
        catalog,
        sid="always",
        lat=31.25,
        hours=hours,
        fence={"type": "circle", "radius_m": 100, "always_active": True},
    )
    t = clock.now()
    assert kinds(engine.record_fixes(shopper, [fix_at(*SHANGHAI, t)])) == []
    clock.advance(600)
    assert kinds(engine.record_fixes(shopper, [fix_at(31.25, SHANGHAI[1], t + 600)])) == ["enter"]
    # At 10:00 local the store opens: the same spot now enters.
    clock.set(T0 + (10 * 3600 - (4 * 3600 + 26 * 60 + 40)))
    assert kinds(engine.record_fixes(shopper, [fix_at(*SHANGHAI, clock.now())])) == ["enter"]


def test_transit_between_sparse_fixes(engine, catalog, shopper, clock):
    add_store(catalog)
    t = clock.now()
    west, east = offset(*SHANGHAI, -300, 0), offset(*SHANGHAI, 300, 0)
    engine.record_fixes(shopper, [fix_at(*west, t)])
    clock.advance(60)
    results = engine.record_fixes(shopper, [fix_at(*east, t + 60)])
    assert kinds(results) == ["transit"]
    assert results[0].events[0]["since"] == pytest.approx(t)
    assert engine.inside(shopper) == []
    beside = offset(*SHANGHAI, 300, 400)
    assert kinds(engine.record_fixes(shopper, [fix_at(*beside, t + 120)])) == []


# -- ordering and idempotency -----------------------------------------------------------------
def walk_in_and_out(t):
    inside = SHANGHAI
    far = offset(*SHANGHAI, 400, 0)
    return [
        fix_at(*far, t),
        fix_at(*inside, t + 10),
        fix_at(*inside, t + 140),
        fix_at(*far, t + 200),
        fix_at(*far, t + 210),
    ]


def test_batch_is_processed_in_recorded_order(engine, catalog, shopper, clock):
    add_store(catalog)
    batch = walk_in_and_out(clock.now() - 210)  # a phone's buffered fixes, sent at once
    shuffled = [batch[3], batch[0], batch[4], batch[2], batch[1]]
    results = engine.record_fixes(shopper, shuffled)
    assert [r.recorded_at for r in results] == sorted(f.recorded_at for f in batch)
    assert kinds(results) == ["enter", "dwell", "exit"]


def test_replayed_batch_is_ignored(engine, catalog, shopper, clock, redis_client):
    add_store(catalog)
    batch = walk_in_and_out(clock.now() - 210)
    engine.record_fixes(shopper, batch)
    again = engine.record_fixes(shopper, batch)
    assert all(r.ignored for r in again)
    assert {r.reason for r in again} == {"older_than_last", "duplicate"}
    assert len(stream_events(redis_client)) == 3


def test_older_fix_than_last_is_ignored(engine, catalog, shopper, clock):
    t = clock.now()
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t + 50)])
    (result,) = engine.record_fixes(shopper, [fix_at(*SHANGHAI, t + 10)])
    assert result.ignored and result.reason == "older_than_last"


def test_fix_from_the_future_is_refused(engine, shopper, clock):
    with pytest.raises(DomainError) as err:
        engine.record_fixes(shopper, [fix_at(*SHANGHAI, clock.now() + 3600)])
    assert err.value.code == "fix_in_future" and err.value.field == "fixes[0].recorded_at"


# -- spoof verdicts ---------------------------------------------------------------------------
def test_shanghai_to_beijing_in_five_minutes_is_a_jump(
    engine, catalog, shopper, clock, redis_client
):
    add_store(catalog, sid="bj", lat=BEIJING[0], lon=BEIJING[1])
    t = clock.now()
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t)])
    trust_before = engine.trust(shopper)
    (result,) = engine.record_fixes(shopper, [fix_at(*BEIJING, t + 300)])
    assert result.verdict == "jump" and result.events == []
    assert engine.trust(shopper) < trust_before
    stored = engine.recent_fixes(shopper)
    assert [f["verdict"] for f in stored] == ["ok", "jump"]
    assert engine.inside(shopper) == []


@pytest.mark.parametrize(
    ("east_m", "dt", "extra", "verdict"),
    [
        (2_000, 20, {}, "too_fast"),  # 100 m/s
        (200, 60, {}, "ok"),  # 3.3 m/s
        (10, 10, {"mock": True}, "mocked"),
        (10, 10, {"speed_mps": 80.0}, "too_fast"),
        (30, 0.5, {}, "ok"),  # GPS noise within the accuracy circles is not speed
    ],
)
def test_verdicts(engine, shopper, clock, east_m, dt, extra, verdict):
    t = clock.now()
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t, acc=20)])
    point = offset(*SHANGHAI, east_m, 0)
    clock.advance(dt)
    (result,) = engine.record_fixes(shopper, [fix_at(*point, t + dt, acc=20, **extra)])
    assert result.verdict == verdict


@pytest.mark.parametrize("ahead_s", [290, 299])
def test_a_future_stamp_cannot_hide_a_fast_move(engine, shopper, clock, ahead_s):
    # Fixes may be stamped up to FIX_MAX_FUTURE_S ahead of the server's clock; one received 60 s
    # after the anchor but stamped ~350 s after it stretched a 69 m/s move to 12 m/s ("ok").
    t = clock.now()
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t)])
    clock.advance(60)
    moved = offset(*SHANGHAI, 69 * 60, 0)
    (result,) = engine.record_fixes(shopper, [fix_at(*moved, clock.now() + ahead_s)])
    assert result.verdict == "too_fast"
    # The same move stamped honestly is judged the same.
    other = "u2"
    engine.set_consent(other, True)
    engine.record_fixes(other, [fix_at(*SHANGHAI, t)])
    (honest,) = engine.record_fixes(other, [fix_at(*moved, clock.now())])
    assert honest.verdict == "too_fast"


def test_a_future_stamp_within_a_batch_cannot_hide_a_fast_move(engine, shopper, clock):
    t = clock.now()
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t)])
    clock.advance(30)
    # A fix where the anchor was, now, then one 3 km away "290 s later" in the same request.
    away = offset(*SHANGHAI, 3_000, 0)
    results = engine.record_fixes(
        shopper, [fix_at(*SHANGHAI, clock.now()), fix_at(*away, clock.now() + 290)]
    )
    assert [r.verdict for r in results] == ["ok", "too_fast"]


def test_a_fast_phone_clock_and_buffered_fixes_are_still_ok(engine, shopper, clock):
    # A phone whose clock runs 2 minutes fast, walking, sending one fix at a time...
    skew = 120.0
    t = clock.now()
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t + skew)])
    for step in range(1, 4):
        clock.advance(30)
        here = offset(*SHANGHAI, 40 * step, 0)  # 1.3 m/s
        (result,) = engine.record_fixes(shopper, [fix_at(*here, clock.now() + skew)])
        assert result.verdict == "ok"
    # ...and a phone with a right clock sending ten minutes of buffered walking at once.
    other = "u2"
    engine.set_consent(other, True)
    start = clock.now() - 600
    batch = [fix_at(*offset(*SHANGHAI, 0, 60 * i), start + 60 * i) for i in range(10)]
    assert {r.verdict for r in engine.record_fixes(other, batch)} == {"ok"}


def test_spoofed_fixes_trigger_nothing(engine, catalog, shopper, clock):
    add_store(catalog)
    (result,) = engine.record_fixes(shopper, [fix_at(*SHANGHAI, clock.now(), mock=True)])
    assert result.verdict == "mocked" and result.events == []
    assert engine.inside(shopper) == []


def test_trust_recovers_with_clean_fixes(engine, shopper, clock):
    t = clock.now()
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t, mock=True)])
    low = engine.trust(shopper)
    assert low == 75
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t + i) for i in range(1, 11)])
    assert engine.trust(shopper) == 85


# -- consent, retention, erasure --------------------------------------------------------------
def test_no_fix_before_consent(engine, clock):
    with pytest.raises(DomainError) as err:
        engine.record_fixes("nobody", [fix_at(*SHANGHAI, clock.now())])
    assert err.value.code == "consent_required" and err.value.status == 403


def test_withdrawing_consent_erases_location(engine, catalog, shopper, clock, redis_client):
    add_store(catalog)
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, clock.now())])
    engine.set_consent(shopper, False)
    assert engine.recent_fixes(shopper) == [] and engine.inside(shopper) == []
    with pytest.raises(DomainError):
        engine.record_fixes(shopper, [fix_at(*SHANGHAI, clock.now() + 10)])


def test_raw_fixes_expire_within_retention(engine, shopper, clock, redis_client):
    t = clock.now()
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t)])
    fixes_key = keys.shopper_fixes(shopper)
    assert 0 < redis_client.ttl(fixes_key) <= 24 * 3600
    assert 0 < redis_client.ttl(keys.shopper_position(shopper)) <= 24 * 3600
    clock.advance(24 * 3600 + 1)
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, clock.now())])
    assert [f["t"] for f in engine.recent_fixes(shopper)] == [clock.now()]
    assert redis_client.zcard(fixes_key) == 1


def test_shorter_retention_is_honoured(redis_client, catalog, clock):
    engine = LocationEngine(
        redis_client, catalog, clock, EngineSettings(retention_s=3600, max_age_s=3600)
    )
    engine.set_consent("u2", True)
    engine.record_fixes("u2", [fix_at(*SHANGHAI, clock.now())])
    assert redis_client.ttl(keys.shopper_fixes("u2")) <= 3600
    (old,) = engine.record_fixes("u2", [fix_at(*SHANGHAI, clock.now() - 7200)])
    assert old.ignored


def test_erase_removes_every_personal_key(engine, catalog, shopper, clock, redis_client):
    add_store(catalog)
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, clock.now())])
    assert list(redis_client.scan_iter(match=f"{keys.shopper(shopper)}*"))
    engine.erase(shopper)
    assert list(redis_client.scan_iter(match=f"{keys.shopper(shopper)}*")) == []


# -- events, outbox, catalog changes ----------------------------------------------------------
def test_events_go_to_the_stream_with_deterministic_ids(
    engine, catalog, shopper, clock, redis_client, sink
):
    add_store(catalog)
    t = clock.now() - 210
    engine.record_fixes(shopper, walk_in_and_out(t))
    events = stream_events(redis_client)
    assert [e["kind"] for e in events] == ["enter", "dwell", "exit"]
    assert events[0]["id"] == f"{shopper}:s1:enter:{int((t + 10) * 1000)}"
    assert "lat" not in events[0]  # events outlive raw fixes: they carry no coordinates
    assert sink.events == events
    assert redis_client.exists(keys.shopper_outbox(shopper)) == 0


def test_outbox_left_by_a_crash_is_flushed(engine, shopper, redis_client):
    event = {"id": "u1:s1:enter:1", "kind": "enter", "shopper_id": shopper, "store_id": "s1"}
    redis_client.rpush(keys.shopper_outbox(shopper), json.dumps(event))
    assert engine.flush_outboxes([shopper]) == 1
    assert stream_events(redis_client) == [event]


def test_catalog_change_is_seen_by_a_warm_engine(engine, catalog, shopper, clock):
    t = clock.now()
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t)])  # warms the cache: no stores
    add_store(catalog)
    assert kinds(engine.record_fixes(shopper, [fix_at(*SHANGHAI, t + 1)])) == ["enter"]
    catalog.delete("s1")
    far = offset(*SHANGHAI, 400, 0)
    assert kinds(engine.record_fixes(shopper, [fix_at(*far, t + 120)])) == []
    assert engine.inside(shopper) == []


def test_many_shoppers_in_one_call(engine, catalog, clock):
    add_store(catalog)
    for i in range(50):
        engine.set_consent(f"m{i}", True)
    outcome = engine.record_many(
        [(f"m{i}", [fix_at(*SHANGHAI, clock.now())]) for i in range(50)]
        + [("stranger", [fix_at(*SHANGHAI, clock.now())])]
    )
    assert all(kinds(outcome[f"m{i}"]) == ["enter"] for i in range(50))
    assert outcome["stranger"].code == "consent_required"


# -- concurrency across processes -------------------------------------------------------------
def _race(url, barrier, t0, queue):
    r = redis_connect(url, decode_responses=True)
    clock = FrozenClock(t0)
    engine = LocationEngine(r, StoreCatalog(r, clock), clock)
    barrier.wait()
    results = engine.record_fixes("racer", [fix_at(*SHANGHAI, t0 + i) for i in range(20)])
    queue.put(sum(1 for x in results if not x.ignored))


def test_two_processes_racing_on_one_shopper(engine, catalog, redis_server, redis_client, clock):
    add_store(catalog)
    engine.set_consent("racer", True)
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(redis_server, barrier, clock.now(), queue))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    accepted = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
    # Each fix is accepted exactly once across all processes, and one enter is emitted.
    assert sum(accepted) == 20
    assert [e["kind"] for e in stream_events(redis_client)] == ["enter"]
    assert redis_client.zcard(keys.shopper_fixes("racer")) == 20


def test_next_fix_flushes_events_a_crash_left_in_the_outbox(
    engine, catalog, shopper, clock, redis_client
):
    add_store(catalog)
    left = {"id": "u1:s9:exit:1", "kind": "exit", "shopper_id": shopper, "store_id": "s9"}
    redis_client.rpush(keys.shopper_outbox(shopper), json.dumps(left))
    redis_client.hset(keys.shopper_state(shopper), "ob", "1")
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, clock.now())])
    assert [e["kind"] for e in stream_events(redis_client)] == ["exit", "enter"]
    assert redis_client.exists(keys.shopper_outbox(shopper)) == 0
    assert redis_client.hget(keys.shopper_state(shopper), "ob") is None


def test_sweeper_repairs_an_early_index_entry(engine, catalog, shopper, clock, redis_client):
    add_store(catalog)
    t = clock.now()
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t)])
    engine.record_fixes(shopper, [fix_at(*offset(*SHANGHAI, 400, 0), t + 10)])
    member = f"{shopper}|s1"
    index = keys.shopper_pending_exits(shopper)
    redis_client.zadd(index, {member: t})  # a stale, too early hint
    assert engine.sweep(now=t + 30) == []
    assert redis_client.zscore(index, member) == pytest.approx(t + 70)
    assert [e["kind"] for e in engine.sweep(now=t + 70)] == ["exit"]
    assert redis_client.zcard(index) == 0


def test_scripts_reload_after_the_server_lost_them(engine, catalog, shopper, clock, redis_client):
    add_store(catalog)
    t = clock.now()
    engine.record_fixes(shopper, [fix_at(*offset(*SHANGHAI, 400, 0), t)])
    redis_client.script_flush()  # as after a Redis restart without the script cache
    assert kinds(engine.record_fixes(shopper, [fix_at(*SHANGHAI, t + 300)])) == ["enter"]
    redis_client.script_flush()
    clock.advance(400)
    engine.record_fixes(shopper, [fix_at(*offset(*SHANGHAI, 400, 0), t + 400)])
    assert engine.inside(shopper)[0]["exit_pending"] is True


# -- one process's copy of a shopper's state, and concurrent calls sharing rounds -------------
def test_a_copy_made_stale_by_another_process_is_replaced_by_the_current_state(
    engine, redis_client, catalog, shopper, clock
):
    add_store(catalog)
    other = LocationEngine(redis_client, StoreCatalog(redis_client, clock), clock)
    t = clock.now()
    assert kinds(engine.record_fixes(shopper, [fix_at(*SHANGHAI, t)])) == ["enter"]
    # Another process moves the shopper out (this engine's copy still has them inside).
    far = offset(*SHANGHAI, 400, 0)
    other.record_fixes(shopper, [fix_at(*far, t + 10), fix_at(*far, t + 20)])
    # This engine's commit loses its compare-and-set, and the fix is judged on the current
    # state: older than the last processed fix, and no second exit.
    (late,) = engine.record_fixes(shopper, [fix_at(*far, t + 15)])
    assert (late.ignored, late.reason) == (True, "older_than_last")
    assert kinds(engine.record_fixes(shopper, [fix_at(*far, t + 30)])) == []
    assert [e["kind"] for e in stream_events(redis_client)] == ["enter", "exit"]


def test_erased_places_are_not_written_back_from_a_copy(
    engine, redis_client, catalog, shopper, clock
):
    add_store(catalog)
    other = LocationEngine(redis_client, StoreCatalog(redis_client, clock), clock)
    t = clock.now()
    engine.record_fixes(shopper, [fix_at(*SHANGHAI, t)])
    other.set_consent(shopper, False)  # erases the fence state this engine has a copy of
    other.set_consent(shopper, True)
    far = offset(*SHANGHAI, 400, 0)
    engine.record_fixes(shopper, [fix_at(*far, t + 10)])
    assert engine.inside(shopper) == []  # no pending exit from the erased visit
    assert [f["t"] for f in engine.recent_fixes(shopper)] == [t + 10]


def test_concurrent_calls_get_their_own_results(engine, catalog, clock):
    import threading

    add_store(catalog)
    shoppers = [f"c{i}" for i in range(12)]
    for sid in shoppers:
        engine.set_consent(sid, True)
    t = clock.now()
    # Two calls per shopper at once (two fixes each): the later one waits for the next round.
    calls = [(sid, [t + 2 * k, t + 2 * k + 1]) for sid in shoppers for k in range(2)]
    out: dict = {}
    barrier = threading.Barrier(len(calls))

    def call(sid, times):
        barrier.wait()
        out[(sid, times[0])] = engine.record_fixes(sid, [fix_at(*SHANGHAI, x) for x in times])

    threads = [threading.Thread(target=call, args=c) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(out) == len(calls)
    for (sid, first), results in out.items():
        assert [r.recorded_at for r in results] == [first, first + 1], sid
    for sid in shoppers:
        # Every fix counted once (in whichever order the two calls landed), one enter each.
        accepted = [r for k in range(2) for r in out[(sid, t + 2 * k)] if not r.ignored]
        assert 2 <= len(accepted) <= 4
        assert sum(kinds([r]) == ["enter"] for r in accepted) == 1
