"""Each process's fence index (geo/fence_index.py) against the GEOSEARCH it replaced, on the
real server; the catalog version check and its invalidation; the event partitions."""

from __future__ import annotations

import random
import zlib

import pytest

from geo import keys
from geo.engine import EngineSettings, Fix, LocationEngine
from geo.fence_index import FenceIndex, geo_distance_m, geo_point
from geo.geometry import LocalFrame
from geo.stores import CatalogChanges, StoreCatalog, entry_from_record, tier_of

SHANGHAI = (31.2400, 121.4800)

# The script the engine ran on every fix before the index (one GEOSEARCH per non-empty tier
# per point, on GEO sets of fence anchors per tier that the catalog no longer keeps), kept here
# with such sets written by the test as the reference the index must agree with.
# KEYS: the catalog version, then the fence GEO sets to search. ARGV: one radius per GEO set,
# then (lon, lat, extra radius) per point.
CANDIDATES_LUA = """
local nsets = #KEYS - 1
local out = {redis.call('GET', KEYS[1]) or '0'}
local i = nsets + 1
while i <= #ARGV do
  local found = {}
  local lat = tonumber(ARGV[i + 1])
  local searchable = lat <= 85.05112878 and lat >= -85.05112878
  for k = 1, (searchable and nsets or 0) do
    local radius = tonumber(ARGV[k]) + tonumber(ARGV[i + 2])
    local hits = redis.call('GEOSEARCH', KEYS[k + 1], 'FROMLONLAT', ARGV[i], ARGV[i + 1],
                            'BYRADIUS', radius, 'm')
    for _, member in ipairs(hits) do found[#found + 1] = member end
  end
  out[#out + 1] = table.concat(found, ',')
  i = i + 3
end
return out
"""

# Places with stores: a dense street, the equator, the far north and south, both sides of the
# antimeridian, and the edge of what a store may be (85 degrees).
CENTRES = [
    SHANGHAI,
    (0.0005, 36.8),
    (69.65, 18.95),
    (-54.8, -68.3),
    (-17.7, 179.995),
    (-17.7, -179.995),
    (84.97, 10.0),
]


def random_fence(rng: random.Random, lat: float, lon: float) -> dict:
    if rng.random() < 0.15:  # a polygon a little off the store's point
        frame = LocalFrame(lat, lon)
        half = rng.uniform(10, 400)
        east, north = rng.uniform(-100, 100), rng.uniform(-100, 100)
        ring = []
        for dx, dy in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)):
            plat, plon = frame.to_latlon(east + dx * half, north + dy * half * 0.7)
            ring.append([plon, plat])
        return {"type": "Polygon", "coordinates": [ring]}
    radius = rng.choice([20, 35, 60, 80, 120, 180, 250, 300, 600, 1000, 2500, 5000])
    return {"type": "circle", "radius_m": radius}


def make_catalog(catalog: StoreCatalog, rng: random.Random, per_centre: int = 60) -> None:
    rows = []
    for c, (lat0, lon0) in enumerate(CENTRES):
        frame = LocalFrame(lat0, lon0)
        for i in range(per_centre):
            spread = rng.choice([300.0, 2_000.0, 15_000.0])
            lat, lon = frame.to_latlon(rng.uniform(-spread, spread), rng.uniform(-spread, spread))
            lat = max(-85.0, min(85.0, lat))
            lon = (lon + 180.0) % 360.0 - 180.0
            data = {
                "id": f"c{c}-{i}",
                "name": "S",
                "brand": "B",
                "city": "C",
                "lat": lat,
                "lon": lon,
                "fence": random_fence(rng, lat, lon),
            }
            rows.append((f"c{c}-{i}", data))
    report = catalog.import_rows(rows)
    assert report.errors == []


def reference_key(tier: int) -> str:
    """A reference GEO set of fence anchors, as the catalog kept them per tier before the index
    (under the catalog's tag, so in the slot of keys.VERSION)."""
    return f"{keys.CATALOG}:test-fences:{tier}"


