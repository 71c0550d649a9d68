"""Procedural creature sprites for the AR catch game.

Pure computation with Pillow (no Flask, no Redis, no numpy). Every visual choice comes from a
SHA-256 stream of the species id, never from `random` or the clock, and the PNG is written with
fixed encoder settings, so the same arguments give byte-identical output in any process and the
API can cache or ETag sprites freely.

Geometry is written in unit coordinates (0..1 of the sprite's side) so a species looks the same
at every size. The creature is drawn at 4x and downsampled with LANCZOS for smooth edges; the
rarity glow is blurred at the output size, which is much cheaper than blurring the 4x canvas.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw, ImageFilter

__all__ = ["RARITIES", "SPRITE_SIZES", "sprite_png"]

RARITIES = ("common", "rare", "epic", "legendary")
SPRITE_SIZES = (128, 256, 512)

MIN_SIZE = 64
MAX_SIZE = 1024
_SUPERSAMPLE = 4
# Fixed encoder settings: part of the byte-stability promise.
_PNG_COMPRESS_LEVEL = 6

RGB = tuple[int, int, int]
RGBA = tuple[int, int, int, int]
Point = tuple[float, float]

_EYE: RGB = (52, 38, 62)
_WHITE: RGB = (255, 255, 255)
_BLUSH: RGB = (255, 128, 150)
_TONGUE: RGB = (240, 110, 130)

# glow colour, peak glow alpha, blur radius (fraction of the side), sparkle fill, sparkle edge
_AURAS: dict[str, tuple[RGB, int, float, RGB | None, RGB | None]] = {
    "rare": ((110, 175, 255), 170, 0.040, None, None),
    "epic": ((170, 90, 255), 200, 0.045, (246, 232, 255), (150, 70, 230)),
    "legendary": ((255, 196, 40), 220, 0.050, (255, 232, 110), (214, 140, 10)),
}
_EDGE_FADE = 0.06  # fraction of the side over which the glow fades out at the border
_GOLD: RGB = (255, 204, 48)
_GOLD_EDGE: RGB = (178, 112, 10)
_GEM: RGB = (230, 40, 80)


# --- deterministic choices -----------------------------------------------------------------


class _Stream:
    """A deterministic stream of uniform numbers derived from SHA-256 of a key."""

    def __init__(self, species_id: str, purpose: str) -> None:
        self._seed = hashlib.sha256(f"footfall-sprite\0{purpose}\0{species_id}".encode()).digest()
        self._counter = 0
        self._buffer = b""

    def _take(self, n: int) -> bytes:
        while len(self._buffer) < n:
            block = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._buffer += block
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def unit(self) -> float:
        """Return a float in [0, 1)."""
        return int.from_bytes(self._take(6), "big") / float(1 << 48)

    def between(self, low: float, high: float) -> float:
        return low + (high - low) * self.unit()

    def pick(self, options: Sequence[str]) -> str:
        return options[int(self.unit() * len(options))]

    def chance(self, p: float) -> bool:
        return self.unit() < p


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (round(r * 255), round(g * 255), round(b * 255))


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


# --- shapes in unit coordinates ------------------------------------------------------------


@dataclass(frozen=True)
class _Ellipse:
    cx: float
    cy: float
    rx: float
    ry: float

    def paint(self, draw: ImageDraw.ImageDraw, s: int, fill: RGB | int, grow: float = 0.0) -> None:
        rx, ry = self.rx + grow, self.ry + grow
        draw.ellipse(
            ((self.cx - rx) * s, (self.cy - ry) * s, (self.cx + rx) * s, (self.cy + ry) * s),
            fill=fill,
        )

    def point_at(self, angle: float, side: int = 1) -> Point:
        """Return the rim point `angle` radians from the top, on the left (-1) or right (1)."""
        return (self.cx + side * self.rx * math.sin(angle), self.cy - self.ry * math.cos(angle))

    def half_width_at(self, y: float) -> float:
        t = (y - self.cy) / self.ry
        return self.rx * math.sqrt(max(0.0, 1.0 - t * t))

    def contains(self, x: float, y: float, margin: float = 1.0) -> bool:
        return ((x - self.cx) / self.rx) ** 2 + ((y - self.cy) / self.ry) ** 2 < margin


@dataclass(frozen=True)
class _Polygon:
    """A polygon whose corners are rounded by `radius` (it grows by `radius` as well)."""

    points: tuple[Point, ...]
    radius: float

    def paint(self, draw: ImageDraw.ImageDraw, s: int, fill: RGB | int, grow: float = 0.0) -> None:
        pts = [(x * s, y * s) for x, y in self.points]
        draw.polygon(pts, fill=fill)
        r = self.radius + grow
        if r > 0:
            draw.line([*pts, pts[0]], fill=fill, width=max(1, round(2 * r * s)), joint="curve")
            for x, y in pts:
                draw.ellipse((x - r * s, y - r * s, x + r * s, y + r * s), fill=fill)


@dataclass(frozen=True)
class _Stroke:
    """A thick polyline with round ends."""

    points: tuple[Point, ...]
    width: float

    def paint(self, draw: ImageDraw.ImageDraw, s: int, fill: RGB | int, grow: float = 0.0) -> None:
        w = self.width + 2 * grow
        pts = [(x * s, y * s) for x, y in self.points]
        draw.line(pts, fill=fill, width=max(1, round(w * s)), joint="curve")
        r = w / 2 * s
        for x, y in (pts[0], pts[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


_Shape = _Ellipse | _Polygon | _Stroke


def _bezier(p0: Point, p1: Point, p2: Point, steps: int = 16) -> tuple[Point, ...]:
    out = []
    for i in range(steps + 1):
        t = i / steps
        u = 1 - t
        out.append(
            (
                u * u * p0[0] + 2 * u * t * p1[0] + t * t * p2[0],
                u * u * p0[1] + 2 * u * t * p1[1] + t * t * p2[1],
            )
        )
    return tuple(out)


def _star(cx: float, cy: float, r: float) -> tuple[Point, ...]:
    """Return a four-point sparkle star."""
    pts = []
    for i in range(8):
        a = i * math.pi / 4
        rr = r if i % 2 == 0 else r * 0.28
        pts.append((cx + rr * math.sin(a), cy - rr * math.cos(a)))
    return tuple(pts)


# --- the creature --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layer:
    shape: _Shape
    fill: RGB


@dataclass(frozen=True)
class _Creature:
    """Everything needed to paint one species, in unit coordinates."""

    outline: RGB
    outline_width: float
    back: tuple[_Layer, ...]  # behind the body: tail
    body: tuple[_Ellipse, ...]
    body_fill: RGB
    front: tuple[_Layer, ...]  # feet, ears
    pattern: tuple[_Shape, ...]  # clipped to the body
    pattern_fill: RGB
    face: tuple[_Layer, ...]


def _design(species_id: str) -> _Creature:
    """Derive a creature's whole design from its species id."""
    rng = _Stream(species_id, "creature")

    hue = rng.unit()
    main = _hsv(hue, rng.between(0.32, 0.58), rng.between(0.88, 0.98))
    accent = _hsv(hue + 0.5 + rng.between(-0.06, 0.06), rng.between(0.45, 0.7), 0.93)
    outline = _hsv(hue, 0.55, 0.33)
    shade = _mix(main, outline, 0.22)

    shape = rng.pick(("round", "pear", "tall"))
    jx = rng.between(-0.015, 0.015)
    jy = rng.between(-0.01, 0.01)
    cx = 0.5
    if shape == "round":
        body = (_Ellipse(cx, 0.59 + jy, 0.27 + jx, 0.235),)
        head = body[0]
        face_y = head.cy - head.ry * 0.16
    elif shape == "pear":
        head = _Ellipse(cx, 0.505 + jy, 0.205 + jx, 0.175)
        body = (_Ellipse(cx, 0.66 + jy, 0.28 + jx, 0.185), head)
        face_y = head.cy + head.ry * 0.05
    else:
        body = (_Ellipse(cx, 0.565 + jy, 0.195 + jx, 0.27),)
        head = body[0]
        face_y = head.cy - head.ry * 0.32
    bottom = max(e.cy + e.ry for e in body)
    head_top = head.cy - head.ry
    widest = max(body, key=lambda e: e.rx)

    back: list[_Layer] = []
    front: list[_Layer] = []

    # Tail first: it sits behind the body.
    if rng.chance(0.6):
        side = 1 if rng.chance(0.5) else -1
        base_y = widest.cy + widest.ry * 0.45
        start = (cx + side * widest.half_width_at(base_y) * 0.8, base_y)
        tip_y = widest.cy - widest.ry * rng.between(0.1, 0.6)
        # Capped so the tail and its glow stay well inside the sprite.
        edge = cx + side * min(0.33, widest.rx + rng.between(0.06, 0.1))
        ctrl = (edge + side * 0.025, base_y + 0.02)
        width = rng.between(0.045, 0.065)
        tail = _bezier(start, ctrl, (edge, tip_y))
        back.append(_Layer(_Stroke(tail, width), main))
        tip = tail[-1]
        back.append(_Layer(_Ellipse(tip[0], tip[1], width * 0.62, width * 0.62), accent))

    # Feet peek out under the body.
    foot_dx = widest.rx * rng.between(0.38, 0.55)
    for side in (-1, 1):
        front.append(_Layer(_Ellipse(cx + side * foot_dx, bottom - 0.012, 0.068, 0.042), shade))

    ears = rng.pick(("cat", "round", "antennae", "none"))
    if ears == "cat":
        lo, hi = rng.between(0.12, 0.25), rng.between(0.55, 0.7)
        length = rng.between(0.10, 0.14)
        for side in (-1, 1):
            a = head.point_at(lo, side)
            b = head.point_at(hi, side)
            mid = head.point_at((lo + hi) / 2, side)
            nx, ny = mid[0] - head.cx, mid[1] - head.cy
            n = math.hypot(nx, ny)
            tip = (mid[0] + nx / n * length, mid[1] + ny / n * length)
            inward = [
                (p[0] + (head.cx - p[0]) * 0.12, p[1] + (head.cy - p[1]) * 0.12) for p in (a, b)
            ]
            front.append(_Layer(_Polygon((inward[0], tip, inward[1]), 0.012), main))
            inner = tuple(_lerp_point(p, _centroid((a, tip, b)), 0.45) for p in (a, tip, b))
            front.append(_Layer(_Polygon(inner, 0.008), accent))
    elif ears == "round":
        r = rng.between(0.06, 0.085)
        angle = rng.between(0.55, 0.8)
        for side in (-1, 1):
            x, y = head.point_at(angle, side)
            front.append(_Layer(_Ellipse(x, y, r, r), main))
            front.append(_Layer(_Ellipse(x, y, r * 0.55, r * 0.55), accent))
    elif ears == "antennae":
        length = rng.between(0.10, 0.14)
        lean = rng.between(0.03, 0.07)
        ball = rng.between(0.026, 0.036)
        for side in (-1, 1):
            base = head.point_at(0.3, side)
            base = (base[0], base[1] + 0.02)
            tip = (base[0] + side * lean, base[1] - length)
            ctrl = (base[0] - side * 0.01, base[1] - length * 0.6)
            front.append(_Layer(_Stroke(_bezier(base, ctrl, tip, 10), 0.016), shade))
            front.append(_Layer(_Ellipse(tip[0], tip[1], ball, ball), accent))

    # Face.
    eye_r = rng.between(0.028, 0.045)
    eye_dx = head.rx * rng.between(0.32, 0.46)
    eye_ry = eye_r * rng.between(1.1, 1.35)
    face: list[_Layer] = []
    for side in (-1, 1):
        ex = cx + side * eye_dx
        face.append(_Layer(_Ellipse(ex, face_y, eye_r, eye_ry), _EYE))
        face.append(
            _Layer(
                _Ellipse(ex - eye_r * 0.3, face_y - eye_ry * 0.35, eye_r * 0.38, eye_r * 0.38),
                _WHITE,
            )
        )
        face.append(
            _Layer(
                _Ellipse(ex + eye_r * 0.35, face_y + eye_ry * 0.35, eye_r * 0.17, eye_r * 0.17),
                _WHITE,
            )
        )
        blush_x = ex + side * eye_r * 0.9
        face.append(
            _Layer(
                _Ellipse(blush_x, face_y + eye_ry + 0.028, eye_r * 0.95, eye_r * 0.5),
                _mix(main, _BLUSH, 0.55),
            )
        )
    mouth_y = face_y + eye_ry + 0.02
    mouth = rng.pick(("cat", "smile", "open"))
    mw = 0.02 + eye_r * 0.25
    line = 0.009
    if mouth == "cat":
        for side in (-1, 1):
            arc = _bezier(
                (cx, mouth_y),
                (cx + side * mw * 0.5, mouth_y + mw * 1.1),
                (cx + side * mw, mouth_y),
                8,
            )
            face.append(_Layer(_Stroke(arc, line), _EYE))
    elif mouth == "smile":
        arc = _bezier((cx - mw, mouth_y), (cx, mouth_y + mw * 1.2), (cx + mw, mouth_y), 10)
        face.append(_Layer(_Stroke(arc, line), _EYE))
    else:
        face.append(_Layer(_Ellipse(cx, mouth_y + mw * 0.35, mw * 0.7, mw * 0.6), _EYE))
        face.append(_Layer(_Ellipse(cx, mouth_y + mw * 0.6, mw * 0.42, mw * 0.3), _TONGUE))
    mouth_bottom = mouth_y + mw * 1.0

    # Pattern, clipped to the body later.
    pattern_kind = rng.pick(("spots", "stripes", "belly"))
    pattern: list[_Shape] = []
    pattern_fill = accent
    face_box = (
        cx - eye_dx - eye_r - 0.035,
        face_y - eye_ry - 0.035,
        cx + eye_dx + eye_r + 0.035,
        mouth_bottom + 0.03,
    )
    if pattern_kind == "spots":
        wanted = 3 + int(rng.unit() * 4)
        lo_x, hi_x = cx - widest.rx, cx + widest.rx
        lo_y = min(e.cy - e.ry for e in body)
        for _ in range(60):
            if len(pattern) >= wanted:
                break
            r = rng.between(0.022, 0.045)
            x, y = rng.between(lo_x, hi_x), rng.between(lo_y, bottom)
            if not any(e.contains(x, y, 0.8) for e in body):
                continue
            if face_box[0] - r < x < face_box[2] + r and face_box[1] - r < y < face_box[3] + r:
                continue
            if any(
                isinstance(p, _Ellipse) and math.hypot(p.cx - x, p.cy - y) < p.rx + r + 0.02
                for p in pattern
            ):
                continue
            pattern.append(_Ellipse(x, y, r, r))
    elif pattern_kind == "stripes":
        pattern_fill = _mix(accent, outline, 0.15)
        width = rng.between(0.018, 0.026)
        room = face_box[1] - head_top - 0.01
        if room > 0.035:
            for dx in (-0.045, 0.0, 0.045):
                length = min(0.075, room) * (0.75 if dx else 1.0)
                pattern.append(
                    _Stroke(((cx + dx, head_top - 0.02), (cx + dx * 0.8, head_top + length)), width)
                )
        count = 2 + int(rng.unit() * 2)
        y0, y1 = max(face_box[3], widest.cy - widest.ry * 0.4), bottom - 0.07
        for i in range(count):
            y = y0 + (y1 - y0) * (i + 0.5) / count
            half = max(e.half_width_at(y) for e in body if abs(y - e.cy) < e.ry)
            for side in (-1, 1):
                outer = (cx + side * (half + 0.03), y - 0.01)
                inner = (cx + side * (half - 0.075), y + 0.008)
                pattern.append(_Stroke((outer, inner), width))
    else:
        pattern_fill = _mix(accent, _WHITE, 0.55)
        top = mouth_bottom + 0.03
        pattern.append(
            _Ellipse(cx, (top + bottom + 0.03) / 2, widest.rx * 0.62, (bottom + 0.03 - top) / 2)
        )

    return _Creature(
        outline=outline,
        outline_width=0.013,
        back=tuple(back),
        body=body,
        body_fill=main,
        front=tuple(front),
        pattern=tuple(pattern),
        pattern_fill=pattern_fill,
        face=tuple(face),
    )


