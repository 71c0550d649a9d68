"""Creature sprites: decoded with Pillow and measured pixel by pixel."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from game.sprites import RARITIES, SPRITE_SIZES, sprite_png

ROOT = Path(__file__).resolve().parent.parent
SPECIES = ("sp-0", "sp-1", "sp-6", "sp-13", "fox-lantern", "mooncake-cat", "熊猫-01")


def open_png(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image


def sprite(species_id: str, rarity: str = "common", size: int = 256) -> Image.Image:
    return open_png(sprite_png(species_id, "Lantern Fox", rarity, size=size))


def pixels(image: Image.Image) -> list[tuple[int, int, int, int]]:
    return list(image.get_flattened_data())


def is_gold(p: tuple[int, int, int, int]) -> bool:
    r, g, b, a = p
    return a >= 96 and r >= 200 and g >= 140 and b <= 120 and r - b >= 120


def body_colour(image: Image.Image) -> tuple[int, int, int, int]:
    """Return the most common fully opaque colour: the body fill."""
    counts = Counter(p for p in pixels(image) if p[3] == 255)
    return counts.most_common(1)[0][0]


def test_public_constants():
    assert RARITIES == ("common", "rare", "epic", "legendary")
    assert SPRITE_SIZES == (128, 256, 512)


@pytest.mark.parametrize("size", SPRITE_SIZES)
@pytest.mark.parametrize("rarity", RARITIES)
def test_png_is_rgba_square_with_transparent_surroundings(rarity, size):
    image = sprite("mooncake-cat", rarity, size)
    assert image.mode == "RGBA"
    assert image.size == (size, size)
    last = size - 1
    for corner in ((0, 0), (last, 0), (0, last), (last, last)):
        assert image.getpixel(corner)[3] == 0
    covered = sum(1 for p in pixels(image) if p[3] > 0) / (size * size)
    assert 0.15 <= covered <= 0.80


@pytest.mark.parametrize("species_id", SPECIES)
@pytest.mark.parametrize("rarity", RARITIES)
def test_creature_stays_inside_a_margin(species_id, rarity):
    alpha = sprite(species_id, rarity, 128).getchannel("A")
    box = alpha.point(lambda v: 255 if v > 200 else 0).getbbox()
    assert box is not None
    left, top, right, bottom = box
    assert min(left, top, 128 - right, 128 - bottom) >= 4
    # The whole edge row/column is clear, not just the corners.
    edge = [alpha.getpixel((i, 0)) for i in range(128)] + [
        alpha.getpixel((0, i)) for i in range(128)
    ]
    edge += [alpha.getpixel((i, 127)) for i in range(128)] + [
        alpha.getpixel((127, i)) for i in range(128)
    ]
    assert max(edge) == 0


@pytest.mark.parametrize(
    ("species_id", "rarity", "size"),
    [("sp-0", "common", 256), ("fox-lantern", "legendary", 128), ("熊猫-01", "epic", 512)],
)
def test_same_arguments_give_identical_bytes(species_id, rarity, size):
    first = sprite_png(species_id, "A", rarity, size=size)
    assert sprite_png(species_id, "A", rarity, size=size) == first
    # The name is for alt text only.
    assert sprite_png(species_id, "Another name", rarity, size=size) == first


def test_bytes_are_identical_in_a_separate_process():
    cases = [("sp-0", "common", 256), ("fox-lantern", "legendary", 128), ("熊猫-01", "rare", 512)]
    code = (
        "import hashlib, sys\n"
        "from game.sprites import sprite_png\n"
        "for sid, rarity, size in " + repr(cases) + ":\n"
        "    print(hashlib.sha256(sprite_png(sid, 'x', rarity, size=size)).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4242", "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    here = [
        hashlib.sha256(sprite_png(sid, "x", rarity, size=size)).hexdigest()
        for sid, rarity, size in cases
    ]
    assert result.stdout.split() == here


@pytest.mark.parametrize(("a", "b"), [("sp-0", "sp-1"), ("sp-6", "sp-13"), ("fox", "fox ")])
def test_different_species_look_different(a, b):
    first, second = sprite(a), sprite(b)
    assert sprite_png(a, "x", "common") != sprite_png(b, "x", "common")
    assert ImageChops.difference(first, second).getbbox() is not None
    assert body_colour(first) != body_colour(second)


@pytest.mark.parametrize("species_id", SPECIES)
@pytest.mark.parametrize("rarity", ["rare", "epic", "legendary"])
def test_rarity_changes_the_aura_but_not_the_creature(species_id, rarity):
    common, special = sprite(species_id, "common"), sprite(species_id, rarity)
    assert ImageChops.difference(common, special).getbbox() is not None
    centre = (128, 128)
    assert special.getpixel(centre) == common.getpixel(centre)
    assert common.getpixel(centre)[3] == 255
    assert body_colour(special) == body_colour(common)
    # A glow adds semi-transparent pixels around the creature.
    soft = [sum(1 for p in pixels(im) if 0 < p[3] < 255) for im in (common, special)]
    assert soft[1] > soft[0] * 2


@pytest.mark.parametrize("species_id", SPECIES)
def test_legendary_is_golder_than_common(species_id):
    gold = {
        rarity: sum(1 for p in pixels(sprite(species_id, rarity)) if is_gold(p))
        for rarity in RARITIES
    }
    assert gold["legendary"] > gold["common"] + 0.03 * 256 * 256
    assert gold["legendary"] > gold["rare"]
    assert gold["legendary"] > gold["epic"]


@pytest.mark.parametrize("rarity", ["", "Common", "mythic", "legendary ", None])
def test_bad_rarity_is_rejected(rarity):
    with pytest.raises(ValueError, match="rarity"):
        sprite_png("sp-0", "x", rarity)


@pytest.mark.parametrize("size", [0, -256, 63, 1025, 4096, 256.0, "256", True])
def test_bad_size_is_rejected(size):
    with pytest.raises(ValueError, match="size"):
        sprite_png("sp-0", "x", "common", size=size)


@pytest.mark.parametrize("size", [64, 1024])
def test_size_limits_are_accepted(size):
    assert sprite("sp-1", "epic", size).size == (size, size)