def write_reference_sets(r, entries) -> None:
    """GEOADD every fence's anchor to its tier's reference set, as the catalog used to."""
    pipe = r.pipeline(transaction=False)
    for sid, entry in entries.items():
        pipe.geoadd(reference_key(tier_of(entry.fence)), (entry.fence.lon, entry.fence.lat, sid))
    pipe.execute()


def reference_catalog(r, clock):
    """The random catalog of the comparison tests, its entries with their reference GEO sets,
    and this process's index of it; with the random generator to draw points from next."""
    rng = random.Random(20261207)
    catalog = StoreCatalog(r, clock)
    make_catalog(catalog, rng)
    _version, records = catalog.load_all()
    entries = {sid: entry_from_record(rec) for sid, rec in records.items()}
    write_reference_sets(r, entries)
    return rng, entries, FenceIndex(entries)


def lua_candidates(r, index: FenceIndex, points):
    """Ask the reference script for the candidates of points [(lon, lat, extra)]."""
    keys_ = [keys.VERSION] + [reference_key(t) for t, _ in index.tiers]
    args = [f"{radius:.1f}" for _, radius in index.tiers]
    for lon, lat, extra in points:
        args += [lon, lat, extra]
    reply = r.eval(CANDIDATES_LUA, len(keys_), *keys_, *args)
    return [set(found.split(",")) if found else set() for found in reply[1:]]


def random_points(rng: random.Random, n: int):
    points = []
    for _ in range(n):
        lat0, lon0 = rng.choice(CENTRES)
        frame = LocalFrame(lat0, lon0)
        spread = rng.choice([200.0, 1_000.0, 8_000.0, 25_000.0])
        lat, lon = frame.to_latlon(rng.uniform(-spread, spread), rng.uniform(-spread, spread))
        lat = max(-89.0, min(89.0, lat))
        lon = (lon + 180.0) % 360.0 - 180.0
        extra = 0.0 if rng.random() < 0.7 else rng.choice([30.0, 400.0, 5_000.0, 99_000.0])
        if rng.random() < 0.3:
            extra = rng.uniform(25.0, 100_000.0)
        points.append((lon, lat, extra))
    # Beyond the GEO range (never searched), far from every store, and on the antimeridian.
    points += [(10.0, 85.06, 0.0), (10.0, -86.0, 50.0), (-40.0, -20.0, 0.0)]
    points += [(-180.0, -17.7, 1_000.0), (-180.0, -17.7, 0.0), (179.9999, -17.7, 0.0)]
    return points


def test_the_index_finds_what_geosearch_found_on_random_points(redis_client, clock):
    rng, entries, index = reference_catalog(redis_client, clock)
    assert len(index) == len(entries) == 7 * 60
    assert len(index.tiers) == len(keys.TIERS)  # every tier is in use
    points = random_points(rng, 3_000)
    expected = []
    for start in range(0, len(points), 500):
        expected += lua_candidates(redis_client, index, points[start : start + 500])
    got = [index.candidates(lon, lat, extra) for lon, lat, extra in points]
    mismatches = [(p, e ^ g) for p, e, g in zip(points, expected, got, strict=True) if e != g]
    assert mismatches == []
    # The comparison means something: most points near stores have candidates, some many.
    assert sum(1 for found in got if found) > len(points) // 2
    assert max(len(found) for found in got) > 20


def test_exactly_on_the_antimeridian_the_index_also_finds_the_far_side(redis_client, clock):
    """The one known difference: from longitude +180.0 exactly, Valkey's search boxes do not
    reach across to the west side (+180 encodes one past the last geohash cell), so GEOSEARCH
    missed fences a few hundred metres away there; the index finds them (and everything
    GEOSEARCH found). No phone reports +180.0 exactly in practice."""
    rng, entries, index = reference_catalog(redis_client, clock)
    (lua,) = lua_candidates(redis_client, index, [(180.0, -17.7, 0.0)])
    found = index.candidates(180.0, -17.7)
    assert lua < found
    assert all(entries[sid].fence.lon < 0 for sid in found - lua)  # all west of it
    assert found == index.candidates(-180.0, -17.7)  # the same place


