"""Geofence geometry on the WGS-84 ellipsoid: distances, local frames and fences.

Everything here is pure computation (no Redis, no web framework) and the per-fix methods
(`signed_distance_m`, `contains`) are written for a hot path: a fix is tested against a
handful of candidate fences, so they avoid allocating more than they must.

Polygon edges follow RFC 7946: a line between two positions is straight in (lon, lat).
`LocalFrame` is an affine map of (lon, lat), so those edges stay straight in metres and
containment in the frame is exactly the GeoJSON meaning of the polygon.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Sequence
from typing import Any

import shapely
from geographiclib.geodesic import Geodesic
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.validation import explain_validity

__all__ = [
    "CIRCLE_MAX_RADIUS_M",
    "CIRCLE_MIN_RADIUS_M",
    "CircleFence",
    "FENCE_MAX_OFFSET_M",
    "Fence",
    "FenceError",
    "LocalFrame",
    "MAX_EXTENT_M",
    "MAX_LAT",
    "MAX_VERTICES",
    "PolygonFence",
    "bearing_deg",
    "fast_distance_m",
    "fence_from_dict",
    "geodesic_m",
    "parse_fence",
]

# WGS-84 ellipsoid.
_A = 6378137.0
_F = 1 / 298.257223563
_E2 = _F * (2 - _F)

_D2R = math.pi / 180.0
_R2D = 180.0 / math.pi

CIRCLE_MIN_RADIUS_M = 20.0
CIRCLE_MAX_RADIUS_M = 5000.0
MAX_EXTENT_M = 5000.0
MAX_VERTICES = 1000
# A store's fence must contain the store's point or come within this distance of it: a fence
# elsewhere is a data error (swapped lat/lon, another store's shape), not a choice.
FENCE_MAX_OFFSET_M = 500.0
# Beyond this the local frames lose accuracy fast, and no store is up there anyway.
MAX_LAT = 85.0
HYSTERESIS_MIN_M = 20.0
HYSTERESIS_FRACTION = 0.1
# Below this distance from a circle's edge the answer decides inside/outside, so it is
# worth the ~100x cost of an exact geodesic.
# Within this distance of a circle's edge the geodesic decides (the fast formula's error is
# under 0.04 m up to 6 km, so a quarter metre leaves a wide margin).
_EXACT_BAND_M = 0.25
_WGS84 = Geodesic.WGS84

# Building a Point through its constructor coerces through numpy and costs ~2x more than
# decoding a 21-byte WKB point; signed_distance_m needs one point per call.
_WKB_POINT = struct.Struct("<BIdd").pack


def _point(x: float, y: float) -> Point:
    return shapely.from_wkb(_WKB_POINT(1, 1, x, y))


def _radii(phi: float) -> tuple[float, float]:
    """Return the meridional (M) and prime-vertical (N) radii of curvature at latitude phi."""
    s = math.sin(phi)
    w = 1.0 - _E2 * s * s
    n = _A / math.sqrt(w)
    return n * (1.0 - _E2) / w, n


def _wrap_deg(d: float) -> float:
    # Longitude differences are taken the short way round so frames work across ±180°.
    if d > 180.0:
        return d - 360.0
    if d < -180.0:
        return d + 360.0
    return d


def geodesic_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the WGS-84 geodesic distance in metres between two points."""
    # geographiclib directly: the same algorithm geopy uses, without its wrapper objects.
    return _WGS84.Inverse(lat1, lon1, lat2, lon2, Geodesic.DISTANCE)["s12"]


def fast_distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the ellipsoidal distance in metres, accurate to a few cm up to 6 km."""
    # Flat earth with the WGS-84 radii at the mean latitude. Measured against geodesic:
    # < 0.04 m up to 6 km for |lat| <= 85°, so no correction term is needed.
    p1 = lat1 * _D2R
    p2 = lat2 * _D2R
    pm = 0.5 * (p1 + p2)
    s = math.sin(pm)
    w = 1.0 - _E2 * s * s
    n = _A / math.sqrt(w)
    m = n * (1.0 - _E2) / w
    dlon = lon2 - lon1
    if dlon > 180.0:
        dlon -= 360.0
    elif dlon < -180.0:
        dlon += 360.0
    return math.hypot(n * math.cos(pm) * dlon * _D2R, m * (p2 - p1))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the initial bearing from point 1 to point 2 in degrees, 0 <= b < 360."""
    # Great-circle formula: within 0.2° of the ellipsoidal azimuth, at ~1/50 of its cost.
    p1 = lat1 * _D2R
    p2 = lat2 * _D2R
    dl = _wrap_deg(lon2 - lon1) * _D2R
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    if x == 0.0 and y == 0.0:
        return 0.0
    b = math.atan2(y, x) * _R2D % 360.0
    # -tiny % 360 rounds to 360.0, which is outside the promised range.
    return 0.0 if b >= 360.0 else b


