"""Each process's own spatial index of the fence anchors: fence candidates without Redis.

The engine used to ask Redis for the candidates of every fix: one GEOSEARCH per fence tier per
point on `geo:{geo}:fences:<tier>`, all on the one `{geo}` slot that every shopper's fix hit
(the hot slot of docs/cluster-audit.md §5). The engine already keeps every store entry in
memory (it loads the whole catalog when its version changes), so this module answers the same
question from those entries, and no fix touches `{geo}` any more.

The answer is the set GEOSEARCH returned, not an approximation of it: the transit rule looks at
every candidate within one step of a fix, so a candidate more or less could change an event.
To that end the index reproduces what Valkey does:
- a GEO set keeps a point as a 52-bit geohash and answers with the centre of its cell, so each
  anchor is quantised the same way (`geo_point`), and
- a member is in a radius search when Valkey's haversine distance (its own earth radius and
  formula, `geo_distance_m`) from the search centre is at most the radius.
One known difference, on purpose: from longitude +180.0 exactly, Valkey's nine search boxes do
not reach across the antimeridian (+180 encodes one past the last geohash cell), so GEOSEARCH
missed fences a few hundred metres west of it; the index finds them (tests/test_fence_index.py).
A grid per tier (square cells of about the tier's search radius, in degrees) narrows each
search to the few cells its radius can reach; a search wider than the occupied cells (the long
segments of a batch, up to 100 km) walks the occupied cells instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .geometry import fast_distance_m
from .motion import Point
from .stores import StoreEntry, tier_of

# Valkey's constants (src/geohash.h, src/geohash_helper.c).
GEO_LAT_MIN = -85.05112878
GEO_LAT_MAX = 85.05112878
GEO_LONG_MIN = -180.0
GEO_LONG_MAX = 180.0
GEO_STEP = 26  # bits per coordinate of a stored point (52-bit scores)
EARTH_RADIUS_M = 6372797.560856
_D_R = math.pi / 180.0


def geo_point(lon: float, lat: float) -> tuple[float, float]:
    """Return (lon, lat) as a Valkey GEO set stores and returns it (the centre of its cell)."""
    scale = float(1 << GEO_STEP)
    lat_offset = (lat - GEO_LAT_MIN) / (GEO_LAT_MAX - GEO_LAT_MIN) * scale
    lon_offset = (lon - GEO_LONG_MIN) / (GEO_LONG_MAX - GEO_LONG_MIN) * scale
    ilat, ilon = int(lat_offset), int(lon_offset)  # C's double -> uint32 truncation
    lat_scale = GEO_LAT_MAX - GEO_LAT_MIN
    lon_scale = GEO_LONG_MAX - GEO_LONG_MIN
    lat_min = GEO_LAT_MIN + (ilat * 1.0 / scale) * lat_scale
    lat_max = GEO_LAT_MIN + ((ilat + 1) * 1.0 / scale) * lat_scale
    lon_min = GEO_LONG_MIN + (ilon * 1.0 / scale) * lon_scale
    lon_max = GEO_LONG_MIN + ((ilon + 1) * 1.0 / scale) * lon_scale
    out_lon = min(max((lon_min + lon_max) / 2, GEO_LONG_MIN), GEO_LONG_MAX)
    out_lat = min(max((lat_min + lat_max) / 2, GEO_LAT_MIN), GEO_LAT_MAX)
    return out_lon, out_lat


def geo_distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Return the distance Valkey's GEOSEARCH computes (geohashGetDistance), in metres."""
    lon1r = lon1 * _D_R
    lon2r = lon2 * _D_R
    v = math.sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return EARTH_RADIUS_M * abs(lat2 * _D_R - lat1 * _D_R)
    lat1r = lat1 * _D_R
    lat2r = lat2 * _D_R
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


@dataclass(frozen=True, slots=True)
class _Member:
    store_id: str
    lon: float  # as the GEO set holds it
    lat: float
    lon_r: float
    lat_r: float
    cos_lat: float


