// The AR catch view's geometry, pure functions (no DOM), tested in the browser with known
// coordinates (tests/test_browser_app.py). Angles are degrees clockwise from true north.

const EARTH_RADIUS_M = 6_371_008.8;
const rad = (deg) => (deg * Math.PI) / 180;
const deg = (r) => (r * 180) / Math.PI;

/** Put an angle into [0, 360). */
export function normalize(angle) {
  return ((angle % 360) + 360) % 360;
}

/** The initial great-circle bearing from (lat1, lon1) to (lat2, lon2). */
export function bearingDeg(lat1, lon1, lat2, lon2) {
  const f1 = rad(lat1);
  const f2 = rad(lat2);
  const dl = rad(lon2 - lon1);
  const y = Math.sin(dl) * Math.cos(f2);
  const x = Math.cos(f1) * Math.sin(f2) - Math.sin(f1) * Math.cos(f2) * Math.cos(dl);
  return normalize(deg(Math.atan2(y, x)));
}

/** The haversine distance in metres. */
export function distanceM(lat1, lon1, lat2, lon2) {
  const a =
    Math.sin(rad(lat2 - lat1) / 2) ** 2 +
    Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(rad(lon2 - lon1) / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** The compass heading of a DeviceOrientationEvent (where the top of the phone points), or
 *  null when the event does not give one. iOS Safari gives `webkitCompassHeading` (degrees
 *  clockwise from north). Elsewhere an absolute event (`deviceorientationabsolute`, or
 *  `absolute: true`) gives `alpha`, the rotation about the screen's normal counter-clockwise
 *  from north, so the heading is 360 − alpha. A relative event (alpha from an arbitrary start)
 *  gives no heading. */
export function headingOf(event) {
  if (typeof event.webkitCompassHeading === "number" && !Number.isNaN(event.webkitCompassHeading)) {
    return normalize(event.webkitCompassHeading);
  }
  const absolute = event.absolute === true || event.type === "deviceorientationabsolute";
  if (absolute && typeof event.alpha === "number") return normalize(360 - event.alpha);
  return null;
}

/** Where a creature at `bearing` is relative to the way the phone faces: (−180, 180],
 *  negative to the left. */
export function relativeBearing(bearing, heading) {
  const r = normalize(bearing - heading);
  return r > 180 ? r - 360 : r;
}

/** The horizontal position (px from the left) of a direction `relative` degrees off the
 *  camera's axis on a screen `width` px wide showing `fovDeg` degrees (a pinhole camera:
 *  x = w/2 + tan(relative) · (w/2) / tan(fov/2)); null when it is outside the view. */
export function screenX(relative, width, fovDeg = 60) {
  if (Math.abs(relative) > fovDeg / 2) return null;
  return width / 2 + (Math.tan(rad(relative)) * (width / 2)) / Math.tan(rad(fovDeg / 2));
}

/** A sprite's size in px for a creature `distance` m away: its real size `anchorM` seen by the
 *  same camera (focal length (w/2) / tan(fov/2)), times the server's `scale`, kept within
 *  [24, 240] px so that far creatures stay tappable. */
export function spriteSize(distance, anchorM, scale, width, fovDeg = 60) {
  const focal = width / 2 / Math.tan(rad(fovDeg / 2));
  const px = (focal * anchorM * scale) / Math.max(distance, 1);
  return Math.round(Math.min(240, Math.max(24, px)));
}

/** A creature on the radar: a square `size` px across, the shopper at its centre, north up,
 *  `rangeM` at its edge; a creature further away sits on the edge. */
export function radarPoint(bearing, distance, rangeM, size) {
  const half = size / 2;
  const r = (Math.min(distance, rangeM) / rangeM) * half;
  return { x: half + r * Math.sin(rad(bearing)), y: half - r * Math.cos(rad(bearing)) };
}