def _centroid(points: Sequence[Point]) -> Point:
    return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))


def _lerp_point(a: Point, b: Point, t: float) -> Point:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def _paint_creature(creature: _Creature, canvas: Image.Image) -> None:
    """Paint the creature onto the (supersampled, transparent) canvas."""
    s = canvas.width
    draw = ImageDraw.Draw(canvas)
    silhouette = [
        *(layer.shape for layer in creature.back),
        *creature.body,
        *(layer.shape for layer in creature.front),
    ]
    # One outline pass under everything gives a sticker-style outer edge without inner seams.
    for shape in silhouette:
        shape.paint(draw, s, creature.outline, grow=creature.outline_width)
    for layer in creature.back:
        layer.shape.paint(draw, s, layer.fill)
    for shape in creature.body:
        shape.paint(draw, s, creature.body_fill)

    if creature.pattern:
        body_mask = Image.new("L", canvas.size, 0)
        mask_draw = ImageDraw.Draw(body_mask)
        for shape in creature.body:
            shape.paint(mask_draw, s, 255)
        pattern_mask = Image.new("L", canvas.size, 0)
        pattern_draw = ImageDraw.Draw(pattern_mask)
        for shape in creature.pattern:
            shape.paint(pattern_draw, s, 255)
        box = body_mask.getbbox()
        if box is not None:
            clip = Image.new("L", canvas.size, 0)
            clip.paste(pattern_mask.crop(box), box[:2], body_mask.crop(box))
            canvas.paste(creature.pattern_fill, (0, 0), clip)
            draw = ImageDraw.Draw(canvas)

    for layer in (*creature.front, *creature.face):
        layer.shape.paint(draw, s, layer.fill)