def test_quantised_points_and_distances_are_the_servers(redis_client):
    rng = random.Random(7)
    for i in range(200):
        lon, lat = rng.uniform(-180, 180), rng.uniform(-85, 85)
        redis_client.geoadd("geo:{t}:probe", (lon, lat, f"p{i}"))
        (stored,) = redis_client.geopos("geo:{t}:probe", f"p{i}")
        assert geo_point(lon, lat) == pytest.approx(stored, abs=1e-12)
    # The distance of each member as the server reports it.
    ref_lon, ref_lat = 121.48, 31.24
    for name, distance in redis_client.geosearch(
        "geo:{t}:probe",
        longitude=ref_lon,
        latitude=ref_lat,
        radius=30_000_000,
        unit="m",
        withdist=True,
    ):
        ((lon, lat),) = redis_client.geopos("geo:{t}:probe", name)
        assert geo_distance_m(ref_lon, ref_lat, lon, lat) == pytest.approx(distance, abs=1e-3)


def test_an_empty_catalog_has_no_candidates():
    index = FenceIndex({})
    assert index.tiers == [] and len(index) == 0
    assert index.candidates(121.48, 31.24) == set()
    assert index.candidates(121.48, 31.24, 100_000.0) == set()


# -- the catalog version check ----------------------------------------------------------------
def add_store(catalog, sid="s1"):
    return catalog.create(
        {
            "id": sid,
            "name": sid,
            "brand": "B",
            "city": "Shanghai",
            "lat": SHANGHAI[0],
            "lon": SHANGHAI[1],
            "fence": {"type": "circle", "radius_m": 100},
        }
    )


