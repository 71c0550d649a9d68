"""Images for promotions: coupon QR codes, printable coupon cards and campaign heatmaps.

Pure computation with segno and Pillow (no Flask, no Redis, no numpy): every function takes
plain values and returns encoded image bytes, so a handler only sets the content type.

Fonts: card and map text is often Chinese (brand names such as "上海第一百货"), which Pillow's
built-in font cannot draw. We load Noto Sans SC from the `pylopdf-fonts-zh-cn` package (SIL OFL
1.1, ~17 MB wheel; a full Noto Sans CJK collection would be ~33 MB). If that package is missing
we fall back to `ImageFont.load_default(size=...)`, and characters the loaded font has no glyph
for are spelled out ("¥" -> "RMB"), stripped of accents, or else dropped, rather than drawn as
tofu boxes (see `_drawable`).
"""

from __future__ import annotations

import functools
import io
import math
import re
import unicodedata
from collections.abc import Sequence

import segno
from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageMath

try:
    from pylopdf_fonts_zh_cn import sans_path as _cjk_font_path
except ImportError:  # the font package is optional at run time: the default font still works
    _cjk_font_path = None

__all__ = [
    "CARD_HEIGHT",
    "CARD_WIDTH",
    "coupon_card_png",
    "heatmap_png",
    "qr_png",
    "qr_svg",
]

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]

# ISO/IEC 18004 asks for a 4-module quiet zone; many phone scanners fail with less.
QUIET_ZONE = 4
QR_ERROR = "m"

CARD_WIDTH = 600
CARD_HEIGHT = 900

_PROBE_SIZE = 32
# A noncharacter: no font maps it, so it renders as the font's .notdef ("tofu") glyph.
_NOT_A_GLYPH = "\uffff"
_WS = re.compile(r"\s+")
_SPELLED = {
    "¥": "RMB ",
    "￥": "RMB ",
    "€": "EUR ",
    "£": "GBP ",
    "–": "-",
    "—": "-",
    "“": '"',
    "”": '"',
}


# --- QR codes -----------------------------------------------------------------------------


def _make_qr(data: str) -> segno.QRCode:
    """Build the QR symbol for `data` at exactly error level M."""
    if not data:
        raise ValueError("QR data must not be empty")
    # boost_error=False keeps level M as asked; micro=False because phone scanners often
    # don't read Micro QR.
    return segno.make(data, error=QR_ERROR, micro=False, boost_error=False)


def _check_scale_border(scale: int, border: int) -> None:
    if scale < 1:
        raise ValueError("scale must be at least 1")
    if border < 0:
        raise ValueError("border must not be negative")


def qr_png(data: str, *, scale: int = 8, border: int = 4) -> bytes:
    """Return a black-on-white QR code PNG of `data`."""
    _check_scale_border(scale, border)
    out = io.BytesIO()
    _make_qr(data).save(out, kind="png", scale=scale, border=border, dark="black", light="white")
    return out.getvalue()


def qr_svg(data: str, *, scale: int = 8, border: int = 4) -> bytes:
    """Return a black-on-white QR code SVG of `data` as UTF-8 bytes."""
    _check_scale_border(scale, border)
    out = io.BytesIO()
    _make_qr(data).save(
        out,
        kind="svg",
        scale=scale,
        border=border,
        dark="black",
        light="white",
        xmldecl=False,
        encoding="utf-8",
    )
    return out.getvalue()


def _qr_image(data: str, max_side: int) -> Image.Image:
    """Render `data` as a QR with a quiet zone, using the largest whole module fitting max_side."""
    qr = _make_qr(data)
    modules = qr.symbol_size(scale=1, border=QUIET_ZONE)[0]
    # Whole pixels per module: fractional modules blur edges and hurt decoding.
    module_px = max_side // modules
    if module_px < 1:
        raise ValueError("data is too long for a QR code of this size")
    rows = qr.matrix_iter(scale=1, border=QUIET_ZONE)
    pixels = bytes(0 if dark else 255 for row in rows for dark in row)
    small = Image.frombytes("L", (modules, modules), pixels)
    side = modules * module_px
    return small.resize((side, side), Image.Resampling.NEAREST).convert("RGB")