def _paint_crown(creature: _Creature, canvas: Image.Image) -> None:
    """Paint a small golden crown on top of the head."""
    s = canvas.width
    draw = ImageDraw.Draw(canvas)
    head = min(creature.body, key=lambda e: e.cy - e.ry)
    x, top = head.cx, head.cy - head.ry
    base = top + 0.018
    crown = _Polygon(
        (
            (x - 0.068, base),
            (x - 0.078, base - 0.072),
            (x - 0.036, base - 0.038),
            (x, base - 0.092),
            (x + 0.036, base - 0.038),
            (x + 0.078, base - 0.072),
            (x + 0.068, base),
        ),
        0.006,
    )
    tips = [(x - 0.078, base - 0.072), (x, base - 0.092), (x + 0.078, base - 0.072)]
    crown.paint(draw, s, _GOLD_EDGE, grow=0.011)
    for tx, ty in tips:
        _Ellipse(tx, ty, 0.014, 0.014).paint(draw, s, _GOLD_EDGE, grow=0.011)
    crown.paint(draw, s, _GOLD)
    for tx, ty in tips:
        _Ellipse(tx, ty, 0.014, 0.014).paint(draw, s, _GOLD)
    _Ellipse(x, base - 0.022, 0.016, 0.016).paint(draw, s, _GEM)
    _Ellipse(x - 0.005, base - 0.027, 0.005, 0.005).paint(draw, s, _WHITE)


