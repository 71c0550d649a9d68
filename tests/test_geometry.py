"""Unit tests for geo.geometry: pure geometry, no Redis, no app fixtures."""

from __future__ import annotations

import json
import math
import random

import pytest
from geographiclib.geodesic import Geodesic
from geopy.distance import geodesic

from geo.geometry import (
    CircleFence,
    FenceError,
    LocalFrame,
    PolygonFence,
    bearing_deg,
    fast_distance_m,
    fence_from_dict,
    geodesic_m,
    parse_fence,
)

LATS = [0.0, 31.23, 60.0, 84.9, -84.9]
LON0 = 121.47


def dest(lat: float, lon: float, bearing: float, dist_m: float) -> tuple[float, float]:
    """Return the point dist_m along the geodesic from (lat, lon) at the given bearing."""
    p = geodesic(meters=dist_m).destination((lat, lon), bearing)
    return p.latitude, p.longitude


def ring_from_xy(frame: LocalFrame, xy: list[tuple[float, float]]) -> list[list[float]]:
    """Return a closed GeoJSON ring of [lon, lat] from metre offsets in frame."""
    ring = []
    for x, y in xy:
        lat, lon = frame.to_latlon(x, y)
        ring.append([lon, lat])
    ring.append(list(ring[0]))
    return ring


def square(frame: LocalFrame, half: float, cx: float = 0.0, cy: float = 0.0) -> list[list[float]]:
    """Return a counter-clockwise square ring of side 2*half around (cx, cy) metres."""
    return ring_from_xy(
        frame,
        [
            (cx - half, cy - half),
            (cx + half, cy - half),
            (cx + half, cy + half),
            (cx - half, cy + half),
        ],
    )


def offset_from_edge(
    a: list[float], b: list[float], metres: float
) -> tuple[float, float, float, float]:
    """Return (mid_lat, mid_lon, lat, lon): the edge a-b midpoint and a point `metres` to
    the left of the edge direction, measured in a frame centred on the midpoint."""
    mid_lon = (a[0] + b[0]) / 2
    mid_lat = (a[1] + b[1]) / 2
    f = LocalFrame(mid_lat, mid_lon)
    ax, ay = f.to_xy(a[1], a[0])
    bx, by = f.to_xy(b[1], b[0])
    dx, dy = bx - ax, by - ay
    n = math.hypot(dx, dy)
    lat, lon = f.to_latlon(-dy / n * metres, dx / n * metres)
    return mid_lat, mid_lon, lat, lon


# --------------------------------------------------------------------------- distances


def test_fast_distance_matches_geodesic_on_random_pairs() -> None:
    rng = random.Random(20260101)
    worst = 0.0
    n = 0
    while n < 3000:
        # Half uniform in latitude, half crowded near the poles where the flat-earth
        # approximation is weakest.
        if n % 2:
            lat = rng.uniform(-85.0, 85.0)
        else:
            lat = rng.choice([-1, 1]) * rng.uniform(80.0, 85.0)
        lon = rng.uniform(-180.0, 180.0)
        lat2, lon2 = dest(lat, lon, rng.uniform(0.0, 360.0), rng.uniform(0.0, 6000.0))
        if abs(lat2) > 85.0:
            continue
        err = abs(fast_distance_m(lat, lon, lat2, lon2) - geodesic_m(lat, lon, lat2, lon2))
        worst = max(worst, err)
        n += 1
    assert worst < 0.5
    # Measured ~0.03 m; a regression to, e.g., a spherical radius would show up here.
    assert worst < 0.1


@pytest.mark.parametrize("lat", [0.0, 45.0, 84.9, -85.0, 85.0])
@pytest.mark.parametrize("bearing", [0.0, 45.0, 90.0, 135.0, 270.0])
def test_fast_distance_at_6km(lat: float, bearing: float) -> None:
    lat2, lon2 = dest(lat, 10.0, bearing, 6000.0)
    assert fast_distance_m(lat, 10.0, lat2, lon2) == pytest.approx(6000.0, abs=0.5)


@pytest.mark.parametrize(
    ("lat1", "lon1", "lat2", "lon2"),
    [
        (10.0, 179.99, 10.0, -179.99),  # across the antimeridian, the short way
        (-60.0, -179.995, -60.01, 179.995),
        (31.23, 121.47, 31.23, 121.47),
    ],
)
def test_fast_distance_edge_cases(lat1: float, lon1: float, lat2: float, lon2: float) -> None:
    assert fast_distance_m(lat1, lon1, lat2, lon2) == pytest.approx(
        geodesic_m(lat1, lon1, lat2, lon2), abs=0.5
    )