# --- text ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _font(size: int) -> Font:
    """Return the CJK-capable font at `size` px, or Pillow's default one."""
    if _cjk_font_path is not None:
        try:
            return ImageFont.truetype(str(_cjk_font_path()), size)
        except OSError:  # a broken install should cost glyphs, not the whole image
            pass
    return ImageFont.load_default(size=size)


def _glyph_mask(font: Font, ch: str) -> bytes:
    canvas = Image.new("L", (2 * _PROBE_SIZE, 2 * _PROBE_SIZE), 0)
    ImageDraw.Draw(canvas).text((4, 4), ch, font=font, fill=255)
    return canvas.tobytes()


@functools.lru_cache(maxsize=8192)
def _has_glyph(ch: str) -> bool:
    """Tell whether the loaded font can draw `ch` (rather than a .notdef box)."""
    font = _font(_PROBE_SIZE)
    try:
        return _glyph_mask(font, ch) != _glyph_mask(font, _NOT_A_GLYPH)
    except UnicodeError:  # the bitmap fallback font only encodes Latin-1
        return False


def _drawable(ch: str) -> str:
    """Return `ch`, or a stand-in the font can draw, or "" when there is none."""
    if ch == " " or _has_glyph(ch):
        return ch
    # A price must not silently lose its currency ("¥20 off" -> "20 off"), so spell it out.
    spelled = _SPELLED.get(ch)
    if spelled is not None and all(_has_glyph(c) for c in spelled if c != " "):
        return spelled
    # Compatibility forms and accents: "１" -> "1", "é" -> "e".
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and base != ch and all(_has_glyph(c) for c in base):
        return base
    return ""


def _clean(text: str) -> str:
    """Collapse whitespace to single spaces and drop characters the font cannot draw."""
    text = _WS.sub(" ", text).strip()
    return _WS.sub(" ", "".join(_drawable(c) for c in text)).strip()


def _ellipsis() -> str:
    return "…" if _has_glyph("…") else "..."


