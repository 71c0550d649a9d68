"""Spawn cells: geohash encoding against published and independently computed values, cell
sizes, and the covering of a circle."""

from __future__ import annotations

import math
import random

import pytest

from game import cells
from geo.geometry import LocalFrame, fast_distance_m

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
PLACES = {  # (lat, lon) of landmarks
    "oriental-pearl": (31.2397, 121.4998),
    "eiffel-tower": (48.8584, 2.2945),
    "statue-of-liberty": (40.6892, -74.0445),
    "sydney-opera-house": (-33.8568, 151.2153),
    "christ-the-redeemer": (-22.9519, -43.2105),
    "null-island": (0.0001, 0.0001),
}


def reference_geohash(lat: float, lon: float, precision: int) -> str:
    """Encode by integer bit interleaving (not by bisection, as game.cells does)."""
    bits = precision * 5
    lon_bits, lat_bits = (bits + 1) // 2, bits // 2
    x = min(int((lon + 180.0) / 360.0 * 2**lon_bits), 2**lon_bits - 1)
    y = min(int((lat + 90.0) / 180.0 * 2**lat_bits), 2**lat_bits - 1)
    code = 0
    for i in range(bits):  # even bits are longitude, from the most significant
        source, width = (x, lon_bits) if i % 2 == 0 else (y, lat_bits)
        code = code * 2 + ((source >> (width - 1 - i // 2)) & 1)
    return "".join(BASE32[(code >> (5 * (precision - 1 - k))) & 31] for k in range(precision))


def test_published_geohashes():
    # Wikipedia's "Geohash" article: 57.64911, 10.40744 (Jutland) is u4pruydqqvj, and ezs42
    # is the cell around 42.6, -5.6.
    assert cells.encode(57.64911, 10.40744, 11) == "u4pruydqqvj"
    lat_lo, lon_lo, lat_hi, lon_hi = cells.bounds("ezs42")
    assert lat_lo <= 42.6 < lat_hi and lon_lo <= -5.6 < lon_hi
    assert (lat_lo + lat_hi) / 2 == pytest.approx(42.605, abs=0.001)
    assert (lon_lo + lon_hi) / 2 == pytest.approx(-5.603, abs=0.001)


@pytest.mark.parametrize("place", sorted(PLACES))
def test_encode_agrees_with_redis_geohash(redis_client, place):
    lat, lon = PLACES[place]
    redis_client.geoadd("places", (lon, lat, place))
    [from_redis] = redis_client.geohash("places", place)
    # Redis stores 52-bit positions (~0.6 m): eight characters (~38 x 19 m) agree.
    assert cells.encode(lat, lon, 8) == from_redis[:8]
    assert cells.encode(lat, lon) == from_redis[: cells.PRECISION]


def test_encode_agrees_with_an_independent_encoder_and_bounds_round_trip():
    rng = random.Random(7)
    for _ in range(3000):
        lat, lon = rng.uniform(-89.9, 89.9), rng.uniform(-179.9, 179.9)
        precision = rng.choice([1, 5, 7, 9, 12])
        cell = cells.encode(lat, lon, precision)
        assert cell == reference_geohash(lat, lon, precision)
        lat_lo, lon_lo, lat_hi, lon_hi = cells.bounds(cell)
        assert lat_lo <= lat < lat_hi and lon_lo <= lon < lon_hi
        assert cells.encode((lat_lo + lat_hi) / 2, (lon_lo + lon_hi) / 2, precision) == cell
        assert cell.startswith(cells.encode(lat, lon, precision - 1) if precision > 1 else "")


@pytest.mark.parametrize(
    ("lat", "width_m", "height_m"),
    [
        (0.0, 152.9, 151.8),  # ~153 m x 153 m at the equator
        (31.24, 131.2, 152.2),  # ~131 m wide, 153 m tall in Shanghai
        (60.0, 76.7, 153.0),
    ],
)
def test_cell_size(lat, width_m, height_m):
    lat_lo, lon_lo, lat_hi, lon_hi = cells.bounds(cells.encode(lat, 121.48))
    assert lat_hi - lat_lo == pytest.approx(180 / 2**17)
    assert lon_hi - lon_lo == pytest.approx(360 / 2**18)
    mid_lat, mid_lon = (lat_lo + lat_hi) / 2, (lon_lo + lon_hi) / 2
    assert fast_distance_m(mid_lat, lon_lo, mid_lat, lon_hi) == pytest.approx(width_m, abs=0.6)
    assert fast_distance_m(lat_lo, mid_lon, lat_hi, mid_lon) == pytest.approx(height_m, abs=0.6)


def _wrapped(lat: float, lon: float) -> tuple[float, float]:
    return lat, (lon + 180.0) % 360.0 - 180.0


@pytest.mark.parametrize("lat0", [0.0, 31.24, -33.9, 60.0])
@pytest.mark.parametrize("radius", [30.0, 80.0, 200.0, 400.0])
def test_covering_holds_every_point_within_the_radius(lat0, radius):
    rng = random.Random(f"{lat0}-{radius}")
    for _ in range(150):
        lat, lon = lat0 + rng.uniform(-0.01, 0.01), 121.48 + rng.uniform(-0.01, 0.01)
        found = cells.covering(lat, lon, radius)
        assert found == sorted(set(found))
        frame = LocalFrame(lat, lon)
        # Points on the circle (just inside it) in every direction, and random inner points.
        points = [
            frame.to_latlon(radius * 0.9999 * math.sin(a), radius * 0.9999 * math.cos(a))
            for a in (math.radians(d) for d in range(0, 360, 3))
        ]
        points += [
            frame.to_latlon(
                *(radius * math.sqrt(rng.random()) * f(a) for f in (math.sin, math.cos))
            )
            for a in (rng.uniform(0, 2 * math.pi) for _ in range(40))
        ]
        for y, x in points:
            assert fast_distance_m(lat, lon, y, x) <= radius
            assert cells.encode(y, x) in found, (lat, lon, y, x)
        # ...and stays small: the rows and columns of cells the circle can reach, no more.
        lat_lo, lon_lo, lat_hi, lon_hi = cells.bounds(cells.encode(lat, lon))
        height = fast_distance_m(lat_lo, lon, lat_hi, lon)
        width = fast_distance_m(lat, lon_lo, lat, lon_hi)
        rows, cols = 2 * math.ceil(radius / height) + 1, 2 * math.ceil(radius / width) + 1
        assert len(found) <= rows * cols


def test_covering_of_200_m_in_shanghai_is_at_most_25_cells():
    sizes = [len(cells.covering(31.24 + i * 1e-4, 121.48 + i * 1.3e-4, 200)) for i in range(50)]
    assert max(sizes) <= 25 and min(sizes) >= 9


def test_covering_across_the_antimeridian():
    lat, lon = 10.0, 179.9995
    found = cells.covering(lat, lon, 200)
    frame = LocalFrame(lat, lon)
    for d in range(0, 360, 5):
        a = math.radians(d)
        y, x = _wrapped(*frame.to_latlon(199 * math.sin(a), 199 * math.cos(a)))
        assert cells.encode(y, x) in found
    assert any(cells.bounds(c)[1] < 0 for c in found)  # cells west of the line, too


@pytest.mark.parametrize("bad", ["a", "wtw3sio", "WTW3SJQ", "wtw3s!q", "wtw 3sj"])
def test_bad_geohash_is_a_value_error(bad):
    with pytest.raises(ValueError, match="not a geohash"):
        cells.bounds(bad)