def test_geodesic_m_known_value() -> None:
    # One degree of longitude on the equator is a * pi / 180.
    assert geodesic_m(0.0, 0.0, 0.0, 1.0) == pytest.approx(111319.49, abs=0.01)


@pytest.mark.parametrize(
    ("dlat", "dlon", "expected"),
    [(0.01, 0.0, 0.0), (0.0, 0.01, 90.0), (-0.01, 0.0, 180.0), (0.0, -0.01, 270.0)],
)
def test_bearing_cardinal(dlat: float, dlon: float, expected: float) -> None:
    assert bearing_deg(31.23, 121.47, 31.23 + dlat, 121.47 + dlon) == pytest.approx(
        expected, abs=0.01
    )


@pytest.mark.parametrize("lat", LATS)
@pytest.mark.parametrize("bearing", [10.0, 100.0, 200.0, 350.0])
def test_bearing_matches_ellipsoid(lat: float, bearing: float) -> None:
    lat2, lon2 = dest(lat, LON0, bearing, 3000.0)
    b = bearing_deg(lat, LON0, lat2, lon2)
    assert 0.0 <= b < 360.0
    azi = Geodesic.WGS84.Inverse(lat, LON0, lat2, lon2)["azi1"] % 360.0
    assert abs((b - azi + 180.0) % 360.0 - 180.0) < 0.25


def test_bearing_same_point() -> None:
    assert bearing_deg(1.0, 2.0, 1.0, 2.0) == 0.0


@pytest.mark.parametrize("lat", LATS)
def test_local_frame_round_trip_and_scale(lat: float) -> None:
    f = LocalFrame(lat, LON0)
    assert f.to_xy(lat, LON0) == (0.0, 0.0)
    for x, y in [(1000.0, 0.0), (0.0, -1000.0), (700.0, 700.0), (-3000.0, 2500.0)]:
        plat, plon = f.to_latlon(x, y)
        px, py = f.to_xy(plat, plon)
        assert px == pytest.approx(x, abs=1e-6) and py == pytest.approx(y, abs=1e-6)
        assert math.hypot(x, y) == pytest.approx(fast_distance_m(lat, LON0, plat, plon), rel=2e-3)
    # Pure east/north offsets agree with the fast distance almost exactly.
    lat_e, lon_e = f.to_latlon(1000.0, 0.0)
    assert fast_distance_m(lat, LON0, lat_e, lon_e) == pytest.approx(1000.0, abs=1e-6)


def test_local_frame_across_antimeridian() -> None:
    f = LocalFrame(10.0, 179.999)
    x, y = f.to_xy(10.0, -179.999)
    assert x == pytest.approx(fast_distance_m(10.0, 179.999, 10.0, -179.999), rel=1e-9)
    lat, lon = f.to_latlon(x, y)
    assert lat == pytest.approx(10.0) and lon == pytest.approx(-179.999)


# --------------------------------------------------------------------------- circles


@pytest.mark.parametrize("lat", LATS)
@pytest.mark.parametrize("radius", [20.0, 100.0, 5000.0])
@pytest.mark.parametrize("bearing", [0.0, 90.0, 225.0])
def test_circle_edge_plus_minus_one_metre(lat: float, radius: float, bearing: float) -> None:
    fence = CircleFence(lat, LON0, radius)
    inside = dest(lat, LON0, bearing, radius - 1.0)
    outside = dest(lat, LON0, bearing, radius + 1.0)
    assert fence.contains(*inside)
    assert not fence.contains(*outside)
    assert fence.signed_distance_m(*inside) == pytest.approx(-1.0, abs=0.05)
    assert fence.signed_distance_m(*outside) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("lat", LATS)
@pytest.mark.parametrize("delta", [-0.2, 0.0, 0.2])
def test_circle_exact_near_edge(lat: float, delta: float) -> None:
    # Within 0.25 m of the edge the geodesic is used, so the answer is exact to the mm.
    fence = CircleFence(lat, LON0, 5000.0)
    p = dest(lat, LON0, 45.0, 5000.0 + delta)
    assert fence.signed_distance_m(*p) == pytest.approx(delta, abs=1e-3)
    if delta:  # exactly on the edge is a coin toss at the last bit
        assert fence.contains(*p) == (delta < 0.0)


