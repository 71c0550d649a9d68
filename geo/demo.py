"""Deterministic demo data: cities and festival stores with geofences and opening hours.

Everything here is pure standard-library Python. The city list lives in ``geo/data/cities.csv``
(columns ``city,country,lat,lon,tz``; ``country`` is an ISO 3166-1 alpha-2 code, ``tz`` an IANA
zone). Rows are ordered by retail importance: the row index is the city's *rank*, and the rank
decides how many demo stores the city receives (see :func:`city_weights`).

Store dict
----------
:func:`generate_stores` returns a list of plain dicts, sorted by ``id``::

    {
        "id": "st-00001",                 # "st-" + zero-padded sequence (>= 5 digits)
        "name": "Orient Fashion Shanghai Renmin Rd #3",   # "<brand> <city> <street> #<n>"
        "brand": "Orient Fashion",
        "city": "Shanghai",               # a ``city`` value from cities.csv
        "lat": 31.230412,                 # WGS84, rounded to 6 decimals
        "lon": 121.473719,
        "address": "No. 128 Renmin Road, Shanghai",
        "opening_hours": {...},           # see below
        "fence": {...},                   # see below
    }

``opening_hours`` is either ``{"tz": "<IANA zone>", "always": true}`` (open 24/7) or
``{"tz": "<IANA zone>", "weekly": {"mon": [["10:00", "22:00"]], ..., "sun": [...]}}`` with all
seven keys ``mon tue wed thu fri sat sun`` present. Each day holds a list of ``[open, close]``
pairs of local ``HH:MM`` times. A pair whose close time is not after its open time
(e.g. ``["18:00", "02:00"]``) runs past midnight: it opens on that day and closes on the next
day. Times are wall-clock times in ``tz``.

``fence`` is either a circle around the store point, ``{"type": "circle", "radius_m": 120}``
(integer metres), or a GeoJSON Polygon geometry, ``{"type": "Polygon", "coordinates": [ring]}``
where ``ring`` is a closed list of ``[lon, lat]`` positions (first == last), wound
counter-clockwise as RFC 7946 recommends, and contains the store point.

CSV import format (:func:`stores_to_csv`)
-----------------------------------------
UTF-8, comma separated, ``\\n`` line endings, RFC 4180 quoting, one header row::

    id,name,brand,city,lat,lon,address,tz,hours,fence

``lat``/``lon`` are decimal degrees with 6 decimals. ``hours`` is the ``opening_hours`` object
and ``fence`` the ``fence`` object, each serialised as compact JSON (so they appear quoted, with
doubled inner quotes, in the file). ``tz`` repeats ``hours.tz`` for human readers; an importer
should treat the JSON as authoritative.

GeoJSON import format (:func:`stores_to_geojson`)
-------------------------------------------------
An RFC 7946 ``FeatureCollection``. Each store is a ``Feature`` with ``"id"`` set to the store id,
a ``Point`` geometry with coordinates ``[lon, lat]`` and ``properties`` ``id, name, brand, city,
address, opening_hours, fence`` (the last two exactly as in the store dict).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import random
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

__all__ = [
    "BRANDS",
    "CSV_COLUMNS",
    "NANJING_ROAD_EAST",
    "NANJING_ROAD_WEST",
    "City",
    "city_weights",
    "generate_stores",
    "load_cities",
    "stores_to_csv",
    "stores_to_geojson",
]

# East Nanjing Road pedestrian street, Shanghai: the Bund end and the People's Square end.
NANJING_ROAD_EAST: tuple[float, float] = (31.2400, 121.4900)
NANJING_ROAD_WEST: tuple[float, float] = (31.2350, 121.4750)
_NANJING_SHARE = 0.036  # of all stores (180 of 5000)
_NANJING_MAX_OFFSET_M = 60.0  # perpendicular distance from the centre line

_POLYGON_SHARE = 0.052  # of the city stores, i.e. ~5% of all stores (Nanjing Road: circles)
_M_PER_DEG_LAT = 111_320.0
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# (name, relative frequency)
_BRAND_TABLE: tuple[tuple[str, int], ...] = (
    ("Orient Fashion", 9),
    ("Riverside Mart", 9),
    ("Golden Harbour Dept", 6),
    ("Jade Garden Home", 5),
    ("Silkway Apparel", 6),
    ("Little Panda Kids", 4),
    ("Plum Blossom Beauty", 6),
    ("Summit Sportswear", 5),
    ("Bamboo Leaf Tea", 7),
    ("Lantern Street Snacks", 8),
    ("Cloudgate Electronics", 5),
    ("Morning Crust Bakery", 7),
    ("Pearl Bay Jewellery", 3),
    ("Blue Ridge Outdoor", 3),
    ("Inkstone Books", 3),
    ("Spring Orchard Florist", 3),
    ("Northstar Optical", 4),
    ("Cranepine Living", 3),
    ("Hearthstone Kitchenware", 3),
    ("Amber Lane Shoes", 5),
)
BRANDS: tuple[str, ...] = tuple(name for name, _ in _BRAND_TABLE)
_BRAND_WEIGHTS: tuple[int, ...] = tuple(w for _, w in _BRAND_TABLE)

# Generic street names: pinyin ones for Chinese-speaking places, English ones elsewhere.
_CN_STREETS = tuple(
    "Renmin Jiefang Zhongshan Jianshe Heping Xinhua Wenhua Changjiang Huanghe Yingbin Binhe"
    " Chaoyang Dongfeng Shengli Youyi Xingfu Gongyuan Minzhu Qingnian Guangming".split()
)
_INTL_STREETS = tuple(
    "Market Harbour Station Park Garden Bridge River Hill Lake Maple Cedar Elm Central Union"
    " Mill Church".split()
)
_CN_COUNTRIES = frozenset({"CN", "HK", "MO", "TW"})
_STREET_KINDS = (("Road", "Rd"), ("Street", "St"), ("Avenue", "Ave"))


@dataclass(frozen=True, slots=True)
class City:
    name: str
    country: str
    lat: float
    lon: float
    tz: str


@lru_cache(maxsize=1)
def _cities() -> tuple[City, ...]:
    text = (resources.files("geo") / "data" / "cities.csv").read_text(encoding="utf-8")
    return tuple(
        City(
            name=row["city"],
            country=row["country"],
            lat=float(row["lat"]),
            lon=float(row["lon"]),
            tz=row["tz"],
        )
        for row in csv.DictReader(io.StringIO(text))
    )


def load_cities() -> list[City]:
    """All demo cities in rank order (Shanghai first)."""
    return list(_cities())


def city_weights(cities: list[City]) -> list[float]:
    """Relative store weight per city: a Zipf-like curve over the row rank."""
    return [1.0 / (rank + 1) ** 0.85 for rank in range(len(cities))]


# --------------------------------------------------------------------------- geometry helpers


def _offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """Move a point by a local east/north displacement (equirectangular, fine below ~50 km)."""
    new_lat = lat + north_m / _M_PER_DEG_LAT
    new_lon = lon + east_m / (_M_PER_DEG_LAT * math.cos(math.radians(lat)))
    return new_lat, new_lon


def _local_xy(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    x = (lon - lon0) * _M_PER_DEG_LAT * math.cos(math.radians(lat0))
    y = (lat - lat0) * _M_PER_DEG_LAT
    return x, y


def _polygon_fence(rng: random.Random, lat: float, lon: float) -> dict:
    """A small rectangle or pentagon (60-250 m across) containing the store point."""
    while True:
        if rng.random() < 0.5:
            diag = rng.uniform(60.0, 250.0)
            phi = rng.uniform(math.radians(25), math.radians(65))
            half_w, half_h = diag * math.cos(phi) / 2, diag * math.sin(phi) / 2
            # The store sits somewhere in the inner half of the rectangle.
            cx, cy = rng.uniform(-0.5, 0.5) * half_w, rng.uniform(-0.5, 0.5) * half_h
            local = [
                (cx - half_w, cy - half_h),
                (cx + half_w, cy - half_h),
                (cx + half_w, cy + half_h),
                (cx - half_w, cy + half_h),
            ]
        else:
            radius = rng.uniform(32.0, 125.0)
            start = rng.uniform(0.0, 2 * math.pi)
            local = []
            for k in range(5):
                # Jitter stays well below half the 72 degree spacing: the vertices keep their
                # angular order around the store, so the ring is simple and star-shaped.
                angle = start + k * 2 * math.pi / 5 + rng.uniform(-0.2, 0.2)
                r = radius * rng.uniform(0.85, 1.0)
                local.append((r * math.cos(angle), r * math.sin(angle)))
        rot = rng.uniform(0.0, math.pi)
        cos_r, sin_r = math.cos(rot), math.sin(rot)
        ring: list[list[float]] = []
        for x, y in local:  # counter-clockwise in east/north space; rotation keeps that
            east, north = x * cos_r - y * sin_r, x * sin_r + y * cos_r
            p_lat, p_lon = _offset(lat, lon, east, north)
            ring.append([round(p_lon, 6), round(p_lat, 6)])
        pts = [_local_xy(lat, lon, p[1], p[0]) for p in ring]
        across = max(math.dist(a, b) for a in pts for b in pts)
        if 60.0 <= across <= 250.0:
            ring.append(list(ring[0]))
            return {"type": "Polygon", "coordinates": [ring]}


def _circle_fence(radius_m: int) -> dict:
    return {"type": "circle", "radius_m": radius_m}


# --------------------------------------------------------------------------- opening hours


def _opening_hours(rng: random.Random, tz: str) -> dict:
    r = rng.random()
    if r < 0.04:
        return {"tz": tz, "always": True}
    if r < 0.10:  # restaurant-style split hours, late nights on Fri/Sat
        weekly = {}
        for day in _DAYS:
            late = ["18:00", "02:00"] if day in ("fri", "sat") else ["17:00", "23:00"]
            weekly[day] = [["11:00", "14:00"], late]
        return {"tz": tz, "weekly": weekly}
    if r < 0.25:
        return {"tz": tz, "weekly": {day: [["09:00", "21:30"]] for day in _DAYS}}
    return {"tz": tz, "weekly": {day: [["10:00", "22:00"]] for day in _DAYS}}


def _festival_hours(hours: dict, item: dict) -> dict:
    """Open East Nanjing Road's stores 24/7 (the draw is still made: the data stay the same)."""
    return {"tz": hours["tz"], "always": True} if item.get("festival") else hours