_SPARKLE_SLOTS: tuple[Point, ...] = (
    (0.17, 0.22),
    (0.83, 0.21),
    (0.14, 0.47),
    (0.86, 0.45),
    (0.16, 0.78),
    (0.85, 0.79),
    (0.31, 0.13),
    (0.69, 0.12),
)


def _paint_sparkles(
    species_id: str, creature: _Creature, canvas: Image.Image, fill: RGB, edge: RGB
) -> None:
    """Paint a few four-point sparkles around the creature, keeping clear of its tail."""
    rng = _Stream(species_id, "sparkles")
    s = canvas.width
    draw = ImageDraw.Draw(canvas)
    tail = [
        p for layer in creature.back if isinstance(layer.shape, _Stroke) for p in layer.shape.points
    ]
    slots = [
        slot
        for slot in _SPARKLE_SLOTS
        if all(math.hypot(slot[0] - x, slot[1] - y) > 0.12 for x, y in tail)
    ]
    for _ in range(min(5, len(slots))):
        slot = slots.pop(int(rng.unit() * len(slots)))
        r = rng.between(0.026, 0.042)
        x = slot[0] + rng.between(-0.015, 0.015)
        y = slot[1] + rng.between(-0.015, 0.015)
        _Polygon(_star(x, y, r), 0.002).paint(draw, s, edge, grow=0.006)
        _Polygon(_star(x, y, r), 0.002).paint(draw, s, fill)
        _Ellipse(x, y, r * 0.16, r * 0.16).paint(draw, s, _WHITE)