def test_circle_signed_distance_far() -> None:
    fence = CircleFence(31.23, LON0, 100.0)
    assert fence.signed_distance_m(31.23, LON0) == pytest.approx(-100.0)
    p = dest(31.23, LON0, 10.0, 2100.0)
    assert fence.signed_distance_m(*p) == pytest.approx(2000.0, abs=0.05)


@pytest.mark.parametrize(
    ("radius", "expected"), [(20.0, 20.0), (100.0, 20.0), (200.0, 20.0), (1000.0, 100.0)]
)
def test_circle_hysteresis(radius: float, expected: float) -> None:
    fence = CircleFence(0.0, 0.0, radius)
    assert fence.hysteresis_m == pytest.approx(expected)
    assert fence.extent_m == radius


# --------------------------------------------------------------------------- polygons


def _square_fence(lat: float, half: float = 1000.0) -> tuple[PolygonFence, list[list[float]]]:
    ring = square(LocalFrame(lat, LON0), half)
    return PolygonFence([[ring]]), ring


@pytest.mark.parametrize("lat", LATS)
@pytest.mark.parametrize("edge", [0, 1, 2, 3])
def test_polygon_edge_plus_minus_one_metre(lat: float, edge: int) -> None:
    fence, ring = _square_fence(lat)
    # The ring is counter-clockwise, so "left of the edge" is inside.
    _, _, ilat, ilon = offset_from_edge(ring[edge], ring[edge + 1], 1.0)
    mlat, mlon, olat, olon = offset_from_edge(ring[edge], ring[edge + 1], -1.0)
    assert geodesic_m(mlat, mlon, ilat, ilon) == pytest.approx(1.0, abs=1e-3)
    assert fence.contains(ilat, ilon)
    assert not fence.contains(olat, olon)
    assert fence.signed_distance_m(ilat, ilon) == pytest.approx(-1.0, abs=0.02)
    assert fence.signed_distance_m(olat, olon) == pytest.approx(1.0, abs=0.02)
    assert fence.contains(mlat, mlon)
    assert fence.signed_distance_m(mlat, mlon) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("lat", LATS)
def test_polygon_slanted_edges(lat: float) -> None:
    f = LocalFrame(lat, LON0)
    ring = ring_from_xy(f, [(-800.0, -300.0), (600.0, -900.0), (900.0, 400.0), (-200.0, 700.0)])
    fence = PolygonFence([[ring]])
    for k in range(4):
        _, _, ilat, ilon = offset_from_edge(ring[k], ring[k + 1], 1.0)
        _, _, olat, olon = offset_from_edge(ring[k], ring[k + 1], -1.0)
        assert fence.signed_distance_m(ilat, ilon) == pytest.approx(-1.0, abs=0.02)
        assert fence.signed_distance_m(olat, olon) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("lat", LATS)
def test_polygon_hole_is_outside(lat: float) -> None:
    f = LocalFrame(lat, LON0)
    shell = square(f, 1000.0)
    hole = square(f, 300.0)[::-1]
    fence = PolygonFence([[shell, hole]])
    assert not fence.contains(lat, LON0)
    assert fence.signed_distance_m(lat, LON0) == pytest.approx(300.0, rel=5e-3)
    # hole[::-1] runs clockwise, so right of its edges is inside the hole = outside.
    _, _, hlat, hlon = offset_from_edge(hole[0], hole[1], -1.0)
    _, _, rlat, rlon = offset_from_edge(hole[0], hole[1], 1.0)
    assert fence.signed_distance_m(hlat, hlon) == pytest.approx(1.0, abs=0.02)
    assert fence.signed_distance_m(rlat, rlon) == pytest.approx(-1.0, abs=0.02)
    assert not fence.contains(hlat, hlon)
    assert fence.contains(rlat, rlon)
    assert fence.area_m2 == pytest.approx(2000.0**2 - 600.0**2, rel=1e-9)