def _longest_fit(text: str, font: Font, max_width: float, suffix: str = "") -> int:
    """Return the length of the longest prefix of `text` that fits with `suffix` appended."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if font.getlength(text[:mid].rstrip() + suffix) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _ellipsise(text: str, font: Font, max_width: float) -> str:
    """Shorten `text` with an ellipsis so that it fits `max_width`."""
    if font.getlength(text) <= max_width:
        return text
    dots = _ellipsis()
    n = _longest_fit(text, font, max_width, dots)
    return text[:n].rstrip() + dots if n else ""


def _wrap(text: str, font: Font, max_width: float, max_lines: int) -> tuple[list[str], bool]:
    """Wrap `text` into at most `max_lines` lines; tell whether it had to be ellipsised."""
    lines: list[str] = []
    rest = text
    while rest and len(lines) < max_lines:
        if font.getlength(rest) <= max_width:
            lines.append(rest)
            rest = ""
            break
        n = max(1, _longest_fit(rest, font, max_width))
        # Prefer a break at a space; text without spaces (Chinese) breaks between characters.
        cut = rest.rfind(" ", 0, n + 1)
        if cut > 0:
            n = cut
        lines.append(rest[:n].rstrip())
        rest = rest[n:].lstrip()
    if rest:
        lines[-1] = _ellipsise(f"{lines[-1]} {rest}", font, max_width)
    return lines, bool(rest)


def _fit_block(
    text: str, sizes: Sequence[int], max_width: float, max_lines: int
) -> tuple[Font, list[str]]:
    """Pick the largest size at which `text` wraps without ellipsis, else the smallest size."""
    for size in sizes:
        font = _font(size)
        lines, cut = _wrap(text, font, max_width, max_lines)
        if not cut:
            return font, lines
    return font, lines


def _draw_centred_lines(
    draw: ImageDraw.ImageDraw,
    lines: Sequence[str],
    font: Font,
    *,
    cx: float,
    top: float,
    bottom: float,
    line_height: float,
    fill: RGB,
    bold: bool = False,
) -> None:
    """Draw `lines` centred on `cx` and vertically centred between `top` and `bottom`."""
    y = top + (bottom - top - line_height * len(lines)) / 2
    for line in lines:
        x = cx - font.getlength(line) / 2
        # Stroke in the fill colour gives a bold look from the single regular weight we ship.
        stroke = 1 if bold else 0
        draw.text((x, y), line, font=font, fill=fill, stroke_width=stroke, stroke_fill=fill)
        y += line_height


# --- coupon card --------------------------------------------------------------------------

_CARD_BG: RGB = (255, 255, 255)
_CARD_HEADER: RGB = (200, 32, 52)
_CARD_INK: RGB = (28, 28, 30)
_CARD_MUTED: RGB = (110, 110, 115)
_CARD_PAPER: RGB = (236, 236, 238)
_CARD_MARGIN = 30
_QR_TOP = 336
_QR_BOX = 360
_STATUS_COLOURS: dict[str, RGB] = {
    "redeemed": (20, 120, 70),
    "expired": (95, 95, 100),
    "voided": (170, 25, 40),
    "specimen": (30, 80, 160),
}
_CODE_DIGITS = "0123456789"


def _draw_monospaced(
    draw: ImageDraw.ImageDraw, text: str, *, cx: float, cy: float, max_width: float
) -> None:
    """Draw `text` in fixed-width cells so a short code reads like a typewriter font."""
    for size in (46, 40, 34, 28, 22):
        font = _font(size)
        # One cell width for every character, as in a monospaced face.
        cell = max(font.getlength(c) for c in _CODE_DIGITS + text) + size * 0.08
        if cell * len(text) <= max_width:
            break
    else:
        keep = max(0, int(max_width // cell) - 1)
        text = text[:keep] + _ellipsis()
    x = cx - cell * len(text) / 2
    for ch in text:
        draw.text((x + cell / 2, cy), ch, font=font, fill=_CARD_INK, anchor="mm")
        x += cell


def _status_overlay(card: Image.Image, status: str, label: str | None = None) -> Image.Image:
    """Fade `card` and stamp a diagonal banner with `label` (else `status`) across it."""
    grey = card.convert("L").convert("RGB")
    # Fading towards grey makes a used card look dead at a glance, before reading the banner.
    faded = Image.blend(card, Image.blend(grey, Image.new("RGB", card.size, _CARD_BG), 0.3), 0.7)
    label = _clean((label or status).upper()) or "NOT VALID"
    colour = _STATUS_COLOURS.get(status.strip().lower(), (60, 60, 65))
    # Draw on a square large enough for the rotated band to cross the whole card, then crop.
    side = math.ceil(math.hypot(*card.size))
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    band = 120
    draw.rectangle((0, (side - band) // 2, side, (side + band) // 2), fill=(*colour, 215))
    font, lines = _fit_block(label, (84, 72, 60, 48, 36), max_width=480, max_lines=1)
    draw.text((side / 2, side / 2), lines[0], font=font, fill=(255, 255, 255, 255), anchor="mm")
    layer = layer.rotate(32, resample=Image.Resampling.BICUBIC)
    left, top = (side - card.width) // 2, (side - card.height) // 2
    layer = layer.crop((left, top, left + card.width, top + card.height))
    return Image.alpha_composite(faded.convert("RGBA"), layer).convert("RGB")


def coupon_card_png(
    *,
    token: str,
    title: str,
    brand: str,
    terms: str,
    expires_label: str,
    short_code: str,
    status: str,
    status_label: str | None = None,
) -> bytes:
    """Return a 600x900 coupon card PNG with the offer, its QR code and its short code.

    A coupon that is not "issued" (redeemed, expired, voided, or a "specimen" preview) is
    faded under a banner reading `status_label` (the status in the reader's language), else
    the status itself.
    """
    card = Image.new("RGB", (CARD_WIDTH, CARD_HEIGHT), _CARD_BG)
    draw = ImageDraw.Draw(card)
    cx = CARD_WIDTH / 2
    text_width = CARD_WIDTH - 2 * _CARD_MARGIN

    draw.rectangle((0, 0, CARD_WIDTH, 110), fill=_CARD_HEADER)
    font, lines = _fit_block(_clean(brand), (36, 30, 26), text_width, max_lines=1)
    _draw_centred_lines(
        draw, lines, font, cx=cx, top=0, bottom=110, line_height=font.size * 1.3, fill=_CARD_BG
    )

    font, lines = _fit_block(_clean(title), (58, 50, 42, 36), text_width, max_lines=2)
    _draw_centred_lines(
        draw,
        lines,
        font,
        cx=cx,
        top=122,
        bottom=262,
        line_height=font.size * 1.18,
        fill=_CARD_INK,
        bold=True,
    )

    font, lines = _fit_block(_clean(terms), (24, 21, 18), text_width, max_lines=2)
    _draw_centred_lines(
        draw, lines, font, cx=cx, top=264, bottom=330, line_height=font.size * 1.3, fill=_CARD_MUTED
    )

    qr = _qr_image(token, _QR_BOX)
    card.paste(qr, ((CARD_WIDTH - qr.width) // 2, _QR_TOP + (_QR_BOX - qr.height) // 2))

    code = _clean(short_code.upper())
    draw.rounded_rectangle((90, 706, CARD_WIDTH - 90, 772), radius=12, fill=_CARD_PAPER)
    _draw_monospaced(draw, code, cx=cx, cy=739, max_width=CARD_WIDTH - 2 * 100)

    # A perforation with notches marks the tear-off stub, as on a paper coupon.
    perf_y = 800
    for x in range(_CARD_MARGIN, CARD_WIDTH - _CARD_MARGIN, 16):
        draw.line((x, perf_y, x + 8, perf_y), fill=(200, 200, 205), width=2)
    for x in (0, CARD_WIDTH):
        draw.ellipse((x - 14, perf_y - 14, x + 14, perf_y + 14), fill=_CARD_PAPER)

    font, lines = _fit_block(_clean(expires_label), (26, 22, 18), text_width, max_lines=1)
    _draw_centred_lines(
        draw,
        lines,
        font,
        cx=cx,
        top=perf_y,
        bottom=CARD_HEIGHT,
        line_height=font.size * 1.3,
        fill=_CARD_INK,
    )

    if status.strip().lower() != "issued":
        card = _status_overlay(card, status, status_label)
    out = io.BytesIO()
    card.save(out, format="PNG")
    return out.getvalue()


# --- heatmap ------------------------------------------------------------------------------

_MAP_BG: RGB = (247, 247, 247)  # neutral, so a kind's colour is never confused with the map
_MAP_GRID: RGB = (224, 224, 224)
_MAP_FRAME: RGB = (190, 190, 190)
_MAP_TEXT: RGB = (70, 70, 75)
_KIND_COLOURS: dict[str, RGB] = {"issued": (30, 100, 230), "redeemed": (235, 80, 20)}
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 70, 16, 40, 30
_MIN_SPAN_M = 1000.0
_M_PER_DEG_LAT = 111_320.0
_BLOB_ALPHA = 0.88
_BLOB_GAMMA = 0.6  # lifts lone points next to a dense cluster so they stay visible


@functools.lru_cache(maxsize=8)
def _tint_luts(colour: RGB) -> tuple[list[int], list[int], list[int]]:
    """Return per-channel tables mapping intensity 0..255 to a multiply tint towards colour."""
    luts = []
    for c in colour:
        luts.append(
            [round(255 - _BLOB_ALPHA * (i / 255) ** _BLOB_GAMMA * (255 - c)) for i in range(256)]
        )
    return luts[0], luts[1], luts[2]


def _gaussian_blur_f(image: Image.Image, sigma: float, radius: int) -> Image.Image:
    """Blur a mode "F" image with a separable gaussian (Pillow's own blur is 8-bit only)."""
    taps = [math.exp(-0.5 * (k / sigma) ** 2) for k in range(-radius, radius + 1)]
    total = sum(taps)
    weights = [t / total for t in taps]
    for axis in (0, 1):
        acc = Image.new("F", image.size, 0.0)
        for k, w in zip(range(-radius, radius + 1), weights, strict=True):
            shifted = ImageChops.offset(image, k if axis == 0 else 0, k if axis == 1 else 0)
            acc = ImageMath.lambda_eval(lambda a, w=w: a["acc"] + a["s"] * w, acc=acc, s=shifted)
        image = acc
    return image


def _nice_step(span: float, target: int) -> float:
    raw = span / max(1, target)
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5):
        if raw <= m * magnitude:
            return m * magnitude
    return 10 * magnitude


def _ticks(lo: float, hi: float, target: int) -> tuple[list[float], int]:
    """Return round tick values within [lo, hi] and the decimals to print them with."""
    step = _nice_step(hi - lo, target)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)], decimals