@functools.lru_cache(maxsize=8)
def _edge_fade(size: int) -> Image.Image:
    """Return a mask that is 255 inside and ramps to exactly 0 at the sprite's border."""
    band = _EDGE_FADE * size
    ramp = Image.new("L", (size, 1))
    ramp.putdata([round(255 * min(1.0, min(i, size - 1 - i) / band)) for i in range(size)])
    across = ramp.resize((size, size), Image.Resampling.NEAREST)
    return ImageChops.multiply(across, across.transpose(Image.Transpose.TRANSPOSE))


def _glow(alpha: Image.Image, colour: RGB, peak: int, radius: float) -> Image.Image:
    """Return a soft halo of `colour` around the opaque area of an output-sized alpha mask."""
    size = alpha.width
    blurred = alpha.filter(ImageFilter.GaussianBlur(radius * size))
    # Boost the blurred silhouette so the halo is bright at the edge and fades out smoothly;
    # the faint far tail is cut to zero, and the halo fades out before the border, so the
    # sprite's surroundings stay truly transparent in AR.
    lut = [0 if v < 6 else min(peak, round(v * 2.4 * peak / 255)) for v in range(256)]
    halo = Image.new("RGBA", alpha.size, (*colour, 0))
    halo.putalpha(ImageChops.multiply(blurred.point(lut), _edge_fade(size)))
    return halo