@pytest.mark.parametrize("lat", LATS)
def test_multipolygon(lat: float) -> None:
    f = LocalFrame(lat, LON0)
    a = square(f, 500.0)
    b = square(f, 500.0, cx=2000.0)
    fence = PolygonFence([[a], [b]])
    assert fence.multi
    assert fence.contains(lat, LON0)
    blat, blon = f.to_latlon(2000.0, 0.0)
    assert fence.contains(blat, blon)
    assert fence.signed_distance_m(blat, blon) == pytest.approx(-500.0, rel=5e-3)
    glat, glon = f.to_latlon(1000.0, 0.0)
    assert not fence.contains(glat, glon)
    assert fence.signed_distance_m(glat, glon) == pytest.approx(500.0, rel=5e-3)
    # b's first edge is its south side; 1 m north of it is inside.
    _, _, ilat, ilon = offset_from_edge(b[3], b[0], 1.0)
    assert fence.signed_distance_m(ilat, ilon) == pytest.approx(-1.0, abs=0.02)
    # The anchor is the centroid of both parts together.
    cx, cy = f.to_xy(fence.lat, fence.lon)
    assert cx == pytest.approx(1000.0, abs=0.5) and cy == pytest.approx(0.0, abs=0.5)
    assert fence.extent_m == pytest.approx(math.hypot(1500.0, 500.0), rel=5e-3)


def test_polygon_anchor_extent_and_hysteresis() -> None:
    fence, _ = _square_fence(31.23, half=1000.0)
    assert fence.kind == "polygon"
    assert fence.lat == pytest.approx(31.23, abs=1e-9)
    assert fence.lon == pytest.approx(LON0, abs=1e-9)
    assert fence.extent_m == pytest.approx(1000.0 * math.sqrt(2), rel=1e-3)
    assert fence.hysteresis_m == pytest.approx(0.1 * math.sqrt(4e6 / math.pi), rel=1e-6)
    small, _ = _square_fence(31.23, half=50.0)
    assert small.hysteresis_m == 20.0


@pytest.mark.parametrize("lat", [84.99, -84.99])
def test_polygon_near_85_degrees(lat: float) -> None:
    # Reaches up to (or down to) 85° exactly, which parse_fence accepts.
    f = LocalFrame(lat, LON0)
    ring = square(f, 1000.0)
    edge_lat = 85.0 if lat > 0 else -85.0
    ring = [[lon, edge_lat if abs(la) > abs(lat) else la] for lon, la in ring]
    fence = parse_fence({"type": "Polygon", "coordinates": [ring]}, lat, LON0)
    assert fence.contains(lat, LON0)
    # 1 m back from the 85° edge, towards the equator.
    inside = dest(edge_lat, LON0, 180.0 if lat > 0 else 0.0, 1.0)
    assert fence.signed_distance_m(*inside) == pytest.approx(-1.0, abs=0.02)


# --------------------------------------------------------------------------- overlap


@pytest.mark.parametrize("lat", LATS)
def test_circle_overlap_fraction(lat: float) -> None:
    fence = CircleFence(lat, LON0, 500.0)
    assert fence.overlap_fraction(lat, LON0, 10.0) == 1.0
    assert fence.overlap_fraction(*dest(lat, LON0, 30.0, 2000.0), 50.0) == 0.0
    edge = dest(lat, LON0, 30.0, 500.0)
    assert fence.overlap_fraction(*edge, 10.0) == pytest.approx(0.5, abs=0.01)
    # The fence inside a big accuracy disc counts as full overlap (min of the two areas).
    assert fence.overlap_fraction(lat, LON0, 2000.0) == 1.0
    fractions = [
        fence.overlap_fraction(*dest(lat, LON0, 30.0, d), 40.0) for d in (400, 470, 500, 530, 560)
    ]
    assert fractions == sorted(fractions, reverse=True)
    assert fractions[0] == 1.0 and fractions[-1] == 0.0


@pytest.mark.parametrize("accuracy", [0.0, -5.0, float("nan")])
def test_overlap_without_accuracy(accuracy: float) -> None:
    circle = CircleFence(10.0, 10.0, 100.0)
    poly, _ = _square_fence(10.0, 100.0)
    far = dest(10.0, 10.0, 0.0, 150.0)
    assert circle.overlap_fraction(10.0, 10.0, accuracy) == 1.0
    assert circle.overlap_fraction(*far, accuracy) == 0.0
    assert poly.overlap_fraction(10.0, LON0, accuracy) == 1.0
    assert poly.overlap_fraction(*dest(10.0, LON0, 0.0, 150.0), accuracy) == 0.0


