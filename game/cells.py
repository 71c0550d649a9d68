"""Spawn cells: geohash, precision 7 (about 153 m x 153 m at the equator, 153 x 131 m in
Shanghai).

Why geohash rather than H3 or S2: spawns only need a partition of the map that every process
computes identically from a coordinate, and cells small enough that a 200 m query touches a
handful of them. Geohash is a few lines of integer arithmetic with no native dependency, its
cells are lat/lon rectangles (so uniform sampling inside one is trivial and exact), and it is
the same interleaving Redis GEO uses. What H3 would add (equal-area hexagons, equidistant
neighbours) matters for analytics across latitudes, not for a festival's spawn density: cell
area shrinks with cos(latitude), which the spawn density can absorb per campaign.
"""

from __future__ import annotations

import math

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
_DECODE = {ch: i for i, ch in enumerate(BASE32)}
PRECISION = 7
# Metres per degree, rounded so that reaches err wide: a degree of latitude is shortest at the
# equator (110.574 km on WGS-84), a degree of longitude at least 111.319 km x cos(latitude).
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON = 111_319.0


def encode(lat: float, lon: float, precision: int = PRECISION) -> str:
    """Return the geohash of a point."""
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    out = []
    bits, value, even = 0, 0, True
    while len(out) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            if lon >= mid:
                value = value * 2 + 1
                lon_lo = mid
            else:
                value *= 2
                lon_hi = mid
        else:
            mid = (lat_lo + lat_hi) / 2
            if lat >= mid:
                value = value * 2 + 1
                lat_lo = mid
            else:
                value *= 2
                lat_hi = mid
        even = not even
        bits += 1
        if bits == 5:
            out.append(BASE32[value])
            bits, value = 0, 0
    return "".join(out)


def bounds(cell: str) -> tuple[float, float, float, float]:
    """Return (min_lat, min_lon, max_lat, max_lon) of a cell; ValueError if not a geohash."""
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    even = True
    for ch in cell:
        value = _DECODE.get(ch)
        if value is None:
            raise ValueError(f"not a geohash: {cell!r}")
        for shift in range(4, -1, -1):
            bit = (value >> shift) & 1
            if even:
                mid = (lon_lo + lon_hi) / 2
                lon_lo, lon_hi = (mid, lon_hi) if bit else (lon_lo, mid)
            else:
                mid = (lat_lo + lat_hi) / 2
                lat_lo, lat_hi = (mid, lat_hi) if bit else (lat_lo, mid)
            even = not even
    return lat_lo, lon_lo, lat_hi, lon_hi


def covering(lat: float, lon: float, radius_m: float, precision: int = PRECISION) -> list[str]:
    """Return the cells whose rectangles may hold points within radius_m of a point."""
    lat_lo, lon_lo, lat_hi, lon_hi = bounds(encode(lat, lon, precision))
    dlat, dlon = lat_hi - lat_lo, lon_hi - lon_lo
    reach_lat = radius_m / M_PER_DEG_LAT
    reach_lon = radius_m / (M_PER_DEG_LON * max(math.cos(math.radians(lat)), 0.01))
    rows = math.ceil(reach_lat / dlat)
    cols = math.ceil(reach_lon / dlon)
    # Centre of the point's cell, then step whole cells; clamp near the poles.
    clat, clon = (lat_lo + lat_hi) / 2, (lon_lo + lon_hi) / 2
    found = []
    for i in range(-rows, rows + 1):
        y = clat + i * dlat
        if not -90 < y < 90:
            continue
        # The nearest point of that row of cells to the query point, in latitude.
        near_lat = min(max(lat, y - dlat / 2), y + dlat / 2)
        if abs(near_lat - lat) * M_PER_DEG_LAT > radius_m:
            continue
        for j in range(-cols, cols + 1):
            x = clon + j * dlon
            x = (x + 180.0) % 360.0 - 180.0
            found.append(encode(y, x, precision))
    return sorted(set(found))