class LocalFrame:
    """Tangent plane around (lat0, lon0): x east and y north, in metres."""

    __slots__ = ("lat0", "lon0", "_kx", "_ky")

    def __init__(self, lat0: float, lon0: float) -> None:
        """Build the frame with the WGS-84 radii of curvature at lat0."""
        m, n = _radii(lat0 * _D2R)
        self.lat0 = float(lat0)
        self.lon0 = float(lon0)
        # Metres per degree, so that to_xy is two multiplications.
        self._kx = n * math.cos(lat0 * _D2R) * _D2R
        self._ky = m * _D2R

    def to_xy(self, lat: float, lon: float) -> tuple[float, float]:
        """Project a point to (x_east_m, y_north_m)."""
        dlon = lon - self.lon0
        if dlon > 180.0:
            dlon -= 360.0
        elif dlon < -180.0:
            dlon += 360.0
        return dlon * self._kx, (lat - self.lat0) * self._ky

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        """Unproject (x_east_m, y_north_m) to (lat, lon)."""
        lon = _wrap_deg(self.lon0 + x / self._kx)
        return self.lat0 + y / self._ky, lon

    def __repr__(self) -> str:
        return f"LocalFrame({self.lat0!r}, {self.lon0!r})"


class FenceError(ValueError):
    """A fence specification was refused; `field` points at the offending input."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        """Record the human-readable reason and the field path."""
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


class _Frozen:
    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _init(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)


def _lens_area(d: float, r1: float, r2: float) -> float:
    """Return the area of intersection of two circles with radii r1, r2 and centres d apart."""
    if d >= r1 + r2:
        return 0.0
    if d <= abs(r1 - r2):
        r = min(r1, r2)
        return math.pi * r * r
    c1 = max(-1.0, min(1.0, (d * d + r1 * r1 - r2 * r2) / (2.0 * d * r1)))
    c2 = max(-1.0, min(1.0, (d * d + r2 * r2 - r1 * r1) / (2.0 * d * r2)))
    k = (-d + r1 + r2) * (d + r1 - r2) * (d - r1 + r2) * (d + r1 + r2)
    return r1 * r1 * math.acos(c1) + r2 * r2 * math.acos(c2) - 0.5 * math.sqrt(max(k, 0.0))


class CircleFence(_Frozen):
    """A geodesic circle: every point within radius_m of the centre."""

    __slots__ = (
        "kind",
        "lat",
        "lon",
        "radius_m",
        "extent_m",
        "always_active",
        "_frame",
    )

    kind: str
    lat: float
    lon: float
    radius_m: float
    extent_m: float
    always_active: bool
    _frame: LocalFrame

    def __init__(
        self, lat: float, lon: float, radius_m: float, always_active: bool = False
    ) -> None:
        """Build a circle around (lat, lon); no validation, use parse_fence for input."""
        self._init(
            kind="circle",
            lat=float(lat),
            lon=float(lon),
            radius_m=float(radius_m),
            extent_m=float(radius_m),
            always_active=bool(always_active),
            _frame=LocalFrame(lat, lon),
        )

    @property
    def hysteresis_m(self) -> float:
        """Return the exit margin: 10 % of the radius, at least 20 m."""
        return max(HYSTERESIS_FRACTION * self.radius_m, HYSTERESIS_MIN_M)

    def signed_distance_m(self, lat: float, lon: float) -> float:
        """Return metres to the edge: negative inside, positive outside."""
        d = fast_distance_m(self.lat, self.lon, lat, lon) - self.radius_m
        if -_EXACT_BAND_M < d < _EXACT_BAND_M:
            d = geodesic_m(self.lat, self.lon, lat, lon) - self.radius_m
        return d

    def contains(self, lat: float, lon: float) -> bool:
        """Return True when the point is inside or on the edge."""
        return self.signed_distance_m(lat, lon) <= 0.0

    def overlap_fraction(self, lat: float, lon: float, accuracy_m: float) -> float:
        """Return area(accuracy circle ∩ fence) / min(both areas), in [0, 1]."""
        if not accuracy_m > 0.0:
            return 1.0 if self.contains(lat, lon) else 0.0
        d = self.signed_distance_m(lat, lon) + self.radius_m
        lens = _lens_area(max(d, 0.0), accuracy_m, self.radius_m)
        r = min(accuracy_m, self.radius_m)
        return min(1.0, lens / (math.pi * r * r))

    def segment_crosses(self, lat1: float, lon1: float, lat2: float, lon2: float) -> bool:
        """Return True when the straight segment between two fixes touches the circle."""
        x1, y1 = self._frame.to_xy(lat1, lon1)
        x2, y2 = self._frame.to_xy(lat2, lon2)
        dx = x2 - x1
        dy = y2 - y1
        dd = dx * dx + dy * dy
        t = 0.0 if dd == 0.0 else max(0.0, min(1.0, -(x1 * dx + y1 * dy) / dd))
        cx = x1 + t * dx
        cy = y1 + t * dy
        # The frame's scale drifts ~0.5 % at 5 km near ±85°, so judge the closest point
        # with the real distance; the frame only picks where along the segment it is.
        clat, clon = self._frame.to_latlon(cx, cy)
        return self.signed_distance_m(clat, clon) <= 0.0

    def to_geojson(self) -> dict[str, Any]:
        """Return the centre as a GeoJSON Point; the caller carries radius_m as a property."""
        return {"type": "Point", "coordinates": [self.lon, self.lat]}

    def to_polygon_geojson(self, segments: int = 64) -> dict[str, Any]:
        """Return a GeoJSON Polygon approximating the circle, for map display."""
        if segments < 3:
            raise ValueError("segments must be >= 3")
        # The local frame is exact enough for display (well under a metre at 5 km) and about
        # a hundred times cheaper than geodesic destinations: exports hold thousands of circles.
        frame = LocalFrame(self.lat, self.lon)
        ring = []
        for i in range(segments):  # counter-clockwise, as RFC 7946 asks of a shell
            angle = 2.0 * math.pi * i / segments
            lat, lon = frame.to_latlon(
                self.radius_m * math.cos(angle), self.radius_m * math.sin(angle)
            )
            ring.append([_wrap_deg(lon), lat])
        ring.append(ring[0])
        return {"type": "Polygon", "coordinates": [ring]}

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able storage dict, itself a valid parse_fence spec."""
        r = self.radius_m
        d: dict[str, Any] = {
            "type": "circle",
            "radius_m": int(r) if r.is_integer() else r,
            "center": [self.lon, self.lat],
        }
        if self.always_active:
            d["always_active"] = True
        return d

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CircleFence):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.lat, self.lon, self.radius_m, self.always_active))

    def __repr__(self) -> str:
        return (
            f"CircleFence(lat={self.lat!r}, lon={self.lon!r}, radius_m={self.radius_m!r}, "
            f"always_active={self.always_active!r})"
        )


