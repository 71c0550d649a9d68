"""Coupon QR codes, coupon cards and campaign heatmaps, decoded and measured for real."""

from __future__ import annotations

import io
import random
import xml.etree.ElementTree as ET

import pytest
import zxingcpp
from PIL import Image, ImageChops, ImageStat

from promotions import images

TOKEN = "FF1.k1.42-1057.Zm9vYmFyYmF6cXV4MTIzNDU2Nzg"
LONG_DATA = "".join(
    random.Random(7).choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh0123456789.-_") for _ in range(200)
)
SVG_NS = "{http://www.w3.org/2000/svg}"
SHANGHAI = (31.15, 121.35, 31.32, 121.60)

CARD = {
    "token": TOKEN,
    "title": "¥20 off",
    "brand": "上海第一百货",
    "terms": "min spend ¥100 · valid at 12 stores",
    "expires_label": "Valid until 11 Nov 2026, 23:59",
    "short_code": "K7QX-92MP",
    "status": "issued",
}


def open_png(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image


def decoded(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image.convert("RGB"))]


def channel_sums(image: Image.Image) -> tuple[float, float, float]:
    red, green, blue = ImageStat.Stat(image.convert("RGB")).sum
    return red, green, blue


@pytest.fixture
def default_font_only(monkeypatch):
    """Render as if the CJK font package were not installed."""
    monkeypatch.setattr(images, "_cjk_font_path", None)
    images._font.cache_clear()
    images._has_glyph.cache_clear()
    yield
    images._font.cache_clear()
    images._has_glyph.cache_clear()


# --- QR codes ---


@pytest.mark.parametrize("data", [TOKEN, LONG_DATA, "https://footfall.test/c/42?x=1&y=二"])
@pytest.mark.parametrize(("scale", "border"), [(8, 4), (3, 4), (5, 6)])
def test_qr_png_decodes_to_the_exact_data(data, scale, border):
    image = open_png(images.qr_png(data, scale=scale, border=border))

    assert decoded(image) == [data]
    assert image.width == image.height
    assert image.width % scale == 0
    # Quiet zone: the whole border band is white.
    rgb = image.convert("RGB")
    assert rgb.getpixel((border * scale - 1, border * scale - 1)) == (255, 255, 255)
    assert rgb.getpixel((border * scale, border * scale)) == (0, 0, 0)  # finder pattern corner


def test_qr_png_uses_error_level_m_without_boost():
    # segno would raise the level to Q or H when the version has room for it (boost_error).
    (result,) = zxingcpp.read_barcodes(open_png(images.qr_png(TOKEN)).convert("RGB"))
    assert result.ec_level == "M"


@pytest.mark.parametrize("data", [TOKEN, LONG_DATA])
def test_qr_svg_is_an_svg_document_with_size_and_modules(data):
    svg = images.qr_svg(data, scale=4, border=4)
    assert isinstance(svg, bytes)
    root = ET.fromstring(svg.decode("utf-8"))

    assert root.tag == f"{SVG_NS}svg"
    width, height = int(root.attrib["width"]), int(root.attrib["height"])
    assert width == height
    # The SVG and the PNG describe the same symbol at the same size.
    assert width == open_png(images.qr_png(data, scale=4, border=4)).width
    shapes = [el for el in root.iter() if el.tag in (f"{SVG_NS}path", f"{SVG_NS}rect")]
    assert any(len(el.attrib.get("d", "")) > 100 for el in shapes)


@pytest.mark.parametrize(
    ("data", "kwargs"),
    [
        ("", {}),
        (TOKEN, {"scale": 0}),
        (TOKEN, {"border": -1}),
        ("x" * 3000, {}),  # beyond a version 40 symbol at level M
    ],
)
@pytest.mark.parametrize("render", [images.qr_png, images.qr_svg])
def test_qr_rejects_bad_input(render, data, kwargs):
    with pytest.raises(ValueError):
        render(data, **kwargs)


# --- coupon card ---


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"title": "15% off, up to ¥30", "brand": "Footfall Mall"},
        {"title": "Free tote bag", "brand": "上海第一百货 Shanghai No.1 Department Store"},
        {"title": "双十一大促 全场满减 " * 12, "terms": "满100减20 · " * 40},
        {"title": "A" * 500, "brand": "B" * 300, "expires_label": "C" * 300},
        {"short_code": "K7QX-92MP-ABCD-EFGH-IJKL-MNOP"},
        {"brand": "Café 🎉 Crêpes", "title": "🎁 gift"},
    ],
)
def test_coupon_card_is_600x900_and_its_qr_decodes(overrides):
    card = open_png(images.coupon_card_png(**{**CARD, **overrides}))

    assert card.size == (images.CARD_WIDTH, images.CARD_HEIGHT) == (600, 900)
    assert card.mode in ("RGB", "RGBA")
    assert decoded(card) == [TOKEN]