def _check_points(points: Sequence[tuple[float, float, str, float]]) -> None:
    for lat, lon, kind, weight in points:
        if kind not in _KIND_COLOURS:
            raise ValueError(f"unknown point kind {kind!r}")
        if not (math.isfinite(lat) and math.isfinite(lon)) or not -90 <= lat <= 90:
            raise ValueError(f"invalid position ({lat}, {lon})")
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"invalid weight {weight}")


def _fit_bbox(
    points: Sequence[tuple[float, float, str, float]],
) -> tuple[float, float, float, float] | None:
    """Return the points' bounding box with a 10% margin, or None without points."""
    if not points:
        return None
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    d_lat = (max(lats) - min(lats)) * 0.1
    d_lon = (max(lons) - min(lons)) * 0.1
    return min(lats) - d_lat, min(lons) - d_lon, max(lats) + d_lat, max(lons) + d_lon


def _widen_bbox(bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Grow a box narrower than ~1 km in either direction to ~1 km around its centre."""
    min_lat, min_lon, max_lat, max_lon = bbox
    lat_c = (min_lat + max_lat) / 2
    lon_c = (min_lon + max_lon) / 2
    half_lat = max((max_lat - min_lat) / 2, _MIN_SPAN_M / 2 / _M_PER_DEG_LAT)
    k = max(math.cos(math.radians(lat_c)), 0.01)
    half_lon = max((max_lon - min_lon) / 2, _MIN_SPAN_M / 2 / (_M_PER_DEG_LAT * k))
    return lat_c - half_lat, lon_c - half_lon, lat_c + half_lat, lon_c + half_lon


class _Projection:
    """Equirectangular projection of a box into a pixel rectangle, scaled by cos(latitude)."""

    def __init__(
        self, bbox: tuple[float, float, float, float], rect: tuple[int, int, int, int]
    ) -> None:
        min_lat, min_lon, max_lat, max_lon = bbox
        self.left, self.top, right, bottom = rect
        self.width, self.height = right - self.left, bottom - self.top
        self.lat_c = (min_lat + max_lat) / 2
        self.lon_c = (min_lon + max_lon) / 2
        # Shrinking longitude by cos(lat) makes a metre east as long as a metre north.
        self.k = max(math.cos(math.radians(self.lat_c)), 0.01)
        self.scale = min(
            self.width / ((max_lon - min_lon) * self.k), self.height / (max_lat - min_lat)
        )
        # The rectangle usually shows more than the box along one axis: these are its edges.
        self.lon_lo = self.lon_c - self.width / 2 / (self.k * self.scale)
        self.lon_hi = self.lon_c + self.width / 2 / (self.k * self.scale)
        self.lat_lo = self.lat_c - self.height / 2 / self.scale
        self.lat_hi = self.lat_c + self.height / 2 / self.scale

    def x(self, lon: float) -> float:
        return self.width / 2 + (lon - self.lon_c) * self.k * self.scale

    def y(self, lat: float) -> float:
        return self.height / 2 - (lat - self.lat_c) * self.scale


def _density(
    points: Sequence[tuple[float, float, str, float]], proj: _Projection, sigma_px: float
) -> Image.Image | None:
    """Return the points' weighted gaussian density as an "L" image of the plot, or None."""
    cell = max(1, round(sigma_px / 3))  # ~3 cells per sigma: smooth, and cheap to blur
    sigma = sigma_px / cell
    radius = math.ceil(3 * sigma)
    # Points up to `radius` cells outside the plot still bleed in; a further empty ring of
    # `radius` cells keeps the wrap-around of ImageChops.offset from leaking across edges.
    pad = 2 * radius + 1
    cols = math.ceil(proj.width / cell) + 2 * pad
    rows = math.ceil(proj.height / cell) + 2 * pad
    grid = Image.new("F", (cols, rows), 0.0)
    px = grid.load()
    assert px is not None
    hit = False
    for lat, lon, _kind, weight in points:
        gx = proj.x(lon) / cell + pad - 0.5
        gy = proj.y(lat) / cell + pad - 0.5
        i, j = math.floor(gx), math.floor(gy)
        if weight <= 0 or not (radius <= i and i + 1 < cols - radius):
            continue
        if not (radius <= j and j + 1 < rows - radius):
            continue
        fx, fy = gx - i, gy - j
        # Bilinear splat: a point's weight lands where it is, not where its cell starts.
        px[i, j] += weight * (1 - fx) * (1 - fy)
        px[i + 1, j] += weight * fx * (1 - fy)
        px[i, j + 1] += weight * (1 - fx) * fy
        px[i + 1, j + 1] += weight * fx * fy
        hit = True
    if not hit:
        return None
    blurred = _gaussian_blur_f(grid, sigma, radius)
    box = (pad, pad, pad + proj.width / cell, pad + proj.height / cell)
    plot = blurred.resize((proj.width, proj.height), Image.Resampling.BICUBIC, box=box)
    peak = plot.getextrema()[1]
    if peak <= 0:
        return None
    # Each kind is scaled to its own peak: redemptions are usually a small fraction of issues
    # and would vanish on a shared scale. The legend gives the absolute totals.
    return plot.point(lambda v: v * (255.0 / peak)).convert("L")


def _draw_legend(
    canvas: Image.Image, totals: dict[str, tuple[int, float]], right: int, top: int
) -> None:
    font = _font(13)
    show_weight = any(count != weight for count, weight in totals.values())
    labels = []
    for kind, (count, weight) in totals.items():
        label = f"{kind}  {count:,}"
        if show_weight:
            label += f"  (weight {weight:,.4g})"
        labels.append((kind, label))
    width = max(font.getlength(label) for _, label in labels) + 40
    height = 22 * len(labels) + 10
    overlay = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    x0, y0 = right - 8 - width, top + 8
    draw.rounded_rectangle((x0, y0, right - 8, y0 + height), radius=6, fill=(255, 255, 255, 220))
    for n, (kind, label) in enumerate(labels):
        y = y0 + 6 + 22 * n
        draw.rounded_rectangle(
            (x0 + 10, y + 3, x0 + 24, y + 17), radius=3, fill=_KIND_COLOURS[kind]
        )
        draw.text((x0 + 32, y + 10), label, font=font, fill=_MAP_TEXT, anchor="lm")
    canvas.alpha_composite(overlay)


def heatmap_png(
    points: list[tuple[float, float, str, float]],
    bbox: tuple[float, float, float, float] | None = None,
    *,
    width: int = 800,
    height: int = 600,
    title: str = "",
) -> bytes:
    """Return a PNG heatmap of issued (blue) and redeemed (orange-red) coupon positions."""
    if width < 240 or height < 180:
        raise ValueError("a heatmap must be at least 240x180 px")
    _check_points(points)
    if bbox is not None:
        min_lat, min_lon, max_lat, max_lon = bbox
        if not (min_lat <= max_lat and min_lon <= max_lon):
            raise ValueError("bbox must be (min_lat, min_lon, max_lat, max_lon)")
        if not all(math.isfinite(v) for v in bbox) or min_lat < -90 or max_lat > 90:
            raise ValueError("bbox is out of range")
    area = bbox if bbox is not None else _fit_bbox(points)

    rect = (_PAD_LEFT, _PAD_TOP, width - _PAD_RIGHT, height - _PAD_BOTTOM)
    pw, ph = rect[2] - rect[0], rect[3] - rect[1]
    plot = Image.new("RGB", (pw, ph), _MAP_BG)
    plot_draw = ImageDraw.Draw(plot)
    canvas = Image.new("RGBA", (width, height), (255, 255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    label_font = _font(12)
    # Antimeridian-crossing campaign areas are not expected, so longitudes are not unwrapped.
    proj = _Projection(_widen_bbox(area), rect) if area is not None else None

    lat_labels: list[tuple[float, str]] = []
    lon_labels: list[tuple[float, str]] = []
    if proj is None:
        # Nothing to place: an even, unlabelled grid still reads as an (empty) map.
        for x in range(0, pw, 80):
            plot_draw.line((x, 0, x, ph), fill=_MAP_GRID)
        for y in range(0, ph, 80):
            plot_draw.line((0, y, pw, y), fill=_MAP_GRID)
    else:
        lats, lat_dp = _ticks(proj.lat_lo, proj.lat_hi, max(2, ph // 60))
        lons, lon_dp = _ticks(proj.lon_lo, proj.lon_hi, max(2, pw // 100))
        for lat in lats:
            y = proj.y(lat)
            plot_draw.line((0, y, pw, y), fill=_MAP_GRID)
            lat_labels.append((rect[1] + y, _clean(f"{lat:.{lat_dp}f}°")))
        for lon in lons:
            x = proj.x(lon)
            plot_draw.line((x, 0, x, ph), fill=_MAP_GRID)
            lon_labels.append((rect[0] + x, _clean(f"{lon:.{lon_dp}f}°")))

        sigma_px = max(5.0, min(pw, ph) / 40)
        for kind, colour in _KIND_COLOURS.items():
            density = _density([p for p in points if p[2] == kind], proj, sigma_px)
            if density is None:
                continue
            tint = Image.merge("RGB", [density.point(lut) for lut in _tint_luts(colour)])
            # Multiplying tints keeps overlaps visible: blue over orange turns dark violet.
            plot = ImageChops.multiply(plot, tint)

    canvas.paste(plot, rect[:2])
    draw.rectangle((rect[0] - 1, rect[1] - 1, rect[2], rect[3]), outline=_MAP_FRAME)
    for y, label in lat_labels:
        h = label_font.size
        if h / 2 <= y <= height - h / 2:
            draw.text((rect[0] - 6, y), label, font=label_font, fill=_MAP_TEXT, anchor="rm")
    for x, label in lon_labels:
        half = label_font.getlength(label) / 2
        if half <= x <= width - half:
            draw.text((x, rect[3] + 6), label, font=label_font, fill=_MAP_TEXT, anchor="ma")

    if not points:
        note = _font(20)
        draw.text(
            ((rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2),
            "no data",
            font=note,
            fill=_MAP_TEXT,
            anchor="mm",
        )
    title_text = _ellipsise(_clean(title), _font(18), width - 2 * 12)
    if title_text:
        draw.text(
            (width / 2, _PAD_TOP / 2), title_text, font=_font(18), fill=_CARD_INK, anchor="mm"
        )

    totals: dict[str, tuple[int, float]] = {}
    for kind in _KIND_COLOURS:
        weights = [p[3] for p in points if p[2] == kind]
        totals[kind] = (len(weights), math.fsum(weights))
    _draw_legend(canvas, totals, rect[2], rect[1])

    out = io.BytesIO()
    canvas.convert("RGB").save(out, format="PNG")
    return out.getvalue()