@pytest.mark.parametrize("lat", LATS)
def test_polygon_overlap_fraction(lat: float) -> None:
    fence, ring = _square_fence(lat, 500.0)
    assert fence.overlap_fraction(lat, LON0, 30.0) == 1.0
    assert fence.overlap_fraction(*dest(lat, LON0, 0.0, 2000.0), 30.0) == 0.0
    # On a straight edge: half of the accuracy disc is inside.
    mlat, mlon, _, _ = offset_from_edge(ring[0], ring[1], 0.0)
    assert fence.overlap_fraction(mlat, mlon, 20.0) == pytest.approx(0.5, abs=0.01)
    # Disc centred 10 m inside the edge covers more than half but not all of itself.
    _, _, ilat, ilon = offset_from_edge(ring[0], ring[1], 10.0)
    assert 0.5 < fence.overlap_fraction(ilat, ilon, 20.0) < 1.0
    # Fence fully inside the accuracy disc.
    assert fence.overlap_fraction(lat, LON0, 5000.0) == pytest.approx(1.0, abs=1e-9)


# --------------------------------------------------------------------------- segments


@pytest.mark.parametrize("lat", LATS)
def test_circle_segment_crosses(lat: float) -> None:
    r = 100.0
    fence = CircleFence(lat, LON0, r)
    half_lon = 300.0 / LocalFrame(lat, LON0).to_xy(lat, LON0 + 1.0)[0]

    def crosses_at(offset_north: float) -> bool:
        # A segment along a parallel, closest to the centre at LON0, offset_north away.
        plat = dest(lat, LON0, 0.0, offset_north)[0]
        a = (plat, LON0 - half_lon)
        b = (plat, LON0 + half_lon)
        assert not fence.contains(*a) and not fence.contains(*b)
        return fence.segment_crosses(*a, *b)

    assert crosses_at(0.0)
    assert crosses_at(r - 1.0)
    assert not crosses_at(r + 1.0)
    assert not crosses_at(150.0)
    inside = dest(lat, LON0, 45.0, 50.0)
    outside = dest(lat, LON0, 45.0, 500.0)
    assert fence.segment_crosses(*inside, *outside)
    assert fence.segment_crosses(*inside, *inside)
    assert not fence.segment_crosses(*outside, *outside)


@pytest.mark.parametrize("lat", LATS)
def test_polygon_segment_crosses(lat: float) -> None:
    f = LocalFrame(lat, LON0)
    fence = PolygonFence([[square(f, 500.0), square(f, 200.0)[::-1]]])

    def seg(x1: float, y1: float, x2: float, y2: float) -> bool:
        return fence.segment_crosses(*f.to_latlon(x1, y1), *f.to_latlon(x2, y2))

    assert seg(-1000.0, 0.0, 1000.0, 0.0)
    assert not seg(-1000.0, 600.0, 1000.0, 600.0)
    assert seg(-100.0, 1000.0, 1000.0, -100.0)  # cuts the north-east corner
    assert not seg(400.0, 1000.0, 1000.0, 400.0)  # passes just beyond it
    assert not seg(-100.0, 0.0, 100.0, 0.0)  # entirely inside the hole
    assert seg(0.0, 0.0, 0.0, 300.0)  # from the hole into the ring
    assert seg(300.0, 300.0, 300.0, 300.0)
    assert not seg(600.0, 600.0, 600.0, 600.0)


# --------------------------------------------------------------------------- GeoJSON & storage


def test_circle_geojson() -> None:
    fence = CircleFence(31.23, LON0, 250.0, always_active=True)
    assert fence.to_geojson() == {"type": "Point", "coordinates": [LON0, 31.23]}
    poly = fence.to_polygon_geojson(segments=64)
    assert poly["type"] == "Polygon"
    ring = poly["coordinates"][0]
    assert len(ring) == 65 and ring[0] == ring[-1]
    for lon, lat in ring:  # a display outline: within a centimetre of the radius
        assert geodesic_m(31.23, LON0, lat, lon) == pytest.approx(250.0, abs=0.01)
    area2 = sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:], strict=False))
    assert area2 > 0  # counter-clockwise shell per RFC 7946