def test_coupon_card_has_a_coloured_header_and_a_white_body():
    card = open_png(images.coupon_card_png(**CARD)).convert("RGB")
    r, g, b = card.getpixel((5, 5))
    assert r > 150 and g < 80 and b < 100
    assert card.getpixel((5, 600)) == (255, 255, 255)


@pytest.mark.parametrize("status", ["redeemed", "expired", "voided", "REDEEMED"])
def test_coupon_card_marks_a_used_coupon(status):
    issued = open_png(images.coupon_card_png(**CARD)).convert("RGB")
    used = open_png(images.coupon_card_png(**{**CARD, "status": status})).convert("RGB")

    diff = ImageChops.difference(issued, used).convert("L")
    changed = sum(ImageStat.Stat(diff.point(lambda v: 255 if v > 40 else 0)).sum) / 255
    # The banner alone covers far more than 5% of the card.
    assert changed > 0.05 * 600 * 900


def test_coupon_card_without_the_cjk_font_drops_glyphs_it_cannot_draw(default_font_only):
    assert images._clean("上海第一百货 Mall") == "Mall"
    assert images._clean("  ¥20   off ") == "RMB 20 off"
    assert images._clean("Café １５% off") == "Cafe 15% off"

    card = open_png(images.coupon_card_png(**CARD))
    assert card.size == (600, 900)
    assert decoded(card) == [TOKEN]


def test_text_helpers_wrap_and_ellipsise_within_the_width():
    font = images._font(30)
    lines, cut = images._wrap("双十一大促全场满减" * 20, font, 300, 2)
    assert cut and len(lines) == 2
    assert all(font.getlength(line) <= 300 for line in lines)
    assert lines[-1].endswith("…")

    lines, cut = images._wrap("min spend ¥100 · valid at 12 stores", font, 300, 3)
    assert not cut
    assert " ".join(lines) == "min spend ¥100 · valid at 12 stores"
    assert images._clean("party 🎉 time") == "party time"


def test_the_card_strings_of_both_languages_have_the_same_placeholders_and_glyphs():
    import re

    from promotions.cardtext import CARD_LANGUAGES, STRINGS

    assert set(STRINGS) == set(CARD_LANGUAGES)
    for key, english in STRINGS["en"].items():
        chinese = STRINGS["zh-CN"][key]
        assert set(re.findall(r"\{(\w+)\}", english)) == set(re.findall(r"\{(\w+)\}", chinese))
    # Every character of the Chinese strings is drawn by the card's font, not as tofu.
    chars = {ch for value in STRINGS["zh-CN"].values() for ch in value if ord(ch) > 0x2FFF}
    assert chars and [ch for ch in sorted(chars) if not images._has_glyph(ch)] == []


def test_a_card_in_chinese_differs_from_the_english_one_only_in_its_words():
    from promotions.cardtext import card_text

    terms = {
        "kind": "percent_off",
        "percent_off": 15,
        "max_off_fen": 3000,
        "min_spend_fen": 10_000,
        "campaign_name": "Double 11",
    }
    cards = {}
    for lang in ("en", "zh-CN"):
        words = card_text(terms, lang, timezone="Asia/Shanghai", expires_at=1_780_000_000)
        cards[lang] = open_png(
            images.coupon_card_png(
                **{
                    **CARD,
                    "title": words.title,
                    "terms": words.terms,
                    "expires_label": words.validity,
                }
            )
        ).convert("RGB")
        assert decoded(cards[lang]) == [TOKEN]
    assert card_text(terms, "zh-CN", timezone="UTC", expires_at=0).title == "15%折扣，最高减¥30"
    diff = ImageChops.difference(cards["en"], cards["zh-CN"])
    # The title, terms and validity rows differ; the header (brand) and the QR do not.
    assert diff.crop((0, 122, 600, 330)).getbbox() is not None
    assert diff.crop((0, 800, 600, 900)).getbbox() is not None
    assert diff.crop((0, 0, 600, 110)).getbbox() is None
    assert diff.crop((0, 336, 600, 696)).getbbox() is None


def test_a_status_banner_reads_in_the_language_given():
    base = open_png(images.coupon_card_png(**{**CARD, "status": "redeemed"})).convert("RGB")
    chinese = open_png(
        images.coupon_card_png(**{**CARD, "status": "redeemed", "status_label": "已使用"})
    ).convert("RGB")
    assert ImageChops.difference(base, chinese).getbbox() is not None
    assert all(images._has_glyph(ch) for ch in "已使用样券")


# --- heatmap ---