def sprite_png(species_id: str, name: str, rarity: str, *, size: int = 256) -> bytes:
    """Draw the species' creature with its rarity aura and return it as a transparent PNG."""
    if rarity not in RARITIES:
        raise ValueError(f"rarity must be one of {', '.join(RARITIES)}")
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be an integer from {MIN_SIZE} to {MAX_SIZE}")
    del name  # only used for alt text by the caller; the sprite carries no text

    creature = _design(species_id)
    canvas = Image.new("RGBA", (size * _SUPERSAMPLE,) * 2, (0, 0, 0, 0))
    _paint_creature(creature, canvas)
    if rarity == "legendary":
        _paint_crown(creature, canvas)
    halo = None
    aura = _AURAS.get(rarity)
    if aura is not None:
        glow_colour, peak, radius, sparkle, sparkle_edge = aura
        # The halo follows the creature (and crown) only, not the sparkles drawn next.
        halo = _glow(canvas.getchannel("A").reduce(_SUPERSAMPLE), glow_colour, peak, radius)
        if sparkle is not None and sparkle_edge is not None:
            _paint_sparkles(species_id, creature, canvas, sparkle, sparkle_edge)
    sprite = canvas.resize((size, size), Image.Resampling.LANCZOS)
    if halo is not None:
        sprite = Image.alpha_composite(halo, sprite)

    out = io.BytesIO()
    sprite.save(out, format="PNG", optimize=False, compress_level=_PNG_COMPRESS_LEVEL)
    return out.getvalue()