# --------------------------------------------------------------------------- allocation


def _allocate(total: int, weights: list[float], minimum: int) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder)."""
    rest = total - minimum * len(weights)
    weight_sum = sum(weights)
    quotas = [rest * w / weight_sum for w in weights]
    parts = [math.floor(q) for q in quotas]
    leftover = rest - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (parts[i] - quotas[i], i))
    for i in by_remainder[:leftover]:
        parts[i] += 1
    return [minimum + p for p in parts]


def _street(rng: random.Random, city: City) -> tuple[str, str]:
    """(full street name for the address, short form for the store name)."""
    pool = _CN_STREETS if city.country in _CN_COUNTRIES else _INTL_STREETS
    base = rng.choice(pool)
    kind, short = rng.choice(_STREET_KINDS)
    return f"{base} {kind}", f"{base} {short}"


def _city_store(rng: random.Random, city: City, sigma_m: float) -> dict:
    while True:
        east, north = rng.gauss(0.0, sigma_m), rng.gauss(0.0, sigma_m)
        if math.hypot(east, north) <= 2.5 * sigma_m:
            break
    lat, lon = _offset(city.lat, city.lon, east, north)
    street, short = _street(rng, city)
    number = rng.randint(1, 999)
    if city.country in _CN_COUNTRIES:
        address = f"No. {number} {street}, {city.name}"
    else:
        address = f"{number} {street}, {city.name}"
    if rng.random() < _POLYGON_SHARE:
        fence = _polygon_fence(rng, lat, lon)
    else:
        radius = rng.triangular(50.0, 300.0, 100.0)
        fence = _circle_fence(min(300, max(50, 5 * round(radius / 5))))
    return {
        "city": city,
        "lat": lat,
        "lon": lon,
        "street": short,
        "address": address,
        "fence": fence,
    }


def _nanjing_road_store(rng: random.Random, shanghai: City) -> dict:
    (lat_e, lon_e), (lat_w, lon_w) = NANJING_ROAD_EAST, NANJING_ROAD_WEST
    wx, wy = _local_xy(lat_e, lon_e, lat_w, lon_w)  # east end -> west end, metres
    length = math.hypot(wx, wy)
    ux, uy = wx / length, wy / length
    along = rng.uniform(0.0, length)
    side = rng.uniform(-_NANJING_MAX_OFFSET_M, _NANJING_MAX_OFFSET_M)
    east = ux * along - uy * side
    north = uy * along + ux * side
    lat, lon = _offset(lat_e, lon_e, east, north)
    # Numbering starts at the Bund; odd numbers on the north side, even on the south.
    north_side = ux * side >= 0  # the perpendicular's northward component has the sign of ux
    number = 2 * int(along / 6) + (1 if north_side else 2)
    return {
        "city": shanghai,
        "lat": lat,
        "lon": lon,
        "street": "Nanjing Rd E",
        "address": f"No. {number} East Nanjing Road, Huangpu District, Shanghai",
        "fence": _circle_fence(rng.randint(30, 80)),
        # The festival street trades around the clock, so the demo can be walked at any hour:
        # its stores are open (nearby says so) and their fences follow those hours like any other.
        "festival": True,
    }


# --------------------------------------------------------------------------- public API


def generate_stores(count: int = 5000, seed: int = 11) -> list[dict]:
    """Generate ``count`` demo stores; the same ``(count, seed)`` always gives the same list.

    Every city gets at least one store when ``count`` allows it (``count >= 200`` plus the
    Nanjing Road share); the rest is spread by :func:`city_weights`. About 3.6% of the stores
    form a dense cluster along East Nanjing Road in Shanghai.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    rng = random.Random(seed)
    cities = _cities()
    shanghai = next(c for c in cities if c.name == "Shanghai")
    weights = city_weights(list(cities))
    max_weight = max(weights)

    n_nanjing = min(count, round(count * _NANJING_SHARE))
    n_rest = count - n_nanjing
    minimum = 1 if n_rest >= len(cities) else 0
    per_city = _allocate(n_rest, weights, minimum) if n_rest else [0] * len(cities)

    raw: list[dict] = []
    for city, weight, n in zip(cities, weights, per_city, strict=True):
        sigma_m = 3000.0 + 3000.0 * math.sqrt(weight / max_weight)
        raw.extend(_city_store(rng, city, sigma_m) for _ in range(n))
    raw.extend(_nanjing_road_store(rng, shanghai) for _ in range(n_nanjing))
    rng.shuffle(raw)

    width = max(5, len(str(count)))
    seq_per_brand_city: dict[tuple[str, str], int] = {}
    stores: list[dict] = []
    for index, item in enumerate(raw, start=1):
        city: City = item["city"]
        brand = rng.choices(BRANDS, weights=_BRAND_WEIGHTS)[0]
        key = (brand, city.name)
        seq_per_brand_city[key] = seq_per_brand_city.get(key, 0) + 1
        stores.append(
            {
                "id": f"st-{index:0{width}d}",
                "name": f"{brand} {city.name} {item['street']} #{seq_per_brand_city[key]}",
                "brand": brand,
                "city": city.name,
                "lat": round(item["lat"], 6),
                "lon": round(item["lon"], 6),
                "address": item["address"],
                "opening_hours": _festival_hours(_opening_hours(rng, city.tz), item),
                "fence": item["fence"],
            }
        )
    return stores


CSV_COLUMNS = ("id", "name", "brand", "city", "lat", "lon", "address", "tz", "hours", "fence")


def _compact_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def stores_to_csv(stores: list[dict]) -> str:
    """Serialise stores to the CSV import format described in the module docstring."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in stores:
        writer.writerow(
            [
                s["id"],
                s["name"],
                s["brand"],
                s["city"],
                f"{s['lat']:.6f}",
                f"{s['lon']:.6f}",
                s["address"],
                s["opening_hours"]["tz"],
                _compact_json(s["opening_hours"]),
                _compact_json(s["fence"]),
            ]
        )
    return buf.getvalue()


def stores_to_geojson(stores: list[dict]) -> dict:
    """Serialise stores to an RFC 7946 FeatureCollection of Point features."""
    features = []
    for s in stores:
        features.append(
            {
                "type": "Feature",
                "id": s["id"],
                "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
                "properties": {
                    "id": s["id"],
                    "name": s["name"],
                    "brand": s["brand"],
                    "city": s["city"],
                    "address": s["address"],
                    "opening_hours": copy.deepcopy(s["opening_hours"]),
                    "fence": copy.deepcopy(s["fence"]),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}