Ring = tuple[tuple[float, float], ...]


def _shoelace(xy: Sequence[tuple[float, float]]) -> float:
    s = 0.0
    for i in range(len(xy) - 1):
        s += xy[i][0] * xy[i + 1][1] - xy[i + 1][0] * xy[i][1]
    return 0.5 * s


class PolygonFence(_Frozen):
    """A Polygon or MultiPolygon fence; holes are outside."""

    __slots__ = (
        "kind",
        "lat",
        "lon",
        "extent_m",
        "always_active",
        "area_m2",
        "multi",
        "parts",
        "_frame",
        "_geom",
        "_boundary",
        "_bbox",
        "_kx",
        "_ky",
    )

    kind: str
    lat: float
    lon: float
    extent_m: float
    always_active: bool
    area_m2: float
    multi: bool
    parts: tuple[tuple[Ring, ...], ...]
    _frame: LocalFrame
    _geom: Polygon | MultiPolygon
    _boundary: Any
    _bbox: tuple[float, float, float, float]
    _kx: float
    _ky: float

    def __init__(
        self,
        parts: Sequence[Sequence[Sequence[Sequence[float]]]],
        always_active: bool = False,
        multi: bool | None = None,
    ) -> None:
        """Build from MultiPolygon-shaped [lon, lat] rings; no validation (see parse_fence)."""
        lonlat = tuple(
            tuple(tuple((float(p[0]), float(p[1])) for p in ring) for ring in poly)
            for poly in parts
        )
        if not lonlat or not lonlat[0] or not lonlat[0][0]:
            raise ValueError("a polygon fence needs at least one ring")
        # A provisional frame at any vertex: the projection is affine in (lon, lat), so
        # the centroid found there is the true metric centroid wherever the frame sits.
        lon_a, lat_a = lonlat[0][0][0]
        pre = LocalFrame(lat_a, lon_a)
        oriented = []
        for poly in lonlat:
            rings = []
            for k, ring in enumerate(poly):
                area = _shoelace([pre.to_xy(lat, lon) for lon, lat in ring])
                # RFC 7946 right-hand rule: shells counter-clockwise, holes clockwise.
                if (k == 0 and area < 0) or (k > 0 and area > 0):
                    ring = ring[::-1]
                rings.append(ring)
            oriented.append(tuple(rings))
        lonlat = tuple(oriented)
        pre_geom = _build_geom(lonlat, pre)
        c = pre_geom.centroid
        if c.is_empty or not (math.isfinite(c.x) and math.isfinite(c.y)):
            # Zero-area (invalid) input has no centroid; any interior-ish anchor will do.
            x0, y0, x1, y1 = pre_geom.bounds
            lat0, lon0 = pre.to_latlon(0.5 * (x0 + x1), 0.5 * (y0 + y1))
        else:
            lat0, lon0 = pre.to_latlon(c.x, c.y)
        frame = LocalFrame(lat0, lon0)
        geom = _build_geom(lonlat, frame)
        shapely.prepare(geom)
        extent = 0.0
        for poly in lonlat:
            for ring in poly:
                for lon, lat in ring:
                    x, y = frame.to_xy(lat, lon)
                    # Take the larger of frame and ellipsoid distance: extent bounds a
                    # candidate search, so it must not come out short.
                    extent = max(extent, math.hypot(x, y), fast_distance_m(lat0, lon0, lat, lon))
        self._init(
            kind="polygon",
            lat=lat0,
            lon=lon0,
            extent_m=extent,
            always_active=bool(always_active),
            area_m2=geom.area,
            multi=len(lonlat) > 1 if multi is None else bool(multi),
            parts=lonlat,
            _frame=frame,
            _geom=geom,
            _boundary=geom.boundary,
            _bbox=geom.bounds,
            _kx=frame._kx,
            _ky=frame._ky,
        )

    @property
    def hysteresis_m(self) -> float:
        """Return the exit margin: 10 % of the equivalent radius, at least 20 m."""
        return max(HYSTERESIS_FRACTION * math.sqrt(self.area_m2 / math.pi), HYSTERESIS_MIN_M)

    def _xy(self, lat: float, lon: float) -> tuple[float, float]:
        # LocalFrame.to_xy inlined: this runs once per fence per fix.
        dlon = lon - self.lon
        if dlon > 180.0:
            dlon -= 360.0
        elif dlon < -180.0:
            dlon += 360.0
        return dlon * self._kx, (lat - self.lat) * self._ky

    def signed_distance_m(self, lat: float, lon: float) -> float:
        """Return metres to the boundary: negative inside, positive outside (holes are outside)."""
        x, y = self._xy(lat, lon)
        p = _point(x, y)
        d = self._boundary.distance(p)
        if self._geom.intersects(p):
            return 0.0 - d
        return d

    def contains(self, lat: float, lon: float) -> bool:
        """Return True when the point is inside or on the boundary."""
        x, y = self._xy(lat, lon)
        x0, y0, x1, y1 = self._bbox
        # Most candidates are outside their bounding box; skip GEOS for those.
        if x < x0 or x > x1 or y < y0 or y > y1:
            return False
        return bool(shapely.intersects_xy(self._geom, x, y))

    def overlap_fraction(self, lat: float, lon: float, accuracy_m: float) -> float:
        """Return area(accuracy circle ∩ fence) / min(both areas), in [0, 1]."""
        if not accuracy_m > 0.0:
            return 1.0 if self.contains(lat, lon) else 0.0
        sd = self.signed_distance_m(lat, lon)
        if sd <= -accuracy_m:
            return 1.0
        if sd >= accuracy_m:
            return 0.0
        x, y = self._xy(lat, lon)
        disc = _point(x, y).buffer(accuracy_m, quad_segs=8)
        inter = disc.intersection(self._geom).area
        # The buffer is a 32-gon, so compare with its own area, not pi r^2, so that a disc
        # lying fully inside gives exactly 1.
        denom = min(disc.area, self.area_m2)
        return 0.0 if denom <= 0.0 else max(0.0, min(1.0, inter / denom))

    def segment_crosses(self, lat1: float, lon1: float, lat2: float, lon2: float) -> bool:
        """Return True when the straight segment between two fixes touches the fence."""
        x1, y1 = self._xy(lat1, lon1)
        x2, y2 = self._xy(lat2, lon2)
        bx0, by0, bx1, by1 = self._bbox
        if max(x1, x2) < bx0 or min(x1, x2) > bx1 or max(y1, y2) < by0 or min(y1, y2) > by1:
            return False
        if x1 == x2 and y1 == y2:
            return bool(shapely.intersects_xy(self._geom, x1, y1))
        return self._geom.intersects(LineString([(x1, y1), (x2, y2)]))

    def _coordinates(self) -> list[Any]:
        return [[[[lon, lat] for lon, lat in ring] for ring in poly] for poly in self.parts]

    def to_geojson(self) -> dict[str, Any]:
        """Return an RFC 7946 Polygon or MultiPolygon geometry ([lon, lat] positions)."""
        coords = self._coordinates()
        if self.multi:
            return {"type": "MultiPolygon", "coordinates": coords}
        return {"type": "Polygon", "coordinates": coords[0]}

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able storage dict, itself a valid parse_fence spec."""
        d = self.to_geojson()
        if self.always_active:
            d["always_active"] = True
        return d

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PolygonFence):
            return NotImplemented
        return (self.parts, self.multi, self.always_active) == (
            other.parts,
            other.multi,
            other.always_active,
        )

    def __hash__(self) -> int:
        return hash((self.parts, self.multi, self.always_active))

    def __repr__(self) -> str:
        n = sum(len(ring) - 1 for poly in self.parts for ring in poly)
        return (
            f"PolygonFence(lat={self.lat:.6f}, lon={self.lon:.6f}, parts={len(self.parts)}, "
            f"vertices={n}, extent_m={self.extent_m:.1f}, always_active={self.always_active})"
        )


Fence = CircleFence | PolygonFence


def _build_geom(parts: tuple[tuple[Ring, ...], ...], frame: LocalFrame) -> Polygon | MultiPolygon:
    polys = []
    for poly in parts:
        rings = [[frame.to_xy(lat, lon) for lon, lat in ring] for ring in poly]
        polys.append(Polygon(rings[0], rings[1:]))
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


def fence_from_dict(d: dict[str, Any]) -> Fence:
    """Rebuild a fence from its to_dict() form (trusted storage: no shape validation)."""
    kind = d.get("type") if isinstance(d, dict) else None
    try:
        if kind == "circle":
            lon, lat = d["center"]
            return CircleFence(lat, lon, d["radius_m"], bool(d.get("always_active", False)))
        if kind == "Polygon":
            return PolygonFence([d["coordinates"]], bool(d.get("always_active", False)), False)
        if kind == "MultiPolygon":
            return PolygonFence(d["coordinates"], bool(d.get("always_active", False)), True)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise FenceError(f"corrupt stored fence: {e}", "fence") from e
    raise FenceError(f"unknown stored fence type {kind!r}", "fence.type")


# ---------------------------------------------------------------------------
# Client input validation


_CIRCLE_KEYS = frozenset({"type", "radius_m", "center", "always_active"})
_POLYGON_KEYS = frozenset({"type", "coordinates", "always_active"})
_VALIDITY_RE = re.compile(r"^(.*?)\[(\S+) (\S+)\]$")


def _number(v: Any, field: str, what: str) -> float:
    # bool is an int subclass; JSON true must not pass as 1.
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise FenceError(f"{what} must be a number, got {type(v).__name__}", field)
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        raise FenceError(f"{what} must be a finite number", field)
    return f


def _position(v: Any, field: str) -> tuple[float, float]:
    if not isinstance(v, list | tuple) or len(v) not in (2, 3):
        raise FenceError("a position must be [longitude, latitude]", field)
    # A third element is a GeoJSON altitude: allowed by RFC 7946, meaningless here.
    lon = _number(v[0], field, "longitude")
    lat = _number(v[1], field, "latitude")
    if len(v) == 3:
        _number(v[2], field, "altitude")
    if not -180.0 <= lon <= 180.0:
        raise FenceError(f"longitude {lon} is outside [-180, 180]", field)
    if not -MAX_LAT <= lat <= MAX_LAT:
        raise FenceError(f"latitude {lat} is outside [-{MAX_LAT:g}, {MAX_LAT:g}]", field)
    return lon, lat


def _bool(v: Any, field: str) -> bool:
    if not isinstance(v, bool):
        raise FenceError("must be true or false", field)
    return v


def _check_keys(spec: dict[str, Any], allowed: frozenset[str], kind: str) -> None:
    for key in spec:
        if key not in allowed:
            raise FenceError(f"unknown key for a {kind} fence", f"fence.{key}")


def parse_fence(
    spec: Any, store_lat: float, store_lon: float, max_offset_m: float | None = None
) -> Fence:
    """Validate a client fence spec and build the fence, raising FenceError on refusal.

    With `max_offset_m`, the fence must contain the store's point or lie within that many
    metres of it.
    """
    if not isinstance(spec, dict):
        raise FenceError("fence must be an object", "fence")
    kind = spec.get("type")
    fence: Fence | None = None
    if kind == "circle":
        fence = _parse_circle(spec, store_lat, store_lon)
    elif kind in ("Polygon", "MultiPolygon"):
        fence = _parse_polygon(spec, kind == "MultiPolygon")
    if fence is not None:
        if max_offset_m is not None:
            _check_near(fence, store_lat, store_lon, max_offset_m, kind == "circle")
        return fence
    if kind is None:
        raise FenceError("type is required: circle, Polygon or MultiPolygon", "fence.type")
    raise FenceError(
        f"unsupported type {kind!r}: expected circle, Polygon or MultiPolygon", "fence.type"
    )


def _check_near(fence: Fence, lat: float, lon: float, max_offset_m: float, circle: bool) -> None:
    # The centre-to-point geodesic first: a fence on another continent is refused without
    # asking a local frame about a point it cannot represent.
    centre_m = geodesic_m(fence.lat, fence.lon, lat, lon)
    if centre_m > fence.extent_m + max_offset_m:
        away = centre_m - fence.extent_m
    else:
        away = fence.signed_distance_m(lat, lon)
    if away > max_offset_m:
        raise FenceError(
            f"the fence is {away:.0f} m from the store's point (lat, lon); it must contain the "
            f"point or lie within {max_offset_m:g} m of it (swapped latitude and longitude?)",
            "fence.center" if circle else "fence.coordinates",
        )


def _parse_circle(spec: dict[str, Any], store_lat: float, store_lon: float) -> CircleFence:
    _check_keys(spec, _CIRCLE_KEYS, "circle")
    if "radius_m" not in spec:
        raise FenceError("radius_m is required", "fence.radius_m")
    r = _number(spec["radius_m"], "fence.radius_m", "radius_m")
    if not CIRCLE_MIN_RADIUS_M <= r <= CIRCLE_MAX_RADIUS_M:
        raise FenceError(
            f"radius_m must be between {CIRCLE_MIN_RADIUS_M:g} and "
            f"{CIRCLE_MAX_RADIUS_M:g} m, got {r:g}",
            "fence.radius_m",
        )
    if "center" in spec:
        lon, lat = _position(spec["center"], "fence.center")
    else:
        lon, lat = _position([store_lon, store_lat], "fence.center")
    always = _bool(spec.get("always_active", False), "fence.always_active")
    return CircleFence(lat, lon, r, always)


def _parse_polygon(spec: dict[str, Any], multi: bool) -> PolygonFence:
    _check_keys(spec, _POLYGON_KEYS, "polygon")
    always = _bool(spec.get("always_active", False), "fence.always_active")
    if "coordinates" not in spec:
        raise FenceError("coordinates are required", "fence.coordinates")
    coords = spec["coordinates"]
    base = "fence.coordinates"
    if not isinstance(coords, list) or not coords:
        raise FenceError("coordinates must be a non-empty array", base)
    if multi:
        polys_in = coords
        prefixes = [f"{base}[{i}]" for i in range(len(coords))]
    else:
        polys_in = [coords]
        prefixes = [base]

    # Shape and size first, so an oversized payload is refused before any per-vertex work.
    total = 0
    for poly, pre in zip(polys_in, prefixes, strict=True):
        if not isinstance(poly, list) or not poly:
            raise FenceError("a polygon must be a non-empty array of rings", pre)
        for k, ring in enumerate(poly):
            if not isinstance(ring, list):
                raise FenceError("a ring must be an array of positions", f"{pre}[{k}]")
            # Counted without the closing position, which repeats the first.
            total += max(len(ring) - 1, 0)
    if total > MAX_VERTICES:
        raise FenceError(f"too many vertices: {total} > {MAX_VERTICES}", base)

    parts = []
    for poly, pre in zip(polys_in, prefixes, strict=True):
        rings = []
        for k, ring in enumerate(poly):
            rf = f"{pre}[{k}]"
            pts = [_position(p, f"{rf}[{j}]") for j, p in enumerate(ring)]
            if len(pts) < 4:
                raise FenceError(f"a ring needs at least 4 positions, got {len(pts)}", rf)
            if pts[0] != pts[-1]:
                raise FenceError("ring is not closed: the last position must equal the first", rf)
            rings.append(pts)
        parts.append(rings)

    fence = PolygonFence(parts, always, multi)
    _validate_shape(fence, prefixes)
    return fence


def _explain(geom: Any, frame: LocalFrame) -> str:
    # GEOS reports where the problem is in frame metres; clients think in lon/lat.
    text = explain_validity(geom)
    m = _VALIDITY_RE.match(text)
    if not m:
        return text.lower()
    try:
        lat, lon = frame.to_latlon(float(m.group(2)), float(m.group(3)))
    except ValueError:
        return text.lower()
    return f"{m.group(1).lower()} near [{lon:.6f}, {lat:.6f}]"


def _validate_shape(fence: PolygonFence, prefixes: list[str]) -> None:
    frame = fence._frame
    geoms = fence._geom.geoms if isinstance(fence._geom, MultiPolygon) else [fence._geom]
    for poly, pre in zip(geoms, prefixes, strict=True):
        shell = Polygon(poly.exterior)
        if not shell.is_valid:
            raise FenceError(f"invalid ring: {_explain(shell, frame)}", f"{pre}[0]")
        for k, interior in enumerate(poly.interiors, start=1):
            hole = Polygon(interior)
            if not hole.is_valid:
                raise FenceError(f"invalid hole: {_explain(hole, frame)}", f"{pre}[{k}]")
            if not shell.contains(hole):
                raise FenceError("hole is not inside its shell", f"{pre}[{k}]")
        if not poly.is_valid:
            raise FenceError(f"invalid polygon: {_explain(poly, frame)}", pre)
    if len(geoms) > 1:
        tree = shapely.STRtree(geoms)
        left, right = tree.query(geoms, predicate="intersects")
        for i, j in sorted(zip(left.tolist(), right.tolist(), strict=True)):
            # Parts may touch at a point; interiors sharing area is an overlap.
            if i < j and geoms[i].relate_pattern(geoms[j], "T********"):
                raise FenceError(f"overlaps polygon {i}", prefixes[j])
        if not fence._geom.is_valid:
            reason = f"invalid multipolygon: {_explain(fence._geom, frame)}"
            raise FenceError(reason, "fence.coordinates")
    if not fence.area_m2 > 0.0:
        raise FenceError("fence has no area", "fence.coordinates")
    if fence.extent_m > MAX_EXTENT_M:
        raise FenceError(
            f"fence reaches {fence.extent_m:.0f} m from its centroid; the limit is "
            f"{MAX_EXTENT_M:g} m",
            "fence.coordinates",
        )
