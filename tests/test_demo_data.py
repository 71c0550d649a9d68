"""Unit tests for the demo city list and the deterministic store generator (no Redis needed)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zoneinfo

import pytest
from shapely.geometry import Point, Polygon

from geo.demo import (
    BRANDS,
    CSV_COLUMNS,
    City,
    generate_stores,
    load_cities,
    stores_to_csv,
    stores_to_geojson,
)

M_PER_DEG = 111_320.0
# East Nanjing Road pedestrian street: the Bund end and the People's Square end.
NANJING_EAST = (31.2400, 121.4900)
NANJING_WEST = (31.2350, 121.4750)
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def local_xy(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    return (
        (lon - lon0) * M_PER_DEG * math.cos(math.radians(lat0)),
        (lat - lat0) * M_PER_DEG,
    )


def distance_to_nanjing_road_m(lat: float, lon: float) -> float:
    ax, ay = 0.0, 0.0
    bx, by = local_xy(*NANJING_EAST, *NANJING_WEST)
    px, py = local_xy(*NANJING_EAST, lat, lon)
    t = ((px - ax) * (bx - ax) + (py - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2)
    t = min(1.0, max(0.0, t))
    return math.hypot(px - (ax + t * (bx - ax)), py - (ay + t * (by - ay)))


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


@pytest.fixture(scope="module")
def cities() -> list[City]:
    return load_cities()


@pytest.fixture(scope="module")
def stores() -> list[dict]:
    return generate_stores(5000)


def is_nanjing_road_store(store: dict) -> bool:
    return "East Nanjing Road" in store["address"]


# --------------------------------------------------------------------------- cities


def test_two_hundred_unique_ascii_cities(cities):
    assert len(cities) == 200
    names = [c.name for c in cities]
    assert len(set(names)) == 200
    assert all(name.isascii() and name.strip() == name and name for name in names)


def test_city_fields_are_valid(cities):
    for c in cities:
        assert -90.0 <= c.lat <= 90.0, c
        assert -180.0 <= c.lon <= 180.0, c
        assert re.fullmatch(r"[A-Z]{2}", c.country), c
        zoneinfo.ZoneInfo(c.tz)  # raises for an unknown zone
    mainland = [c for c in cities if c.country == "CN"]
    assert len(mainland) >= 150
    for c in mainland:
        assert 18.0 <= c.lat <= 54.0 and 73.0 <= c.lon <= 135.0, c
        assert c.tz == "Asia/Shanghai", c


def test_shanghai_is_first_row(cities):
    first = cities[0]
    assert first == City("Shanghai", "CN", 31.2304, 121.4737, "Asia/Shanghai")


def test_city_is_frozen(cities):
    with pytest.raises(AttributeError):
        cities[0].lat = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ("Shanghai", "Beijing", 1067),
        ("Guangzhou", "Shenzhen", 104),
        ("Shanghai", "Hangzhou", 165),
        ("Beijing", "Tianjin", 110),
        ("Chengdu", "Chongqing", 266),
        ("Shenzhen", "Hong Kong", 27),
        ("London", "Paris", 344),
        ("Shanghai", "Tokyo", 1765),
    ],
)
def test_known_city_distances(cities, a, b, km):
    by_name = {c.name: c for c in cities}
    ca, cb = by_name[a], by_name[b]
    d = haversine_km(ca.lat, ca.lon, cb.lat, cb.lon)
    assert abs(d - km) <= max(8.0, 0.03 * km), (a, b, d)


# --------------------------------------------------------------------------- stores


def test_generation_is_deterministic(stores):
    assert generate_stores(5000) == stores
    assert generate_stores(5000, seed=12) != stores


def test_ids_unique_sorted_zero_padded(stores):
    ids = [s["id"] for s in stores]
    assert len(ids) == 5000
    assert ids == [f"st-{i:05d}" for i in range(1, 5001)]


def test_every_city_used(stores, cities):
    used = {s["city"] for s in stores}
    assert used == {c.name for c in cities}


def test_bigger_cities_get_more_stores(stores, cities):
    counts: dict[str, int] = {}
    for s in stores:
        counts[s["city"]] = counts.get(s["city"], 0) + 1
    assert counts["Shanghai"] == max(counts.values())
    assert counts["Beijing"] > counts["Nanjing"] > counts["Zhangjiajie"]


def test_store_shape(stores, cities):
    tz_by_city = {c.name: c.tz for c in cities}
    keys = {"id", "name", "brand", "city", "lat", "lon", "address", "opening_hours", "fence"}
    for s in stores:
        assert set(s) == keys
        assert s["brand"] in BRANDS
        assert s["name"].startswith(f"{s['brand']} {s['city']} ")
        assert re.search(r" #\d+$", s["name"])
        assert isinstance(s["lat"], float) and isinstance(s["lon"], float)
        assert round(s["lat"], 6) == s["lat"] and round(s["lon"], 6) == s["lon"]
        assert s["address"]
        assert s["opening_hours"]["tz"] == tz_by_city[s["city"]]
    assert len({s["name"] for s in stores}) == len(stores)
    assert len({s["brand"] for s in stores}) == len(BRANDS) >= 15


def test_stores_scattered_around_their_city(stores, cities):
    by_name = {c.name: c for c in cities}
    for s in stores:
        c = by_name[s["city"]]
        assert haversine_km(c.lat, c.lon, s["lat"], s["lon"]) <= 16.0, s


def test_opening_hours(stores):
    kinds = {"always": 0, "overnight": 0, "early": 0, "standard": 0}
    for s in stores:
        hours = s["opening_hours"]
        if hours.get("always"):
            assert set(hours) == {"tz", "always"} and hours["always"] is True
            kinds["always"] += 1
            continue
        assert set(hours) == {"tz", "weekly"}
        assert list(hours["weekly"]) == DAYS
        for ranges in hours["weekly"].values():
            assert ranges
            for start, end in ranges:
                assert HHMM.match(start) and HHMM.match(end)
        fri = hours["weekly"]["fri"]
        if any(end <= start for start, end in fri):
            kinds["overnight"] += 1
        elif fri == [["09:00", "21:30"]]:
            kinds["early"] += 1
        elif fri == [["10:00", "22:00"]]:
            kinds["standard"] += 1
    assert kinds["standard"] > len(stores) / 2
    assert all(n > 0 for n in kinds.values()), kinds


def test_nanjing_road_cluster(stores):
    near = [s for s in stores if distance_to_nanjing_road_m(s["lat"], s["lon"]) <= 100.0]
    assert len(near) >= 150
    cluster = [s for s in stores if is_nanjing_road_store(s)]
    assert len(cluster) >= 150
    for s in cluster:
        assert s["city"] == "Shanghai"
        assert distance_to_nanjing_road_m(s["lat"], s["lon"]) <= 80.0
        assert s["fence"]["type"] == "circle"
        assert 30 <= s["fence"]["radius_m"] <= 80


def test_circle_fences(stores):
    circles = [s for s in stores if s["fence"]["type"] == "circle"]
    for s in circles:
        radius = s["fence"]["radius_m"]
        assert isinstance(radius, int) and 20 <= radius <= 5000
        if is_nanjing_road_store(s):
            # The festival street trades around the clock: open 24/7, and its fences follow
            # those hours like every other fence (no always-active fence at a closed store).
            assert s["fence"] == {"type": "circle", "radius_m": radius}
            assert s["opening_hours"] == {"tz": "Asia/Shanghai", "always": True}
        else:
            assert set(s["fence"]) == {"type", "radius_m"}
            assert 50 <= radius <= 300


def test_polygon_fences(stores):
    polygons = [s for s in stores if s["fence"]["type"] == "Polygon"]
    assert 0.03 * len(stores) <= len(polygons) <= 0.07 * len(stores)
    assert {s["fence"]["type"] for s in stores} == {"circle", "Polygon"}
    for s in polygons:
        rings = s["fence"]["coordinates"]
        assert len(rings) == 1
        ring = rings[0]
        assert ring[0] == ring[-1], "ring must be closed"
        assert len(ring) in (5, 6)  # rectangle or pentagon plus the closing position
        poly = Polygon(ring)  # GeoJSON order: [lon, lat]
        assert poly.is_valid, s
        assert poly.exterior.is_ccw
        assert poly.contains(Point(s["lon"], s["lat"]))
        pts = [local_xy(s["lat"], s["lon"], lat, lon) for lon, lat in ring]
        across = max(math.dist(a, b) for a in pts for b in pts)
        assert 59.0 <= across <= 251.0, across


def test_small_and_invalid_counts():
    assert generate_stores(0) == []
    few = generate_stores(10)
    assert [s["id"] for s in few] == [f"st-{i:05d}" for i in range(1, 11)]
    with pytest.raises(ValueError):
        generate_stores(-1)


# --------------------------------------------------------------------------- writers


def test_csv_round_trip(stores):
    text = stores_to_csv(stores)
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    assert list(reader.fieldnames or ()) == [
        "id", "name", "brand", "city", "lat", "lon", "address", "tz", "hours", "fence",
    ]  # fmt: skip
    rows = list(reader)
    assert len(rows) == len(stores)
    for row, s in zip(rows, stores, strict=True):
        assert row["id"] == s["id"]
        assert (float(row["lat"]), float(row["lon"])) == (s["lat"], s["lon"])
        for key in ("name", "brand", "city", "address"):
            assert row[key] == s[key]
        hours = json.loads(row["hours"])
        assert hours == s["opening_hours"]
        assert row["tz"] == hours["tz"]
        assert json.loads(row["fence"]) == s["fence"]


def test_geojson_round_trip(stores):
    fc = json.loads(json.dumps(stores_to_geojson(stores)))
    assert fc["type"] == "FeatureCollection"
    assert len(fc["features"]) == len(stores)
    for feature, s in zip(fc["features"], stores, strict=True):
        assert feature["type"] == "Feature"
        assert feature["geometry"] == {"type": "Point", "coordinates": [s["lon"], s["lat"]]}
        props = feature["properties"]
        assert set(props) == {
            "id", "name", "brand", "city", "address", "opening_hours", "fence",
        }  # fmt: skip
        assert props["id"] == s["id"] == feature["id"]
        assert props["opening_hours"] == s["opening_hours"]
        assert props["fence"] == s["fence"]
        lon, lat = feature["geometry"]["coordinates"]
        assert -180 <= lon <= 180 and -90 <= lat <= 90


def test_geojson_does_not_alias_store_dicts():
    stores = generate_stores(5)
    fc = stores_to_geojson(stores)
    fc["features"][0]["properties"]["fence"]["type"] = "changed"
    assert stores[0]["fence"]["type"] != "changed"