def test_polygon_geojson_orientation_is_normalised() -> None:
    f = LocalFrame(31.23, LON0)
    shell_cw = square(f, 500.0)[::-1]
    hole_ccw = square(f, 100.0)
    fence = parse_fence({"type": "Polygon", "coordinates": [shell_cw, hole_ccw]}, 31.23, LON0)
    gj = fence.to_geojson()
    assert gj["type"] == "Polygon"

    def area2(ring: list[list[float]]) -> float:
        return sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:], strict=False))

    assert area2(gj["coordinates"][0]) > 0
    assert area2(gj["coordinates"][1]) < 0


def _specs() -> list[tuple[dict, float, float]]:
    f = LocalFrame(31.23, LON0)
    return [
        ({"type": "circle", "radius_m": 120}, 31.23, LON0),
        (
            {"type": "circle", "radius_m": 87.5, "center": [LON0, 31.2305], "always_active": True},
            31.23,
            LON0,
        ),
        (
            {"type": "Polygon", "coordinates": [square(f, 300.0), square(f, 50.0)[::-1]]},
            31.23,
            LON0,
        ),
        ({"type": "MultiPolygon", "coordinates": [[square(f, 300.0)]]}, 31.23, LON0),
        (
            {
                "type": "MultiPolygon",
                "always_active": False,
                "coordinates": [[square(f, 300.0)], [square(f, 100.0, cx=1000.0)]],
            },
            31.23,
            LON0,
        ),
    ]


@pytest.mark.parametrize(("spec", "lat", "lon"), _specs())
def test_storage_round_trip(spec: dict, lat: float, lon: float) -> None:
    fence = parse_fence(spec, lat, lon)
    stored = json.loads(json.dumps(fence.to_dict(), allow_nan=False))
    again = fence_from_dict(stored)
    assert again == fence and hash(again) == hash(fence)
    assert again.to_dict() == stored
    assert again.extent_m == fence.extent_m and again.lat == fence.lat
    # The stored form is also a valid client spec.
    assert parse_fence(stored, 0.0, 0.0) == fence
    if spec["type"] != "circle":
        assert fence.to_geojson()["type"] == spec["type"]


def test_stored_circle_is_readable() -> None:
    fence = parse_fence({"type": "circle", "radius_m": 120}, 31.23, LON0)
    assert fence.to_dict() == {"type": "circle", "radius_m": 120, "center": [LON0, 31.23]}


@pytest.mark.parametrize("bad", [{}, {"type": "circle"}, {"type": "hexagon"}, {"type": "Polygon"}])
def test_fence_from_dict_refuses_corrupt(bad: dict) -> None:
    with pytest.raises(FenceError):
        fence_from_dict(bad)


def test_fences_are_immutable() -> None:
    circle = CircleFence(1.0, 2.0, 100.0)
    poly, _ = _square_fence(1.0)
    for fence in (circle, poly):
        with pytest.raises(AttributeError):
            fence.lat = 3.0  # type: ignore[misc]
        with pytest.raises(AttributeError):
            fence.always_active = True  # type: ignore[misc]
        assert not hasattr(fence, "__dict__")


# --------------------------------------------------------------------------- parse_fence


def test_parse_circle_defaults_to_store() -> None:
    fence = parse_fence({"type": "circle", "radius_m": 20}, 31.23, LON0)
    assert isinstance(fence, CircleFence)
    assert (fence.lat, fence.lon, fence.radius_m, fence.always_active) == (31.23, LON0, 20.0, False)
    big = parse_fence(
        {"type": "circle", "radius_m": 5000.0, "center": [10, -84.9], "always_active": True},
        0.0,
        0.0,
    )
    assert (big.lat, big.lon, big.radius_m, big.always_active) == (-84.9, 10.0, 5000.0, True)


def test_parse_accepts_altitude_and_ints() -> None:
    ring = [[121, 31], [121.01, 31, 12.5], [121.01, 31.01], [121, 31.01], [121, 31]]
    fence = parse_fence({"type": "Polygon", "coordinates": [ring]}, 31.0, 121.0)
    assert fence.contains(31.005, 121.005)
    assert len(fence.to_geojson()["coordinates"][0][1]) == 2


def test_parse_accepts_1000_vertices() -> None:
    f = LocalFrame(31.23, LON0)
    ring = ring_from_xy(
        f,
        [
            (500 * math.cos(2 * math.pi * i / 1000), 500 * math.sin(2 * math.pi * i / 1000))
            for i in range(1000)
        ],
    )
    fence = parse_fence({"type": "Polygon", "coordinates": [ring]}, 31.23, LON0)
    assert fence.contains(31.23, LON0)


