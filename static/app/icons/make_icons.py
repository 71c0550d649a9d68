"""Draw the shopper app's icons (icon-192.png, icon-512.png) with Pillow: a map pin on the
app's blue, inside the middle 80 % so the icon also works masked (maskable).

Run from the repository root: .venv/bin/python static/app/icons/make_icons.py
"""

from pathlib import Path

from PIL import Image, ImageDraw

BLUE = (11, 92, 173)
WHITE = (255, 255, 255)
HERE = Path(__file__).resolve().parent


def icon(size: int) -> Image.Image:
    """Return a square icon of `size` pixels: a white pin with a blue dot on blue."""
    image = Image.new("RGB", (size, size), BLUE)
    draw = ImageDraw.Draw(image)
    s = size / 100
    draw.ellipse([32 * s, 22 * s, 68 * s, 58 * s], fill=WHITE)
    draw.polygon([(34 * s, 46 * s), (66 * s, 46 * s), (50 * s, 78 * s)], fill=WHITE)
    draw.ellipse([43 * s, 33 * s, 57 * s, 47 * s], fill=BLUE)
    return image


if __name__ == "__main__":
    for size in (192, 512):
        icon(size).save(HERE / f"icon-{size}.png", optimize=True)