class _TierGrid:
    """The anchors of one tier, bucketed in square cells of `cell_deg` degrees."""

    def __init__(self, members: list[_Member], radius_m: float) -> None:
        self.radius_m = radius_m
        # Whole cells around the globe, so that column indexes wrap at the antimeridian.
        self.columns = max(1, math.ceil(360.0 / max(radius_m / EARTH_RADIUS_M / _D_R, 1e-9)))
        self.cell_deg = 360.0 / self.columns
        self.cells: dict[tuple[int, int], list[_Member]] = {}
        for member in members:
            self.cells.setdefault(self._cell(member.lon, member.lat), []).append(member)

    def _cell(self, lon: float, lat: float) -> tuple[int, int]:
        row = math.floor((lat + 90.0) / self.cell_deg)
        column = math.floor((lon + 180.0) / self.cell_deg) % self.columns
        return row, column

    def _reachable(self, lon: float, lat: float, radius_m: float) -> list[list[_Member]] | None:
        """Return the buckets a search can reach, or None when scanning all is cheaper."""
        angle = radius_m / EARTH_RADIUS_M  # radians of arc
        # Every point within `angle` of the centre is within `angle` in latitude; the slack
        # covers rounding (the exact test below decides).
        dlat = angle / _D_R * (1 + 1e-9) + 1e-9
        south, north = max(lat - dlat, -90.0), min(lat + dlat, 90.0)
        # Longitude: sin²(Δλ/2)·cos φ1·cos φ2 ≤ sin²(angle/2), with φ2 anywhere in the band.
        cos_band = min(math.cos(south * _D_R), math.cos(north * _D_R))  # cos peaks at 0
        denominator = math.cos(lat * _D_R) * cos_band
        ratio = math.sin(min(angle, math.pi) / 2) / math.sqrt(denominator) if denominator > 0 else 2
        if angle >= math.pi or ratio >= 1.0:
            return None
        dlon = 2 * math.asin(ratio) / _D_R * (1 + 1e-9) + 1e-9
        cell = self.cell_deg
        rows = range(math.floor((south + 90.0) / cell), math.floor((north + 90.0) / cell) + 1)
        first = math.floor((lon - dlon + 180.0) / self.cell_deg)
        last = math.floor((lon + dlon + 180.0) / self.cell_deg)
        if last - first + 1 >= self.columns:
            columns = range(self.columns)
        else:
            columns = range(first, last + 1)
        if len(rows) * len(columns) > len(self.cells):
            return None
        cells = self.cells
        found = []
        for row in rows:
            for column in columns:
                bucket = cells.get((row, column % self.columns))
                if bucket is not None:
                    found.append(bucket)
        return found

    def search(self, lon: float, lat: float, radius_m: float, out: set[str]) -> None:
        """Add to `out` the anchors within radius_m of (lon, lat), as GEOSEARCH finds them."""
        buckets = self._reachable(lon, lat, radius_m)
        if buckets is None:
            buckets = list(self.cells.values())
        lon_r = lon * _D_R
        lat_r = lat * _D_R
        cos_lat = math.cos(lat_r)
        sin = math.sin
        for bucket in buckets:
            for m in bucket:
                # geo_distance_m, inlined with the member's precomputed parts.
                v = sin((m.lon_r - lon_r) / 2)
                if v == 0.0:
                    distance = EARTH_RADIUS_M * abs(m.lat_r - lat_r)
                else:
                    u = sin((m.lat_r - lat_r) / 2)
                    a = u * u + cos_lat * m.cos_lat * v * v
                    distance = 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(a))
                if distance <= radius_m:
                    out.add(m.store_id)


class FenceIndex:
    """The fence anchors of one catalog version, searchable per tier like the GEO sets were.

    `tiers` lists (tier, reach) of the non-empty tiers: each tier is searched with the largest
    reach (extent + hysteresis + 1 m) it holds, rounded to 0.1 m as the search always was.
    """

    def __init__(self, entries: Mapping[str, StoreEntry]) -> None:
        reach: dict[int, float] = {}
        members: dict[int, list[_Member]] = {}
        for sid, entry in entries.items():
            fence = entry.fence
            tier = tier_of(fence)
            reach[tier] = max(reach.get(tier, 0.0), fence.extent_m + fence.hysteresis_m + 1.0)
            lon, lat = geo_point(fence.lon, fence.lat)
            lat_r = lat * _D_R
            members.setdefault(tier, []).append(
                _Member(sid, lon, lat, lon * _D_R, lat_r, math.cos(lat_r))
            )
        self.tiers: list[tuple[int, float]] = sorted(reach.items())
        self._grids = [
            _TierGrid(members[tier], float(f"{radius:.1f}")) for tier, radius in self.tiers
        ]

    def __len__(self) -> int:
        return sum(len(bucket) for grid in self._grids for bucket in grid.cells.values())

    def candidates(self, lon: float, lat: float, extra_m: float = 0.0) -> set[str]:
        """Return the store ids whose anchor is within its tier's reach (+ extra_m) of a point."""
        found: set[str] = set()
        # GEO sets end at +-85.05112878 degrees; no fence reaches beyond (stores stop at 85).
        if not GEO_LAT_MIN <= lat <= GEO_LAT_MAX:
            return found
        for grid in self._grids:
            grid.search(lon, lat, grid.radius_m + extra_m, found)
        return found


# -- the candidates of a shopper's fixes ---------------------------------------------------
SEGMENT_SEARCH_MIN_M = 50.0
SEGMENT_SEARCH_MAX_M = 200_000.0


def midpoint_search(lat1: float, lon1: float, lat2: float, lon2: float):
    """Return (lon, lat, extra radius) of a search around a long segment's midpoint, or None."""
    length = fast_distance_m(lat1, lon1, lat2, lon2)
    if not SEGMENT_SEARCH_MIN_M < length < SEGMENT_SEARCH_MAX_M:
        return None
    return ((lon1 + lon2) / 2, (lat1 + lat2) / 2, length / 2)


def fix_candidates(index: FenceIndex, fixes: Sequence, anchor: Point | None) -> list[set[str]]:
    """Return each fix's fence candidates: around the fix itself, and around the midpoint of a
    long segment from the previous fix (from the stored anchor for the first fix)."""
    candidates = [index.candidates(fix.lon, fix.lat) for fix in fixes]
    prev = anchor
    for i, fix in enumerate(fixes):
        if prev is not None:
            point = midpoint_search(prev.lat, prev.lon, fix.lat, fix.lon)
            if point is not None:
                candidates[i] |= index.candidates(*point)
        prev = fix
    return candidates