def _ring(xy: list[tuple[float, float]], close: bool = True) -> list[list[float]]:
    ring = ring_from_xy(LocalFrame(31.23, LON0), xy)
    return ring if close else ring[:-1]


SQ = [(-100.0, -100.0), (100.0, -100.0), (100.0, 100.0), (-100.0, 100.0)]
BOWTIE = [(-100.0, -100.0), (100.0, 100.0), (100.0, -100.0), (-100.0, 100.0)]
N1001 = [
    (500 * math.cos(2 * math.pi * i / 1001), 500 * math.sin(2 * math.pi * i / 1001))
    for i in range(1001)
]


def _poly(*rings: list[list[float]]) -> dict:
    return {"type": "Polygon", "coordinates": list(rings)}


REFUSALS = [
    # (id, spec, field, words in the reason)
    ("not-object", [1, 2], "fence", "object"),
    ("no-type", {"radius_m": 100}, "fence.type", "required"),
    ("bad-type", {"type": "Circle", "radius_m": 100}, "fence.type", "unsupported"),
    ("point-type", {"type": "Point", "coordinates": [1, 2]}, "fence.type", "unsupported"),
    ("radius-19", {"type": "circle", "radius_m": 19}, "fence.radius_m", "between 20 and 5000"),
    ("radius-5001", {"type": "circle", "radius_m": 5001}, "fence.radius_m", "between"),
    ("radius-missing", {"type": "circle"}, "fence.radius_m", "required"),
    ("radius-string", {"type": "circle", "radius_m": "100"}, "fence.radius_m", "number"),
    ("radius-bool", {"type": "circle", "radius_m": True}, "fence.radius_m", "number"),
    ("radius-nan", {"type": "circle", "radius_m": float("nan")}, "fence.radius_m", "finite"),
    ("radius-inf", {"type": "circle", "radius_m": float("inf")}, "fence.radius_m", "finite"),
    ("radius-huge-int", {"type": "circle", "radius_m": 10**400}, "fence.radius_m", "finite"),
    (
        "circle-unknown-key",
        {"type": "circle", "radius_m": 100, "color": "red"},
        "fence.color",
        "unknown",
    ),
    (
        "center-shape",
        {"type": "circle", "radius_m": 100, "center": [1]},
        "fence.center",
        "position",
    ),
    (
        "center-lat",
        {"type": "circle", "radius_m": 100, "center": [10, 85.5]},
        "fence.center",
        "latitude",
    ),
    (
        "center-lon",
        {"type": "circle", "radius_m": 100, "center": [180.5, 10]},
        "fence.center",
        "longitude",
    ),
    (
        "always-not-bool",
        {"type": "circle", "radius_m": 100, "always_active": "yes"},
        "fence.always_active",
        "true or false",
    ),
    ("poly-unknown-key", {**_poly(_ring(SQ)), "properties": {}}, "fence.properties", "unknown"),
    ("poly-no-coords", {"type": "Polygon"}, "fence.coordinates", "required"),
    ("coords-string", {"type": "Polygon", "coordinates": "0,0,1,1"}, "fence.coordinates", "array"),
    ("coords-empty", {"type": "Polygon", "coordinates": []}, "fence.coordinates", "array"),
    ("ring-not-array", {"type": "Polygon", "coordinates": ["x"]}, "fence.coordinates[0]", "array"),
    ("open-ring", _poly(_ring(SQ, close=False)), "fence.coordinates[0]", "not closed"),
    ("three-positions", _poly(_ring(SQ[:2])), "fence.coordinates[0]", "at least 4"),
    ("bow-tie", _poly(_ring(BOWTIE)), "fence.coordinates[0]", "self-intersection"),
    ("1001-vertices", _poly(_ring(N1001)), "fence.coordinates", "1001"),
    (
        "string-lon",
        _poly([["121.47", 31.23], *_ring(SQ)[1:-1], ["121.47", 31.23]]),
        "fence.coordinates[0][0]",
        "number",
    ),
    (
        "nan-lat",
        _poly([*_ring(SQ)[:2], [LON0, float("nan")], *_ring(SQ)[3:]]),
        "fence.coordinates[0][2]",
        "finite",
    ),
    (
        "bool-lon",
        _poly([*_ring(SQ)[:1], [True, 31.23], *_ring(SQ)[2:]]),
        "fence.coordinates[0][1]",
        "number",
    ),
    (
        "lat-86",
        _poly([*_ring(SQ)[:3], [LON0, 86.0], *_ring(SQ)[4:]]),
        "fence.coordinates[0][3]",
        "latitude",
    ),
    (
        "lon-181",
        _poly([*_ring(SQ)[:3], [181.0, 31.23], *_ring(SQ)[4:]]),
        "fence.coordinates[0][3]",
        "longitude",
    ),
    (
        "position-4d",
        _poly([*_ring(SQ)[:3], [LON0, 31.23, 0, 0], *_ring(SQ)[4:]]),
        "fence.coordinates[0][3]",
        "position",
    ),
    (
        "hole-outside-shell",
        _poly(_ring(SQ), _ring([(300.0, 300.0), (400.0, 300.0), (400.0, 400.0), (300.0, 400.0)])),
        "fence.coordinates[1]",
        "inside its shell",
    ),
    (
        "hole-crossing-shell",
        _poly(_ring(SQ), _ring([(50.0, 50.0), (150.0, 50.0), (150.0, 150.0), (50.0, 150.0)])),
        "fence.coordinates[1]",
        "inside its shell",
    ),
    (
        "bow-tie-hole",
        _poly(_ring([(4 * x, 4 * y) for x, y in SQ]), _ring(BOWTIE)),
        "fence.coordinates[1]",
        "self-intersection",
    ),
    (
        "overlapping-holes",
        _poly(
            _ring([(4 * x, 4 * y) for x, y in SQ]), _ring(SQ), _ring([(x + 50.0, y) for x, y in SQ])
        ),
        "fence.coordinates",
        "invalid polygon",
    ),
    (
        "zero-area",
        _poly(_ring([(0.0, 0.0), (100.0, 0.0), (200.0, 0.0)])),
        "fence.coordinates[0]",
        "invalid",
    ),
    ("too-wide", _poly(_ring([(40 * x, 40 * y) for x, y in SQ])), "fence.coordinates", "5000"),
    (
        "multi-overlap",
        {
            "type": "MultiPolygon",
            "coordinates": [[_ring(SQ)], [_ring([(x + 150.0, y) for x, y in SQ])]],
        },
        "fence.coordinates[1]",
        "overlaps polygon 0",
    ),
    (
        "multi-shared-edge",
        {
            "type": "MultiPolygon",
            "coordinates": [[_ring(SQ)], [_ring([(x + 200.0, y) for x, y in SQ])]],
        },
        "fence.coordinates",
        "invalid multipolygon",
    ),
    (
        "multi-open-ring",
        {"type": "MultiPolygon", "coordinates": [[_ring(SQ)], [_ring(SQ, close=False)]]},
        "fence.coordinates[1][0]",
        "not closed",
    ),
    (
        "multi-bad-position",
        {
            "type": "MultiPolygon",
            "coordinates": [[_ring(SQ)], [[*_ring(SQ)[:2], [LON0, None], *_ring(SQ)[3:]]]],
        },
        "fence.coordinates[1][0][2]",
        "number",
    ),
    (
        "multi-empty-part",
        {"type": "MultiPolygon", "coordinates": [[_ring(SQ)], []]},
        "fence.coordinates[1]",
        "non-empty",
    ),
]


@pytest.mark.parametrize(
    ("spec", "field", "words"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_parse_fence_refusals(spec: object, field: str, words: str) -> None:
    with pytest.raises(FenceError) as info:
        parse_fence(spec, 31.23, LON0)  # type: ignore[arg-type]
    assert info.value.field == field
    assert words.lower() in info.value.reason.lower()
    assert isinstance(info.value, ValueError)


def test_parse_refusal_names_the_spot_in_lonlat() -> None:
    with pytest.raises(FenceError) as info:
        parse_fence(_poly(_ring(BOWTIE)), 31.23, LON0)
    # The bow-tie crosses itself at the frame origin, i.e. at the store.
    assert f"[{LON0:.6f}, 31.230000]" in info.value.reason


def test_multipolygon_parts_may_touch_at_a_corner() -> None:
    spec = {
        "type": "MultiPolygon",
        "coordinates": [[_ring(SQ)], [_ring([(x + 200.0, y + 200.0) for x, y in SQ])]],
    }
    fence = parse_fence(spec, 31.23, LON0)
    assert isinstance(fence, PolygonFence) and len(fence.parts) == 2