class Ticks:
    """An injected monotonic clock for the engine's version check interval."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def fix(t):
    return [Fix(SHANGHAI[0], SHANGHAI[1], 5.0, t)]


def kinds(results):
    return [e["kind"] for r in results for e in r.events]


def test_another_processes_store_change_shows_within_the_check_interval(redis_client, clock):
    ticks = Ticks()
    here = StoreCatalog(redis_client, clock, changes=CatalogChanges())
    engine = LocationEngine(
        redis_client, here, clock, EngineSettings(catalog_check_s=1.0), monotonic=ticks
    )
    engine.set_consent("u1", True)
    engine.set_consent("u2", True)
    t = clock.now()
    assert kinds(engine.record_fixes("u1", fix(t))) == []  # first fix: reads the version
    # Another process (its own count of catalog writes) adds a store.
    there = StoreCatalog(redis_client, clock, changes=CatalogChanges())
    add_store(there)
    ticks.now += 0.5
    # Within the interval this process trusts its index: no version read, no store yet.
    assert kinds(engine.record_fixes("u1", fix(t + 1))) == []
    ticks.now += 0.5
    # The interval is over: the next fix reads the version, reloads, and sees the store.
    assert kinds(engine.record_fixes("u2", fix(t + 2))) == ["enter"]


def test_this_processes_own_store_change_shows_on_the_next_fix(redis_client, clock):
    ticks = Ticks()
    changes = CatalogChanges()
    catalog = StoreCatalog(redis_client, clock, changes=changes)
    engine = LocationEngine(
        redis_client, catalog, clock, EngineSettings(catalog_check_s=60.0), monotonic=ticks
    )
    engine.set_consent("u1", True)
    t = clock.now()
    assert kinds(engine.record_fixes("u1", fix(t))) == []
    add_store(catalog)  # same process: the index is invalidated at once, no time passes
    assert changes.count == 1
    assert kinds(engine.record_fixes("u1", fix(t + 1))) == ["enter"]
    catalog.delete("s1")
    assert kinds(engine.record_fixes("u1", fix(t + 200))) == []
    assert engine.inside("u1") == []  # the deleted store's state is forgotten


def test_a_zero_interval_checks_on_every_fix(redis_client, clock):
    here = StoreCatalog(redis_client, clock, changes=CatalogChanges())
    engine = LocationEngine(redis_client, here, clock, EngineSettings(catalog_check_s=0.0))
    engine.set_consent("u1", True)
    t = clock.now()
    assert kinds(engine.record_fixes("u1", fix(t))) == []
    add_store(StoreCatalog(redis_client, clock, changes=CatalogChanges()))
    assert kinds(engine.record_fixes("u1", fix(t + 1))) == ["enter"]


# -- event partitions -------------------------------------------------------------------------
def test_shoppers_events_land_in_their_partitions(redis_client, clock):
    catalog = StoreCatalog(redis_client, clock)
    add_store(catalog)
    engine = LocationEngine(redis_client, catalog, clock, EngineSettings(event_partitions=4))
    shoppers = [f"p{i}" for i in range(12)]
    for shopper in shoppers:
        engine.set_consent(shopper, True)
    engine.record_many([(s, fix(clock.now())) for s in shoppers])
    streams = keys.event_streams(4)
    seen: dict[str, int] = {}
    for k, stream in enumerate(streams):
        for _, fields in redis_client.xrange(stream):
            shopper = fields["event"].split('"shopper_id":"')[1].split('"')[0]
            assert zlib.crc32(shopper.encode()) % 4 == k
            seen[shopper] = k
    assert sorted(seen) == sorted(shoppers)
    assert len(set(seen.values())) > 1  # more than one partition is in use
    assert redis_client.exists(keys.LEGACY_EVENTS) == 0  # nothing writes the old stream


def test_partition_tags_spread_over_the_slot_space():
    from redis.crc import key_slot

    slots = [key_slot(stream.encode()) for stream in keys.event_streams(16)]
    assert [s * 16 // 16384 for s in slots] == list(range(16))
    assert keys.pending_exits(3, 16).endswith("{" + keys.partition_tag(3, 16) + "}")
    assert key_slot(keys.pending_exits(3, 16).encode()) == slots[3]


def test_the_sweeper_sweeps_every_partition_and_the_legacy_index(redis_client, clock):
    catalog = StoreCatalog(redis_client, clock)
    add_store(catalog)
    engine = LocationEngine(redis_client, catalog, clock, EngineSettings(event_partitions=4))
    t = clock.now()
    far = LocalFrame(*SHANGHAI).to_latlon(400, 0)
    shoppers = [f"w{i}" for i in range(6)]
    for shopper in shoppers:
        engine.set_consent(shopper, True)
        engine.record_fixes(shopper, fix(t))
        engine.record_fixes(shopper, [Fix(far[0], far[1], 5.0, t + 10)])
    # An exit left pending by a release before the partitions, in the old index.
    redis_client.zrem(keys.shopper_pending_exits("w0", 4), "w0|s1")
    redis_client.zadd(keys.LEGACY_PENDING_EXITS, {"w0|s1": t + 70})
    used = {keys.partition(s, 4) for s in shoppers}
    assert len(used) > 1
    exits = engine.sweep(now=t + 70)
    assert sorted(e["shopper_id"] for e in exits) == shoppers
    assert {e["kind"] for e in exits} == {"exit"}
    indexes = [keys.pending_exits(k, 4) for k in range(4)] + [keys.LEGACY_PENDING_EXITS]
    assert [redis_client.zcard(index) for index in indexes] == [0] * 5


def test_the_partition_is_crc32_of_the_shopper():
    assert keys.partition("u42", 16) == zlib.crc32(b"u42") % 16
    assert {keys.partition(f"s{i}", 16) for i in range(200)} == set(range(16))