def shanghai_points(n: int, kinds: tuple[str, ...], seed: int = 11) -> list:
    rng = random.Random(seed)
    return [
        (
            rng.uniform(SHANGHAI[0] + 0.02, SHANGHAI[2] - 0.02),
            rng.uniform(SHANGHAI[1] + 0.02, SHANGHAI[3] - 0.02),
            rng.choice(kinds),
            rng.uniform(0.5, 3.0),
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize(
    ("points", "bbox"),
    [
        ([], None),
        ([], SHANGHAI),
        ([(31.2304, 121.4737, "issued", 1.0)], None),
        ([(31.2304, 121.4737, "redeemed", 2.5)], SHANGHAI),
        ([(31.2304, 121.4737, "issued", 1.0)] * 3, None),  # all at one spot
        (shanghai_points(500, ("issued", "redeemed")), None),
        (shanghai_points(500, ("issued", "redeemed")), SHANGHAI),
    ],
)
@pytest.mark.parametrize(("width", "height"), [(800, 600), (400, 300), (320, 640)])
def test_heatmap_is_a_png_of_the_asked_size(points, bbox, width, height):
    image = open_png(
        images.heatmap_png(points, bbox, width=width, height=height, title="Double 11 · 上海")
    )
    assert image.size == (width, height)
    assert image.mode == "RGB"


def test_heatmap_points_change_the_map():
    blank = open_png(images.heatmap_png([], SHANGHAI)).convert("RGB")
    one = open_png(images.heatmap_png([(31.2304, 121.4737, "issued", 1.0)], SHANGHAI))
    assert ImageChops.difference(blank, one.convert("RGB")).getbbox() is not None


@pytest.mark.parametrize(("kind", "dominant"), [("issued", "blue"), ("redeemed", "red")])
def test_heatmap_colours_each_kind(kind, dominant):
    points = shanghai_points(300, (kind,))
    drawn = open_png(images.heatmap_png(points, SHANGHAI)).convert("RGB")
    # A map with the same box but no points, minus its "no data" note, is the background.
    background = open_png(images.heatmap_png([(0.0, 0.0, kind, 0.0)], SHANGHAI)).convert("RGB")

    # Blobs darken a light map: how much each channel lost is how much of its colour was laid.
    lost = ImageChops.subtract(background, drawn)
    red, _green, blue = channel_sums(lost)
    if dominant == "blue":
        assert red > 1.5 * blue  # blue ink absorbs red light
    else:
        assert blue > 1.5 * red  # orange-red ink absorbs blue light
    # And the result looks the part.
    r, _g, b = channel_sums(drawn)
    assert (b > r) if dominant == "blue" else (r > b)


def test_heatmap_overlaps_show_both_kinds():
    spot = [(31.2304, 121.4737, "issued", 1.0), (31.2304, 121.4737, "redeemed", 1.0)]
    image = open_png(images.heatmap_png(spot)).convert("RGB")
    issued = open_png(images.heatmap_png(spot[:1])).convert("RGB")
    redeemed = open_png(images.heatmap_png(spot[1:])).convert("RGB")

    centre = (70 + (800 - 70 - 16) // 2, 40 + (600 - 40 - 30) // 2)
    both = image.getpixel(centre)
    # Darker than either kind alone in every channel: neither colour hides the other.
    assert all(
        c <= min(i, r)
        for c, i, r in zip(both, issued.getpixel(centre), redeemed.getpixel(centre), strict=True)
    )
    assert sum(both) < min(sum(issued.getpixel(centre)), sum(redeemed.getpixel(centre)))


def test_heatmap_keeps_distances_square():
    # Two points 1 km apart east-west and two 1 km apart north-south at Shanghai's latitude
    # must land the same number of pixels apart.
    lat, lon = 31.2304, 121.4737
    d_lat = 1000 / 111_320
    d_lon = d_lat / 0.8550  # cos(31.23°)
    proj = images._Projection((lat - 0.02, lon - 0.03, lat + 0.02, lon + 0.03), (0, 0, 700, 500))
    dx = proj.x(lon + d_lon) - proj.x(lon)
    dy = proj.y(lat) - proj.y(lat + d_lat)
    assert dx == pytest.approx(dy, rel=0.01)


@pytest.mark.parametrize(
    ("points", "bbox", "kwargs"),
    [
        ([(31.2, 121.4, "viewed", 1.0)], None, {}),
        ([(31.2, 121.4, "issued", -1.0)], None, {}),
        ([(float("nan"), 121.4, "issued", 1.0)], None, {}),
        ([(95.0, 121.4, "issued", 1.0)], None, {}),
        ([], (31.3, 121.4, 31.2, 121.5), {}),
        ([], SHANGHAI, {"width": 100}),
    ],
)
def test_heatmap_rejects_bad_input(points, bbox, kwargs):
    with pytest.raises(ValueError):
        images.heatmap_png(points, bbox, **kwargs)
