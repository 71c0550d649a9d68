"""The catch game on a real Redis: deterministic spawns, every catch rule, rolls, rewards,
leaderboards, collection, anti-cheat strikes, notifications and erasure."""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import pytest

from app.sinks import redis_connect
from core.errors import DomainError
from game import Game, GameRefused, GameSettings, cells, keys, roll_for
from game.engine import RARE
from game.models import CATCH_RATE, FLEE_RATE
from game.scripts import CatchCall, RewardCall
from game.spawns import SLOT_S, SpawnTable
from geo import keys as geo_keys
from geo.engine import EngineSettings, Fix, LocationEngine
from geo.stores import entry_from_record

from .conftest import T0
from .game_helpers import (
    ALL,
    BEIJING,
    DAY_HOURS,
    NEXT_SHANGHAI_MIDNIGHT,
    SHANGHAI,
    TO_LATE,
    TO_NOON,
    World,
    catchable,
    distance,
    game_config,
    offset,
    outcome_of,
    shopper_for,
)
from .promo_helpers import draft_campaign, make_promotions

DAY0 = "2026-05-29"  # T0's day in Shanghai


@pytest.fixture
def world(redis_client, clock):
    return World(redis_client, clock)


def refused(code, fn, *args, **kwargs) -> GameRefused:
    """Call fn, expect a GameRefused with this code, return it."""
    with pytest.raises(GameRefused) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, info.value.message
    return info.value


def store(sid, lat, lon, *, brand="Acme", city="Shanghai", fence=None, hours=None):
    data = {
        "id": sid,
        "name": sid,
        "brand": brand,
        "city": city,
        "lat": lat,
        "lon": lon,
        "fence": fence or {"type": "circle", "radius_m": 80},
    }
    if hours is not None:
        data["opening_hours"] = hours
    return data


def u_shaped_fence(lat, lon):
    """A U-shaped mall, 120 m x 100 m with 10 m wings: its centroid lies outside it."""
    corners = [
        (-60, -50),
        (60, -50),
        (60, 50),
        (50, 50),
        (50, -40),
        (-50, -40),
        (-50, 50),
        (-60, 50),
        (-60, -50),
    ]
    ring = [list(reversed(offset(lat, lon, x, y))) for x, y in corners]
    return {"type": "Polygon", "coordinates": [ring]}


def ids(views):
    return {v["id"] for v in views}


# -- deterministic spawns -------------------------------------------------------------------


def test_spawns_are_identical_in_two_processes_and_after_a_restart(world, redis_server):
    world.join("u1")
    first = world.game.visible("u1", limit=ALL)
    assert len(first["spawns"]) > 50
    assert {v["store_id"] for v in first["spawns"]} == {None, "acme-0"}
    # A second process: its own Redis connection, promotions, engine and caches.
    r2 = redis_connect(redis_server, decode_responses=True)
    try:
        promos2 = make_promotions(r2, world.clock)
        engine2 = LocationEngine(r2, promos2.campaigns.catalog, world.clock)
        assert Game(r2, world.clock, promos2, engine2).visible("u1", limit=ALL) == first
    finally:
        r2.close()
    # A restart: a new Game object with empty caches.
    assert world.new_game().visible("u1", limit=ALL) == first


def _spawns_elsewhere(cid, config, where, store_record, slots):
    """Run in a fresh interpreter (its own hash seed): compute spawns from the config alone."""
    table = SpawnTable(cid, config)
    fence = entry_from_record(store_record).fence
    wild = [dataclasses.astuple(s) for cell, slot in where for s in table.wild(cell, slot)]
    return wild + [
        dataclasses.astuple(s)
        for slot in slots
        for s in table.in_store(store_record["id"], fence, slot)
    ]


def test_spawns_are_identical_when_computed_in_another_os_process(world):
    config = world.game.config(world.cid)
    where = [
        (cells.encode(31.2 + i * 0.0021, 121.4 + i * 0.0033), 1_977_700 + i) for i in range(40)
    ]
    record = world.catalog.get("acme-0")
    slots = list(range(1_977_700, 1_977_740))
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        theirs = pool.submit(_spawns_elsewhere, world.cid, config, where, record, slots).result(
            timeout=120
        )
    ours = _spawns_elsewhere(world.cid, config, where, record, slots)
    assert theirs == ours
    assert len(ours) == 40 * 20 + 40 * 6
    # (id, campaign, species, name, rarity, points, lat, lon, born_at, expires_at, store)
    assert ours[0][0] == f"w:{world.cid}:{where[0][0]}:{where[0][1]}:0"


def test_the_seed_reshuffles_the_map(world):
    cell, slot = cells.encode(*SHANGHAI), 1_977_777
    config = world.game.config(world.cid)
    same = SpawnTable(world.cid, config).wild(cell, slot)
    other = SpawnTable(world.cid, {**config, "seed": "another"}).wild(cell, slot)
    assert [(s.lat, s.species) for s in same] != [(s.lat, s.species) for s in other]
    assert SpawnTable(world.cid, config).wild(cell, slot) == same


def test_lifetimes_are_15_30_or_60_minutes_and_slots_15(world):
    table = SpawnTable(world.cid, world.config)
    spawns = [
        s
        for i in range(250)
        for s in table.wild(cells.encode(31.2 + i * 0.0014, 121.48), 1_977_000 + i)
    ]
    lifetimes = Counter(s.expires_at - s.born_at for s in spawns)
    assert set(lifetimes) == {900.0, 1800.0, 3600.0}
    # Weights 0.5/0.3/0.2 over 5,000 spawns: 4 standard errors are under 0.03.
    for life, share in ((900.0, 0.5), (1800.0, 0.3), (3600.0, 0.2)):
        assert lifetimes[life] / len(spawns) == pytest.approx(share, abs=0.03)
    for s in spawns:
        kind, cid, cell, slot, n = s.id.split(":")
        assert s.born_at == int(slot) * SLOT_S == int(slot) * 900
        assert cells.bounds(cell)[0] <= s.lat < cells.bounds(cell)[2]
        assert cells.bounds(cell)[1] <= s.lon < cells.bounds(cell)[3]


def test_a_spawn_is_visible_from_birth_until_expiry_only(world, clock):
    slot = int(clock.now() // SLOT_S) + 1  # the next generation: not born yet
    table = SpawnTable(world.cid, world.config)
    spawn = next(
        s for s in table.wild(cells.encode(*SHANGHAI), slot) if s.expires_at - s.born_at == 1800
    )
    world.engine.set_consent("u1", True)

    def seen() -> bool:
        world.place("u1", spawn.lat, spawn.lon)
        return spawn.id in ids(world.game.visible("u1", limit=ALL)["spawns"])

    clock.set(spawn.born_at - 1)
    assert not seen()
    refused("SPAWN_NOT_FOUND", world.throw, "u1", spawn)  # it does not exist yet
    clock.set(spawn.born_at)
    assert seen()
    clock.set(spawn.expires_at - 1)
    assert seen()
    clock.set(spawn.expires_at)
    assert not seen()
    error = refused("SPAWN_EXPIRED", world.throw, "u1", spawn)
    assert (error.status, error.field) == (410, "spawn_id")


def test_density_counts_and_species_follow_the_weights(world):
    config = {**world.config, "density_per_cell": 2.5}
    table = SpawnTable(world.cid, config)
    counts, species = [], Counter()
    for i in range(60):
        for j in range(40):
            found = table.wild(cells.encode(31.1 + i * 0.0014, 121.4 + j * 0.0014), 1_977_777)
            counts.append(len(found))
            species.update(s.species for s in found)
    # 2 or 3 per cell, 2.5 on average: 4 standard errors over 2,400 cells are 0.041.
    assert set(counts) == {2, 3}
    assert sum(counts) / len(counts) == pytest.approx(2.5, abs=0.041)
    total = sum(species.values())
    # Wild weights 6/3/2/1 (legendary never wild); at n ~ 6,000 four standard errors of a
    # share are at most 4 * sqrt(0.25 / 6000) = 0.026.
    expected = {"dumpling": 6 / 12, "lantern": 3 / 12, "koi": 2 / 12, "qilin": 1 / 12}
    assert set(species) == set(expected)
    for sid, share in expected.items():
        assert species[sid] / total == pytest.approx(share, abs=0.026)


def test_legendary_only_in_stores_with_boosted_rare_weights(world):
    table = SpawnTable(world.cid, world.config)
    fence = entry_from_record(world.catalog.get("acme-0")).fence
    spawns = [s for slot in range(2000) for s in table.in_store("acme-0", fence, slot)]
    assert len(spawns) == 2000 * 6
    shares = Counter(s.species for s in spawns)
    # Store weights: commons as configured, the rest x5: 6, 3, 2x5, 1x5, 1x5 of 29. Four
    # standard errors at n = 12,000 are at most 0.019.
    for sid, weight in {"dumpling": 6, "lantern": 3, "koi": 10, "qilin": 5, "dragon": 5}.items():
        assert shares[sid] / len(spawns) == pytest.approx(weight / 29, abs=0.019)
    assert {s.points for s in spawns if s.species == "dragon"} == {777}
    wild = [s for i in range(500) for s in table.wild(cells.encode(31.0 + i * 0.01, 121.5), 7)]
    assert "dragon" not in {s.species for s in wild}


# -- store spawns ---------------------------------------------------------------------------


def test_store_spawns_lie_inside_the_fence(redis_client, clock):
    mall = store(
        "acme-u",
        SHANGHAI[0] - 0.02,
        SHANGHAI[1],
        fence=u_shaped_fence(SHANGHAI[0] - 0.02, SHANGHAI[1]),
    )
    world = World(redis_client, clock, stores=[mall])
    table = SpawnTable(world.cid, world.config)
    for sid in ("acme-0", "acme-u"):
        fence = entry_from_record(world.catalog.get(sid)).fence
        spawns = [s for slot in range(1500) for s in table.in_store(sid, fence, slot)]
        assert len(spawns) > 1500 * 5
        assert all(fence.contains(s.lat, s.lon) for s in spawns), sid
        assert all(s.store_id == sid for s in spawns)
        # Ids are the positions in the slot's list, so any process finds the same creature.
        for slot in range(50):
            for n, s in enumerate(table.in_store(sid, fence, slot)):
                assert s.id == f"s:{world.cid}:{sid}:{slot}:{n}"
    # Through the game: every store spawn it shows lies in acme-0's 80 m circle.
    world.join("u1")
    views = [v for v in world.game.visible("u1", limit=ALL)["spawns"] if v["store_id"]]
    assert views and all(distance(world.game.spawn(v["id"]), *SHANGHAI) <= 80 for v in views)


def test_store_spawns_only_at_target_stores_of_live_campaigns(redis_client, clock):
    # A store of another brand 167 m north of acme-0; the shopper stands between them.
    world = World(
        redis_client,
        clock,
        stores=[store("other-0", SHANGHAI[0] + 0.0015, SHANGHAI[1], brand="Other")],
    )
    draft, _ = draft_campaign(world.promos)
    world.game.configure(draft, game_config(seed="draft"))
    world.join("u1", *offset(*SHANGHAI, 0, 83))
    views = world.game.visible("u1", limit=ALL)["spawns"]
    assert {v["store_id"] for v in views} == {None, "acme-0"}
    assert {v["campaign_id"] for v in views} == {world.cid}
    assert all(v["store_id"] for v in views if v["rarity"] == "legendary")
    slot = int(clock.now() // SLOT_S)
    refused("SPAWN_NOT_FOUND", world.game.spawn, f"s:{world.cid}:other-0:{slot}:0")
    refused("SPAWN_NOT_FOUND", world.game.spawn, f"w:{draft}:{cells.encode(*SHANGHAI)}:{slot}:0")
    # Paused: nothing at all. (Each process caches the live campaigns for a second: a new
    # Game object stands for "a second later".)
    world.promos.campaigns.transition(world.cid, "paused", actor="m1")
    later = world.new_game()
    assert later.visible("u1", limit=ALL)["spawns"] == []
    refused("SPAWN_NOT_FOUND", later.spawn, views[0]["id"])


def test_store_spawns_only_during_opening_hours(redis_client, clock):
    here = (SHANGHAI[0] - 0.02, SHANGHAI[1])
    world = World(redis_client, clock, stores=[store("acme-late", *here, hours=DAY_HOURS)])

    def store_spawns():
        world.place("u1", *here)
        return [v for v in world.game.visible("u1", limit=ALL)["spawns"] if v["store_id"]]

    world.engine.set_consent("u1", True)
    assert store_spawns() == []  # 04:26 in Shanghai: closed since 22:00
    refused(
        "SPAWN_NOT_FOUND",
        world.game.spawn,
        f"s:{world.cid}:acme-late:{int(clock.now() // SLOT_S)}:0",
    )
    clock.set(T0 + TO_NOON)
    at_noon = store_spawns()
    assert len(at_noon) >= 6 and {v["store_id"] for v in at_noon} == {"acme-late"}
    assert world.game.spawn(at_noon[0]["id"]).store_id == "acme-late"
    clock.set(T0 + TO_LATE)  # 23:30: closed; the last generation (21:45) is gone by 22:45
    assert store_spawns() == []


def test_store_creatures_vanish_when_the_store_closes(redis_client, clock):
    here = (SHANGHAI[0] - 0.02, SHANGHAI[1])
    world = World(redis_client, clock, stores=[store("acme-late", *here, hours=DAY_HOURS)])
    world.engine.set_consent("u1", True)
    clock.set(T0 + TO_LATE - 100 * 60)  # 21:50 in Shanghai: open until 22:00
    world.place("u1", *here)
    before = [v for v in world.game.visible("u1", limit=ALL)["spawns"] if v["store_id"]]
    assert before
    clock.advance(15 * 60)  # 22:05: closed, though some creatures were born to live on
    world.place("u1", *here)
    assert [v for v in world.game.visible("u1", limit=ALL)["spawns"] if v["store_id"]] == []
    alive = [v for v in before if v["expires_at"] > clock.now()]
    assert alive, "the seed gives creatures born before closing that would outlive it"
    refused("SPAWN_EXPIRED", world.game.spawn, alive[0]["id"])


def test_a_catch_needs_a_recent_trusted_fix_to_check_against(world, clock):
    shopper = world.join("u1")
    spawn = next(s for s in world.near(shopper) if s.expires_at > clock.now() + 700)
    world.engine.set_consent("stranger", True)
    refused("NO_POSITION", world.game.catch, "stranger", spawn.id, world.fix(spawn.lat, spawn.lon))
    clock.advance(world.game.settings.position_max_age_s + 1)
    refused("NO_POSITION", world.game.catch, shopper, spawn.id, world.fix(spawn.lat, spawn.lon))


def test_a_reported_speed_of_zero_does_not_unlock_a_moving_phone(world, clock):
    shopper = world.join("u1")
    spawn = next(s for s in world.near(shopper, within=60) if s.lat > SHANGHAI[0])
    clock.advance(5)
    moved = offset(spawn.lat, spawn.lon, 0, 40)  # 40-100 m from the anchor, in 5 s
    error = refused(
        "SPEED_LOCKED", world.game.catch, shopper, spawn.id, world.fix(*moved, speed=0.0)
    )
    assert error.details["speed_kmh"] > 30


# -- catching: the rules one by one ---------------------------------------------------------


def test_a_catch_answers_the_roll_and_notifies(world):
    shopper = world.join("u1")
    [spawn] = catchable(world, shopper, 1, store=False)
    result = world.throw(shopper, spawn)
    roll, _ = roll_for(spawn.id, shopper, 1)
    assert result["outcome"] == "caught" and result["attempt"] == 1
    assert result["roll"] == round(roll, 6) and roll < result["catch_rate"]
    assert result["catch_rate"] == CATCH_RATE[spawn.rarity]
    assert result["points"] == spawn.points == result["total_points"]
    assert result["coupon"] is None and result["spawn"]["id"] == spawn.id
    assert result["spawn"]["distance_m"] == 0.0
    assert [n for s, n, _ in world.notes.sent if s == shopper and n != "rare_spawn"] == [
        "catch_result",
        "reward",
    ]
    assert world.notes.named("catch_result", shopper) == [result]
    assert world.notes.named("reward", shopper) == [
        {
            "spawn_id": spawn.id,
            "species": spawn.species,
            "points": spawn.points,
            "total_points": float(spawn.points),
            "coupon": None,
        }
    ]
    status = world.game.status(shopper)
    assert status["catches_today"] == 1 and status["cooldown_until"] == T0 + 10


def test_a_miss_notifies_the_result_only(world):
    world.join("seed")
    spawn = world.near("seed")[0]
    shopper = world.join(shopper_for(spawn, "missed"))
    result = world.throw(shopper, spawn)
    assert result["outcome"] == "missed" and result["points"] == 0
    assert result["total_points"] is None
    assert [n for s, n, _ in world.notes.sent if s == shopper and n != "rare_spawn"] == [
        "catch_result"
    ]
    assert world.game.status(shopper)["catches_today"] == 0


# (name, the throw's fix relative to the spawn and the anchor, code, status, field, strike)
FIX_RULES = {
    "stale": (lambda w, s: w.fix(s.lat, s.lon, age=31), "STALE_FIX", 422, "fix.recorded_at", False),
    "from-the-future": (
        lambda w, s: w.fix(s.lat, s.lon, age=-31),
        "STALE_FIX",
        422,
        "fix.recorded_at",
        False,
    ),
    "mocked": (lambda w, s: w.fix(s.lat, s.lon, mock=True), "UNTRUSTED_FIX", 422, "fix", True),
    "too-fast": (
        lambda w, s: w.fix(*offset(*SHANGHAI, 1000, 0)),
        "UNTRUSTED_FIX",
        422,
        "fix",
        True,
    ),
    "jump": (lambda w, s: w.fix(*offset(*SHANGHAI, 0, 20_000)), "UNTRUSTED_FIX", 422, "fix", True),
    "inaccurate": (
        lambda w, s: w.fix(s.lat, s.lon, acc=200),
        "UNTRUSTED_FIX",
        422,
        "fix.accuracy_m",
        False,
    ),
    "speed-reported": (
        lambda w, s: w.fix(s.lat, s.lon, speed=8.4),
        "SPEED_LOCKED",
        409,
        None,
        False,
    ),
    "too-far": (lambda w, s: w.fix(*offset(s.lat, s.lon, 0, -81)), "TOO_FAR", 409, "fix", False),
}


@pytest.mark.parametrize("rule", sorted(FIX_RULES))
def test_fix_rules_refuse_without_starting_a_cooldown(world, clock, rule):
    make_fix, code, status, field, strike = FIX_RULES[rule]
    shopper = world.join("u1")
    # A spawn north of the shopper, so that 81 m south of it is further still.
    spawn = next(s for s in world.near(shopper, within=60) if s.lat > SHANGHAI[0])
    # Walking the ~140 m to a point 81 m beyond the spawn takes a while, or it is too fast.
    clock.advance(30 if rule == "too-far" else 5)
    error = refused(code, world.game.catch, shopper, spawn.id, make_fix(world, spawn))
    assert (error.status, error.field) == (status, field)
    assert world.game.strikes(shopper)["strikes"] == (1 if strike else 0)
    assert world.r.hget(keys.state(shopper), "last_attempt") is None
    # Refused by a rule: no attempt was made, so the next throw is not in a cooldown.
    assert world.throw(shopper, spawn)["attempt"] == 1


def test_speed_lock_boundaries_and_speed_from_the_anchor(world, clock):
    shopper = world.join("u1")
    spawn = world.near(shopper, within=60)[0]
    refused("SPEED_LOCKED", world.throw, shopper, spawn, speed=30.1 / 3.6)
    error = refused("SPEED_LOCKED", world.throw, shopper, spawn, speed=10.0)
    assert error.details == {"speed_kmh": 36.0}
    # Without a reported speed, the speed since the anchor counts: 60 m in 5 s is 43 km/h.
    clock.advance(5)
    world.place(shopper, *offset(spawn.lat, spawn.lon, -60, 0))
    clock.advance(5)
    error = refused("SPEED_LOCKED", world.throw, shopper, spawn, speed=None)
    assert error.details["speed_kmh"] == pytest.approx(43.2, abs=0.1)
    clock.advance(15)  # 60 m in 20 s: 10.8 km/h
    assert world.throw(shopper, spawn, speed=None)["attempt"] == 1


def test_a_future_stamp_cannot_hide_speed_from_the_speed_lock(world, clock):
    # The catch's fix may be up to 30 s ahead; the time since the anchor is bounded by when
    # the server received each: 150 m in 5 s is not 150 m in the 34 s the stamps claim.
    shopper = world.join("u1")
    spawn = world.near(shopper, within=60)[0]
    clock.advance(5)
    here = offset(spawn.lat, spawn.lon, 0, 0)
    start = offset(here[0], here[1], -150, 0)
    world.engine.record_fixes(shopper, [world.fix(*start)])
    clock.advance(5)
    stamped = Fix(spawn.lat, spawn.lon, 5.0, clock.now() + 29, None, False)
    error = refused("SPEED_LOCKED", world.game.catch, shopper, spawn.id, stamped)
    assert error.details["speed_kmh"] > 30


@pytest.mark.parametrize(("metres", "allowed"), [(79.5, True), (80.5, False)])
def test_interaction_radius(world, clock, metres, allowed):
    shopper = world.join("u1")
    spawn = world.near(shopper, within=60)[0]
    clock.advance(60)
    here = offset(spawn.lat, spawn.lon, 0, metres)
    world.place(shopper, *here)
    fix = world.fix(*here)
    if allowed:
        assert world.game.catch(shopper, spawn.id, fix)["attempt"] == 1
    else:
        error = refused("TOO_FAR", world.game.catch, shopper, spawn.id, fix)
        assert error.details["distance_m"] == pytest.approx(metres, abs=0.1)


def test_consent_is_required(world):
    world.join("seed")
    spawn = world.near("seed")[0]
    with pytest.raises(DomainError) as info:
        world.throw("stranger", spawn)
    assert (info.value.code, info.value.status, info.value.field) == (
        "consent_required",
        403,
        "consent",
    )
    world.engine.set_consent("seed", False)
    with pytest.raises(DomainError, match="consented"):
        world.throw("seed", spawn)


@pytest.mark.parametrize(("mocked_fixes", "allowed"), [(2, True), (3, False)])
def test_untrusted_shoppers_cannot_catch(world, clock, mocked_fixes, allowed):
    shopper = world.join("u1")
    spawn = world.near(shopper, within=60)[0]
    for _ in range(mocked_fixes):  # each mocked fix costs 25 trust points
        clock.advance(1)
        [result] = world.engine.record_fixes(shopper, [world.fix(*SHANGHAI, mock=True)])
        assert result.verdict == "mocked"
    assert world.engine.trust(shopper) == 100 - 25 * mocked_fixes
    if allowed:
        assert world.throw(shopper, spawn)["attempt"] == 1
    else:
        error = refused("UNTRUSTED", world.throw, shopper, spawn)
        assert error.status == 403
        # The geo verdicts behind the low score are a strike, with the fixes as evidence.
        record = world.game.strikes(shopper)
        assert record["strikes"] == 1 and record["level"] == "warning"
        evidence = record["history"][0]["evidence"]
        assert record["history"][0]["reason"] == "spoofed_locations"
        assert evidence["trust"] == 100 - 25 * mocked_fixes
        assert {f["verdict"] for f in evidence["suspicious_fixes"]} == {"mocked"}


def test_spawn_ids_that_name_no_creature(world, clock):
    shopper = world.join("u1")
    cid, cell, slot = world.cid, cells.encode(*SHANGHAI), int(clock.now() // SLOT_S)
    for spawn_id in [
        "nonsense",
        f"x:{cid}:{cell}:{slot}:0",
        f"w:{cid}:{cell}:{slot}:20",
        f"w:999:{cell}:{slot}:0",
        f"w:{cid}:wtw3sio:{slot}:0",
        f"w:{cid}:{cell[:5]}:{slot}:0",
        f"w:{cid}:{cell}1:{slot}:0",
        f"s:{cid}:no-store:{slot}:0",
        f"s:{cid}:acme-0:{slot}:6",
        f"w:{cid}:{cell}:{slot + 1}:0",
        f"s:{cid}:acme-0:{slot + 1}:0",
    ]:
        error = refused(
            "SPAWN_NOT_FOUND", world.game.catch, shopper, spawn_id, world.fix(*SHANGHAI)
        )
        assert (error.status, error.field) == (404, "spawn_id"), spawn_id
    assert world.game.spawn(f"w:{cid}:{cell}:{slot}:19").id == f"w:{cid}:{cell}:{slot}:19"
    # Four generations back, everything has expired (lifetimes are at most 60 minutes).
    for spawn_id in (f"w:{cid}:{cell}:{slot - 4}:0", f"s:{cid}:acme-0:{slot - 4}:0"):
        error = refused("SPAWN_EXPIRED", world.game.catch, shopper, spawn_id, world.fix(*SHANGHAI))
        assert (error.status, error.field) == (410, "spawn_id")


def test_already_caught_fled_and_retries(world):
    game = world.new_game(GameSettings(cooldown_s=0))
    world.join("seed")
    spawn = world.near("seed")[0]
    shopper = world.join(shopper_for(spawn, "missed", "missed", "caught", prefix="a"))
    results = [world.throw(shopper, spawn, game) for _ in range(3)]
    assert [r["outcome"] for r in results] == ["missed", "missed", "caught"]
    assert [r["attempt"] for r in results] == [1, 2, 3]
    # A retry is a new attempt with a new roll, each the audit's roll_for.
    rolls = [r["roll"] for r in results]
    assert rolls == [round(roll_for(spawn.id, shopper, k)[0], 6) for k in (1, 2, 3)]
    assert len(set(rolls)) == 3
    error = refused("ALREADY_CAUGHT", world.throw, shopper, spawn, game)
    assert (error.status, error.field) == (409, "spawn_id")

    runner = world.join(shopper_for(spawn, "fled", prefix="f"))
    assert world.throw(runner, spawn, game)["outcome"] == "fled"
    error = refused("FLED", world.throw, runner, spawn, game)
    assert (error.status, error.field) == (409, "spawn_id")
    # Other shoppers are not affected by either.
    other = world.join(shopper_for(spawn, "caught", prefix="o"))
    assert world.throw(other, spawn, game)["outcome"] == "caught"


def test_visible_spawns_say_which_this_shopper_caught(world):
    game = world.new_game(GameSettings(cooldown_s=0))
    world.join("seed")
    spawn = world.near("seed")[0]
    shopper = world.join(shopper_for(spawn, "missed", "caught", prefix="v"))

    def caught(who: str) -> dict[str, bool]:
        return {v["id"]: v["caught"] for v in game.visible(who, limit=ALL)["spawns"]}

    assert spawn.id in caught(shopper) and not any(caught(shopper).values())
    assert world.throw(shopper, spawn, game)["outcome"] == "missed"
    assert not any(caught(shopper).values())  # a miss may be thrown at again
    assert world.throw(shopper, spawn, game)["outcome"] == "caught"
    seen = caught(shopper)
    assert seen[spawn.id] is True
    assert [i for i, c in seen.items() if c] == [spawn.id]  # only that one
    runner = world.join(shopper_for(spawn, "fled", prefix="f"))
    assert world.throw(runner, spawn, game)["outcome"] == "fled"
    assert caught(runner)[spawn.id] is False  # fled, not caught (a throw says FLED)
    other = world.join("v-other")
    assert caught(other)[spawn.id] is False  # another shopper's catch is not theirs


def test_cooldown_between_throws(world, clock):
    shopper = world.join("u1")
    first, second = world.near(shopper)[:2]
    world.throw(shopper, first)
    clock.advance(5)
    error = refused("COOLDOWN", world.throw, shopper, second)
    assert error.status == 409 and error.details == {"until": T0 + 10}
    assert world.game.status(shopper)["cooldown_until"] == T0 + 10
    clock.set(T0 + 9.9)
    refused("COOLDOWN", world.throw, shopper, second)
    clock.set(T0 + 10)  # the refused throws did not extend it
    assert world.throw(shopper, second)["attempt"] == 1
    assert world.game.status(shopper)["cooldown_until"] == T0 + 20


def test_daily_cap_counts_catches_and_resets_at_midnight_in_shanghai(world, clock):
    game = world.new_game(GameSettings(cooldown_s=0, daily_cap=2))
    shopper = world.join("u1")
    caught = catchable(world, shopper, 2)
    missed = [s for s in world.near(shopper) if outcome_of(s, shopper) == "missed"][:2]
    assert world.throw(shopper, missed[0], game)["outcome"] == "missed"  # not a catch
    assert [world.throw(shopper, s, game)["outcome"] for s in caught] == ["caught"] * 2
    assert game.status(shopper)["catches_today"] == 2
    error = refused("DAILY_CAP_REACHED", world.throw, shopper, missed[1], game)
    assert (error.status, error.field) == (409, None)
    clock.set(NEXT_SHANGHAI_MIDNIGHT - 1)
    world.place(shopper, *SHANGHAI)
    refused("DAILY_CAP_REACHED", world.throw, shopper, world.near(shopper)[0], game)
    clock.set(NEXT_SHANGHAI_MIDNIGHT)
    world.place(shopper, *SHANGHAI)
    assert game.status(shopper)["catches_today"] == 0
    [fresh] = catchable(world, shopper, 1)
    assert world.throw(shopper, fresh, game)["outcome"] == "caught"
    assert game.status(shopper)["catches_today"] == 1


def test_impossible_travel_between_catches(redis_client, clock):
    # An engine that would take a fix in Beijing 20 minutes after one in Shanghai (the default
    # calls that a jump and keeps the Shanghai anchor): the game's own check still refuses.
    world = World(
        redis_client, clock, engine_settings=EngineSettings(max_speed_mps=2_000, jump_m=3_000_000)
    )
    shopper = world.join("traveller")
    [spawn] = catchable(world, shopper, 1)
    assert world.throw(shopper, spawn)["outcome"] == "caught"
    clock.advance(20 * 60)
    world.place(shopper, *BEIJING)
    far = world.near(shopper)[0]
    error = refused("IMPOSSIBLE_TRAVEL", world.throw, shopper, far)
    assert (error.status, error.field) == (422, "fix")
    [strike] = world.game.strikes(shopper)["history"]
    assert strike["reason"] == "impossible_travel" and strike["at"] == clock.now()
    evidence = strike["evidence"]
    assert evidence["km"] == pytest.approx(1067, abs=5) and evidence["minutes"] == 20.0
    assert evidence["from"]["city"] == "Shanghai"
    assert evidence["from"]["at"] == T0 and evidence["to"]["at"] == clock.now()
    # By plane six hours later it is fine (~47 m/s, under the 55 m/s limit).
    clock.advance(6 * 3600)
    world.place(shopper, *BEIJING)
    assert world.throw(shopper, world.near(shopper)[0])["attempt"] == 1


def test_inhuman_rate_is_limited_and_struck(world, clock):
    game = world.new_game(GameSettings(cooldown_s=0, rate_max=3))
    shopper = world.join("u1")
    spawns = world.near(shopper)
    for spawn in spawns[:3]:
        world.throw(shopper, spawn, game)
    error = refused("RATE_LIMITED", world.throw, shopper, spawns[3], game)
    assert error.status == 429
    [strike] = game.strikes(shopper)["history"]
    assert strike["reason"] == "inhuman_rate"
    assert strike["evidence"] == {"attempts": 3, "window_s": 600.0}
    clock.advance(601)  # the window has passed
    world.place(shopper, *SHANGHAI)
    fresh = next(s for s in world.near(shopper) if s not in spawns[:3])
    assert world.throw(shopper, fresh, game)["attempt"] == 1


# -- the roll -------------------------------------------------------------------------------


def test_the_script_decides_what_roll_for_says(world, redis_client):
    """2,000 attempts through the catch script itself: its outcome is the audit's roll."""
    world.game.scripts.load()
    rarities = list(CATCH_RATE)
    pairs = [(f"w:1:wtw3sjq:{i}:{i % 20}", f"audit-{i}", rarities[i % 4]) for i in range(2000)]
    pipe = redis_client.pipeline(transaction=False)
    for spawn_id, shopper, rarity in pairs:
        redis_client.hset(geo_keys.shopper_state(shopper), "consent", "1")
        CatchCall.for_shopper(
            shopper,
            now=T0,
            spawn=spawn_id,
            day=DAY0,
            cooldown_s=0,
            daily_cap=500,
            catch_rate=CATCH_RATE[rarity],
            flee_rate=FLEE_RATE[rarity],
            species_field="1|x",
            attempts_ttl_s=60,
            lat=31.24,
            lon=121.48,
            rate_window_s=600,
            city="Shanghai",
            ref=world.game.spawn_ref(spawn_id),
            last_catch_ttl_s=86400,
            board=f"1|shanghai|{DAY0}",
        ).queue(world.game.scripts, pipe)
    replies = pipe.execute()
    for (spawn_id, shopper, rarity), (outcome, attempt) in zip(pairs, replies, strict=True):
        roll, flee = roll_for(spawn_id, shopper, 1)
        expected = (
            "caught"
            if roll < CATCH_RATE[rarity]
            else "fled"
            if flee < FLEE_RATE[rarity]
            else "missed"
        )
        assert (outcome, attempt) == (expected, 1), (spawn_id, shopper, rarity)


def test_catch_and_flee_rates_by_rarity_over_20000_rolls():
    pairs = [
        (f"w:7:wtw3sjq:{1_977_000 + i // 20}:{i % 20}", f"shopper-{i % 997}") for i in range(20_000)
    ]
    rolls = [roll_for(spawn_id, shopper, 1) for spawn_id, shopper in pairs]
    assert len(set(rolls)) == 20_000
    for rarity, rate in CATCH_RATE.items():
        caught = sum(roll < rate for roll, _ in rolls) / len(rolls)
        # n = 20,000: the standard error of a share is at most sqrt(0.25 / n) = 0.0035, so
        # +-0.015 is about 4 standard errors.
        assert caught == pytest.approx(rate, abs=0.015), rarity
        flee_rolls = [flee for roll, flee in rolls if roll >= rate]
        fled = sum(flee < FLEE_RATE[rarity] for flee in flee_rolls) / len(flee_rolls)
        p = FLEE_RATE[rarity]
        assert fled == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / len(flee_rolls)))


# -- rewards --------------------------------------------------------------------------------


def test_the_reward_script_counts_a_catch_once(world, redis_client):
    cid = world.cid
    boards = [
        keys.board(cid, "campaign", "all"),
        keys.board(cid, "campaign", DAY0),
        keys.board(cid, "city:shanghai", "all"),
        keys.board(cid, "city:shanghai", DAY0),
    ]
    call = RewardCall(
        keys.rewarded(cid, 1),
        *boards,
        catch_id="0123456789abcdef01234567|u1",
        shopper="u1",
        points=50,
        day_board_ttl_s=3600,
        rewarded_ttl_s=7200,
    )
    rewarded = call.rewarded_key
    assert call.call(world.game.scripts) == [1, "50"]
    assert call.call(world.game.scripts) == [0, "50"]
    assert [redis_client.zscore(b, "u1") for b in boards] == [50.0] * 4
    assert 0 < redis_client.ttl(boards[1]) <= 3600 and redis_client.ttl(boards[0]) == -1
    assert 0 < redis_client.ttl(rewarded) <= 7200  # catches are only possible while spawns live


def test_store_catch_issues_one_game_coupon_and_a_retry_adds_nothing(world):
    shopper = world.join("u1")
    [spawn] = catchable(world, shopper, 1, store=True)
    result = world.throw(shopper, spawn)
    coupon = result["coupon"]
    catch_id = f"{world.game.spawn_ref(spawn.id)}|{shopper}"
    assert coupon["source"] == {"channel": "game", "catch_id": catch_id, "species": spawn.species}
    assert spawn.id not in json.dumps(coupon)  # the catch id is opaque
    assert coupon["store_id"] == "acme-0" and coupon["offer_id"] == world.oid
    assert coupon["token"].startswith("FF1.") and coupon["shopper_id"] == shopper
    refused("ALREADY_CAUGHT", world.throw, shopper, spawn)
    wallet = world.promos.coupons.wallet(shopper)["items"]
    assert [c["id"] for c in wallet] == [coupon["id"]]
    board = world.game.leaderboard(world.cid, shopper_id=shopper)
    assert board["me"]["points"] == spawn.points
    assert len(world.notes.named("reward", shopper)) == 1
    assert world.promos.campaigns.get_offer(world.cid, world.oid)["counters"]["issued"] == 1


def test_wild_catch_earns_points_but_no_coupon(world):
    shopper = world.join("u1")
    [spawn] = catchable(world, shopper, 1, store=False)
    assert world.throw(shopper, spawn)["coupon"] is None
    assert world.promos.coupons.wallet(shopper)["items"] == []


def test_a_retry_finishes_the_reward_a_crash_left_undone(world, monkeypatch):
    shopper = world.join("u1")
    [spawn] = catchable(world, shopper, 1, store=True)

    def crash(*args, **kwargs):
        raise ConnectionError("the process died between the catch and its reward")

    monkeypatch.setattr(world.game, "_reward", crash)
    with pytest.raises(ConnectionError):
        world.throw(shopper, spawn)
    monkeypatch.undo()
    assert world.game.leaderboard(world.cid, shopper_id=shopper)["me"]["points"] == 0
    for _ in range(2):
        refused("ALREADY_CAUGHT", world.throw, shopper, spawn)
        assert world.game.leaderboard(world.cid, shopper_id=shopper)["me"]["points"] == spawn.points
        assert len(world.promos.coupons.wallet(shopper)["items"]) == 1


# -- leaderboards and collection ------------------------------------------------------------


COMMONS = [
    {"id": "dumpling", "name": "Dumpling", "rarity": "common", "weight": 1},
    {"id": "lantern", "name": "Lantern", "rarity": "common", "weight": 1, "points": 10},
]


def test_leaderboards_rank_ties_by_city_and_day(redis_client, clock):
    world = World(
        redis_client,
        clock,
        species=COMMONS,
        settings=GameSettings(cooldown_s=0),
        stores=[store("acme-bj", *BEIJING, city="Beijing")],
    )
    counts = {"amy": 3, "bob": 2, "cat": 2, "dan": 1}
    for name, count in counts.items():
        world.join(name)
        for spawn in catchable(world, name, count):
            assert world.throw(name, spawn)["outcome"] == "caught"
    world.join("eve", *BEIJING)
    [spawn] = catchable(world, "eve", 1, store=False)
    world.throw("eve", spawn)

    def table(**kwargs):
        board = world.game.leaderboard(world.cid, **kwargs)
        return [(e["rank"], e["shopper_id"], e["points"]) for e in board["entries"]]

    # Equal scores share a rank; ties list in reverse id order (Redis ZREVRANGE).
    assert table() == [
        (1, "amy", 30),
        (2, "cat", 20),
        (2, "bob", 20),
        (4, "eve", 10),
        (4, "dan", 10),
    ]
    assert table(limit=2) == [(1, "amy", 30), (2, "cat", 20)]
    assert world.game.leaderboard(world.cid, limit=2)["players"] == 5
    shanghai = [(1, "amy", 30), (2, "cat", 20), (2, "bob", 20), (4, "dan", 10)]
    assert table(scope="city", city="Shanghai") == shanghai
    assert table(scope="city", city="SHANGHAI") == shanghai
    assert table(scope="city", city="Beijing") == [(1, "eve", 10)]
    with pytest.raises(DomainError) as info:
        world.game.leaderboard(world.cid, scope="city")
    assert info.value.field == "city"
    me = world.game.leaderboard(world.cid, shopper_id="dan")["me"]
    assert me == {"shopper_id": "dan", "points": 10, "rank": 4}
    assert world.game.leaderboard(world.cid, shopper_id="nobody")["me"] == {
        "shopper_id": "nobody",
        "points": 0,
        "rank": None,
    }
    day = world.game.leaderboard(world.cid, period="day")
    assert day["day"] == DAY0 and len(day["entries"]) == 5

    # The next day in Shanghai: a fresh day board, the overall board unchanged.
    clock.set(NEXT_SHANGHAI_MIDNIGHT)
    day = world.game.leaderboard(world.cid, period="day", shopper_id="dan")
    assert (day["day"], day["players"], day["entries"]) == ("2026-05-30", 0, [])
    assert day["me"]["rank"] is None
    world.place("dan", *SHANGHAI)
    [spawn] = catchable(world, "dan", 1)
    world.throw("dan", spawn)
    assert table(period="day") == [(1, "dan", 10)]
    assert table(scope="city", city="shanghai", period="day") == [(1, "dan", 10)]
    assert table() == [
        (1, "amy", 30),
        (2, "dan", 20),
        (2, "cat", 20),
        (2, "bob", 20),
        (5, "eve", 10),
    ]
    assert world.game.leaderboard(world.cid, shopper_id="dan")["me"]["rank"] == 2
    with pytest.raises(DomainError) as info:
        world.game.leaderboard("999")
    assert info.value.code == "game_not_found"


def test_collection_counts_species(world):
    game = world.new_game(GameSettings(cooldown_s=0))
    shopper = world.join("u1")
    assert game.collection(shopper) == {"items": [], "species": 0, "catches": 0}
    spawns = catchable(world, shopper, 6)
    for spawn in spawns:
        world.throw(shopper, spawn, game)
    expected = Counter(s.species for s in spawns)
    names = {s["id"]: (s["name"], s["rarity"]) for s in world.config["species"]}
    assert game.collection(shopper) == {
        "items": [
            {
                "campaign_id": world.cid,
                "species": sid,
                "count": count,
                "name": names[sid][0],
                "rarity": names[sid][1],
            }
            for sid, count in sorted(expected.items())
        ],
        "species": len(expected),
        "catches": 6,
    }


# -- anti-cheat -----------------------------------------------------------------------------


def test_strikes_escalate_from_warning_to_shadow_to_suspension(world, clock):
    shopper = world.join("u1")
    world.join("watcher")
    spawn = world.near(shopper)[0]
    refused("UNTRUSTED_FIX", world.throw, shopper, spawn, mock=True)
    strikes = world.game.strikes(shopper)
    assert (strikes["strikes"], strikes["level"]) == (1, "warning")
    assert strikes["shadow_restricted_until"] is None
    assert [p["reason"] for p in world.notes.named("game_warning", shopper)] == ["spoofed_location"]
    assert world.game.status(shopper)["warned"] is True
    # Within the hour it is the same incident: still one strike.
    clock.advance(59 * 60)
    world.place(shopper, *SHANGHAI)
    refused("UNTRUSTED_FIX", world.throw, shopper, world.near(shopper)[0], mock=True)
    assert world.game.strikes(shopper)["strikes"] == 1

    # Second incident, over an hour after the first: shadow restriction for 7 days.
    clock.advance(2 * 60)
    world.place(shopper, *SHANGHAI)
    world.place("watcher", *SHANGHAI)
    spawn = world.near(shopper)[0]
    refused(
        "UNTRUSTED_FIX",
        world.game.catch,
        shopper,
        spawn.id,
        world.fix(*offset(*SHANGHAI, 0, 20_000)),
    )
    strikes = world.game.strikes(shopper)
    assert (strikes["strikes"], strikes["level"]) == (2, "shadow_restricted")
    assert strikes["shadow_restricted_until"] == clock.now() + 7 * 86_400
    seen = world.game.visible(shopper, limit=ALL)["spawns"]
    everyone = world.game.visible("watcher", limit=ALL)["spawns"]
    rare = [v for v in everyone if v["rarity"] in RARE]
    assert rare and not [v for v in seen if v["rarity"] in RARE]
    assert ids(seen) == ids(everyone) - ids(rare)
    near_rare = world.game.spawn(next(v["id"] for v in rare if v["distance_m"] < 60))
    error = refused("SPAWN_NOT_FOUND", world.throw, shopper, near_rare)
    assert error.status == 404
    # Commons still work, but a store catch earns no coupon; the restriction stays secret.
    [store_common] = [
        s for s in world.near(shopper, store=True) if outcome_of(s, shopper) == "caught"
    ][:1]
    result = world.throw(shopper, store_common)
    assert result["outcome"] == "caught" and result["coupon"] is None
    assert result["points"] == store_common.points
    assert world.promos.coupons.wallet(shopper)["items"] == []
    assert world.game.status(shopper) == {
        "catches_today": 1,
        "daily_cap": 500,
        "cooldown_until": clock.now() + 10,
        "warned": True,
        "suspended": False,
    }

    # Third incident: suspended.
    clock.advance(61 * 60)
    world.place(shopper, *SHANGHAI)
    spawn = world.near(shopper)[0]
    clock.advance(5)
    refused(
        "UNTRUSTED_FIX", world.game.catch, shopper, spawn.id, world.fix(*offset(*SHANGHAI, 1000, 0))
    )
    strikes = world.game.strikes(shopper)
    assert (strikes["strikes"], strikes["level"]) == (3, "suspended")
    error = refused("SUSPENDED", world.game.visible, shopper)
    assert error.status == 403
    refused("SUSPENDED", world.throw, shopper, spawn)
    assert world.game.status(shopper)["suspended"] is True
    clock.advance(2 * 3600)  # a suspended shopper's throws are refused before any check
    refused("SUSPENDED", world.throw, shopper, spawn, mock=True)
    assert world.game.strikes(shopper)["strikes"] == 3
    history = world.game.strikes(shopper)["history"]
    # Every incident is kept with its evidence; the one within the hour did not count.
    assert [(h["reason"], h["evidence"]["verdict"], h["counted"]) for h in history] == [
        ("spoofed_location", "mocked", True),
        ("spoofed_location", "mocked", False),
        ("spoofed_location", "jump", True),
        ("spoofed_location", "too_fast", True),
    ]
    assert history[0]["evidence"]["fix"]["mock"] is True
    assert history[2]["evidence"]["moved_m"] > 10_000  # the jump, measured, but no place
    assert not [h for h in history if {"lat", "lon"} & set(h["evidence"]["fix"])]
    assert all(set(h["evidence"]["spawn"]) == {"ref", "kind", "rarity"} for h in history)
    assert [h["at"] for h in history] == [T0, T0 + 59 * 60, T0 + 61 * 60, T0 + 122 * 60 + 5]

    cleared = world.game.clear_strikes(shopper, "marketer:m1")
    assert (cleared["strikes"], cleared["level"]) == (0, "none")
    assert cleared["history"][-1]["reason"] == "cleared"
    assert cleared["history"][-1]["evidence"] == {"by": "marketer:m1"}
    world.place(shopper, *SHANGHAI)
    world.place("watcher", *SHANGHAI)
    watcher = world.game.visible("watcher", limit=ALL)["spawns"]
    assert world.game.visible(shopper, limit=ALL)["spawns"] == watcher
    assert world.game.status(shopper)["suspended"] is False


def test_shadow_restriction_ends_after_seven_days(world, clock):
    shopper = world.join("u1")
    refused("UNTRUSTED_FIX", world.throw, shopper, world.near(shopper)[0], mock=True)
    clock.advance(3601)
    world.place(shopper, *SHANGHAI)
    refused("UNTRUSTED_FIX", world.throw, shopper, world.near(shopper)[0], mock=True)
    assert world.game.strikes(shopper)["level"] == "shadow_restricted"
    assert not [v for v in world.game.visible(shopper, limit=ALL)["spawns"] if v["rarity"] in RARE]
    clock.advance(7 * 86_400)
    world.place(shopper, *SHANGHAI)
    assert [v for v in world.game.visible(shopper, limit=ALL)["spawns"] if v["rarity"] in RARE]
    assert world.game.strikes(shopper)["shadow_restricted_until"] is None


def test_inaccurate_fixes_are_refused_without_a_strike(world):
    shopper = world.join("u1")
    spawn = world.near(shopper)[0]
    for _ in range(3):
        refused("UNTRUSTED_FIX", world.throw, shopper, spawn, acc=500)
    assert world.game.strikes(shopper)["strikes"] == 0


# -- notifications and erasure --------------------------------------------------------------


def test_rare_spawns_are_announced_once_per_shopper_and_spawn(world):
    world.join("a")
    first = world.game.visible("a", limit=ALL)["spawns"]
    for _ in range(10):  # three per query at most
        world.game.visible("a", limit=ALL)
    # Announced: the rare ones within catching range; farther ones are only listed.
    reach = world.game.settings.interaction_radius_m
    rare = {v["id"] for v in first if v["rarity"] in RARE and v["distance_m"] <= reach}
    assert any(v["rarity"] in RARE and v["distance_m"] > reach for v in first)
    announced = [p["id"] for p in world.notes.named("rare_spawn", "a")]
    assert rare and sorted(announced) == sorted(rare)
    # Another process has its own memory: it may announce again, with the same ids.
    other = world.new_game()
    for _ in range(10):
        other.visible("a", limit=ALL)
    again = [p["id"] for p in world.notes.named("rare_spawn", "a")][len(rare) :]
    assert sorted(again) == sorted(rare)
    # Another shopper gets their own announcements, with the spawn's view.
    world.join("b")
    for _ in range(10):
        world.game.visible("b", limit=ALL)
    mine = {p["id"]: p for p in world.notes.named("rare_spawn", "b")}
    assert set(mine) == rare
    assert all(p["rarity"] in RARE and "distance_m" in p and "ar" in p for p in mine.values())
    assert not [p for p in world.notes.named("rare_spawn") if p["rarity"] == "common"]


def test_erase_removes_the_shoppers_game_state(world, redis_client):
    game = world.new_game(GameSettings(cooldown_s=0))
    shopper = world.join("u1")
    game.visible(shopper, limit=ALL)
    for spawn in catchable(world, shopper, 2):
        world.throw(shopper, spawn, game)
    refused("UNTRUSTED_FIX", world.throw, shopper, world.near(shopper)[0], game, mock=True)
    prefix = keys.shopper(shopper)
    assert len(list(redis_client.scan_iter(match=f"{prefix}*"))) >= 5
    game.erase(shopper)
    assert list(redis_client.scan_iter(match=f"{prefix}*")) == []
    assert game.collection(shopper)["items"] == []
    assert game.strikes(shopper) == {
        "shopper_id": shopper,
        "strikes": 0,
        "level": "none",
        "shadow_restricted_until": None,
        "history": [],
    }
    assert game.status(shopper)["catches_today"] == 0


# -- privacy --------------------------------------------------------------------------------


def game_dump(r, shopper: str) -> str:
    """Everything the game keeps under the shopper's tag, as one text."""
    parts = []
    for key in r.scan_iter(match=f"{keys.shopper(shopper)}*"):
        kind = r.type(key)
        value = {
            "hash": r.hgetall,
            "list": lambda k: r.lrange(k, 0, -1),
            "zset": lambda k: r.zrange(k, 0, -1),
            "set": r.smembers,
            "string": r.get,
        }[kind](key)
        parts.append(f"{key}={value}")
    return "\n".join(parts)


def test_the_last_catch_place_expires_with_the_fixes_and_goes_with_consent(
    world, redis_client, clock
):
    shopper = world.join("u1")
    [spawn] = catchable(world, shopper, 1)
    assert world.throw(shopper, spawn)["outcome"] == "caught"
    place = redis_client.hgetall(keys.last_catch(shopper))
    assert float(place["lat"]) == pytest.approx(spawn.lat, abs=1e-6)
    assert 0 < redis_client.ttl(keys.last_catch(shopper)) <= world.engine.settings.retention_s
    assert not {"last_catch_lat", "last_catch_lon"} & set(redis_client.hgetall(keys.state(shopper)))
    world.engine.set_consent(shopper, False)  # geo's erasure reaches the game
    assert redis_client.exists(keys.last_catch(shopper)) == 0
    assert f"{spawn.lat:.4f}" not in game_dump(redis_client, shopper)
    # The attempts are kept (a fled creature stays fled) under an opaque reference.
    world.engine.set_consent(shopper, True)
    clock.advance(5)
    world.place(shopper, *SHANGHAI)
    refused("ALREADY_CAUGHT", world.throw, shopper, spawn)


def test_attempts_catch_ids_and_evidence_name_no_place(world, redis_client):
    game = world.new_game(GameSettings(cooldown_s=0))
    shopper = world.join("u1")
    wild = [s for s in world.near(shopper, store=False) if outcome_of(s, shopper) == "caught"][0]
    store = [s for s in world.near(shopper, store=True) if outcome_of(s, shopper) == "caught"][0]
    game.catch(shopper, wild.id, world.fix(wild.lat, wild.lon))
    game.catch(shopper, store.id, world.fix(store.lat, store.lon))
    refused("UNTRUSTED_FIX", world.throw, shopper, world.near(shopper)[-1], game, mock=True)
    cell, store_id = wild.id.split(":")[2], store.id.split(":")[2]
    dump = game_dump(redis_client, shopper)
    for campaign_key in redis_client.scan_iter(match=f"game:{{c:{world.cid}}}:rewarded*"):
        dump += str(redis_client.hgetall(campaign_key))
    assert "attempts" not in dump and cell not in dump and store_id not in dump, dump
    assert wild.id not in dump and store.id not in dump
    [incident] = game.strikes(shopper)["history"]
    assert incident["evidence"]["spawn"]["ref"] == game.spawn_ref(world.near(shopper)[-1].id)
    # The reference is keyed: another key gives another reference, so it cannot be recomputed
    # from the cells of a city without the server's secret.
    other = world.new_game(GameSettings(reference_key=b"another key"))
    assert other.spawn_ref(wild.id) != game.spawn_ref(wild.id)


def test_incidents_within_the_hour_are_kept_and_counted_once_per_kind(world, clock):
    game = world.new_game(GameSettings(cooldown_s=0, rate_max=2))
    shopper = world.join("u1")
    spawns = world.near(shopper)
    refused("UNTRUSTED_FIX", world.throw, shopper, spawns[0], game, mock=True)
    clock.advance(60)
    world.place(shopper, *SHANGHAI)
    refused("UNTRUSTED_FIX", world.throw, shopper, spawns[1], game, mock=True)
    assert game.strikes(shopper)["strikes"] == 1
    for spawn in spawns[2:4]:
        game.catch(shopper, spawn.id, world.fix(spawn.lat, spawn.lon))
    refused("RATE_LIMITED", world.throw, shopper, spawns[4], game)  # another kind: counts
    history = game.strikes(shopper)["history"]
    assert [(h["reason"], h["counted"]) for h in history] == [
        ("spoofed_location", True),
        ("spoofed_location", False),
        ("inhuman_rate", True),
    ]
    assert game.strikes(shopper)["strikes"] == 2
    assert history[1]["evidence"]["fix"]["mock"] is True  # the uncounted one keeps its evidence


def test_a_catch_after_consent_was_withdrawn_writes_no_place(world, redis_client):
    shopper = world.join("u1")
    [spawn] = catchable(world, shopper, 1)
    redis_client.hset(geo_keys.shopper_state(shopper), "consent", "0")  # withdrawn meanwhile
    reply = CatchCall.for_shopper(
        shopper,
        now=T0,
        spawn=spawn.id,
        day=DAY0,
        cooldown_s=0,
        daily_cap=500,
        catch_rate=1.0,
        flee_rate=0.0,
        species_field="1|x",
        attempts_ttl_s=60,
        lat=spawn.lat,
        lon=spawn.lon,
        rate_window_s=600,
        city="Shanghai",
        ref=world.game.spawn_ref(spawn.id),
        last_catch_ttl_s=86400,
        board=f"1|shanghai|{DAY0}",
    ).call(world.game.scripts)
    assert reply == ["no", "CONSENT"]
    assert redis_client.exists(keys.last_catch(shopper), keys.attempts(shopper)) == 0


def test_erase_takes_the_shopper_off_every_board(world, redis_client):
    shopper = world.join("u1")
    world.join("u2")
    for who in (shopper, "u2"):
        [spawn] = catchable(world, who, 1)
        world.throw(who, spawn)
    world.game.erase(shopper)
    for key in redis_client.scan_iter(match=f"game:{{c:{world.cid}}}:lb:*"):
        assert redis_client.zscore(key, shopper) is None, key
        assert redis_client.zscore(key, "u2") is not None
