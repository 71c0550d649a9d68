"""Product images for live-stream shopping: validate an upload, then fit, thumbnail, re-encode.

Pure computation with Pillow (no Flask, no Redis): `process_product_image` takes the uploaded
bytes and returns JPEG bytes for the product image and its thumbnail, or raises
`ValidationFailed` with a stable code. Uploads come from strangers' phones and laptops, so the
checks run cheapest first and nothing is decoded before its size is known to be sane:

1. byte length (empty, over `MAX_BYTES`);
2. the header: a known image (`image_invalid`), an accepted format, width*height within
   `MAX_PIXELS` (`image_too_large`), the smaller side at least `MIN_SIDE`;
3. `verify()` on that handle, then a fresh handle to decode (verify leaves its handle unusable).

The output never carries the upload's metadata (EXIF with GPS, XMP, comments, ICC profiles):
orientation is applied to the pixels, colours are converted to sRGB, and the JPEGs are encoded
from a fresh image.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

from core.errors import ValidationFailed

__all__ = [
    "FORMATS",
    "IMAGE_MAX_SIDE",
    "MAX_BYTES",
    "MAX_PIXELS",
    "MIN_SIDE",
    "THUMB_SIDE",
    "ProcessedImage",
    "process_product_image",
]

MAX_BYTES = 8 * 1024 * 1024
# Well under Pillow's own warning threshold (~89.5 MP), so our check fires first and does not
# depend on how the process filters warnings.
MAX_PIXELS = 40_000_000
MIN_SIDE = 64
IMAGE_MAX_SIDE = 1200
THUMB_SIDE = 240
FORMATS = ("JPEG", "PNG", "WEBP")

JPEG_QUALITY = 85

# Multi-picture JPEGs (phone cameras add a depth map or preview) open as "MPO"; their first
# frame is a plain JPEG.
_FORMAT_ALIASES = {"MPO": "JPEG"}
_FORMAT_NAMES = "JPEG, PNG or WebP"
# Orientations 5-8 turn the image a quarter, swapping width and height.
_SWAPS_SIDES = {5, 6, 7, 8}
# What Pillow raises on input it cannot parse; anything else is our bug and should surface.
_DECODE_ERRORS = (
    UnidentifiedImageError,
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    ImageCms.PyCMSError,
)
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# Colour-managed modes and the mode they become in sRGB.
_CMS_OUTPUT_MODES = {"RGB": "RGB", "RGBA": "RGBA", "CMYK": "RGB"}


@dataclass(frozen=True)
class ProcessedImage:
    """A validated product image and its thumbnail, both as metadata-free JPEG bytes."""

    image: bytes
    thumb: bytes
    width: int
    height: int
    thumb_width: int
    thumb_height: int
    source_format: str
    sha256: str


def process_product_image(data: bytes, *, field: str = "image") -> ProcessedImage:
    """Validate an uploaded product image and return it fitted, thumbnailed and re-encoded."""
    if not data:
        raise ValidationFailed("The image is empty.", code="image_empty", field=field)
    if len(data) > MAX_BYTES:
        raise ValidationFailed(
            f"The image is larger than {MAX_BYTES // (1024 * 1024)} MB.",
            code="image_too_large",
            field=field,
        )
    # A local filter, so Pillow's DecompressionBombWarning is raised (and refused below) rather
    # than printed or, where warnings are errors, escaping as an unexpected exception. Pillow's
    # other warnings are about malformed input (corrupt EXIF, bad MPO index) and are not
    # actionable. catch_warnings is process-global state, which is why MAX_PIXELS, not this
    # filter, is the guard that matters.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            source_format = _check_header(data, field)
            fitted = _decode(data)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_many_pixels(field) from exc
        except _DECODE_ERRORS as exc:
            raise ValidationFailed(
                "The file is not a readable image, or it is truncated or corrupt.",
                code="image_invalid",
                field=field,
            ) from exc

    thumb = fitted.resize(_fit(fitted.size, THUMB_SIDE), Image.Resampling.LANCZOS)
    encoded = _jpeg(fitted)
    return ProcessedImage(
        image=encoded,
        thumb=_jpeg(thumb),
        width=fitted.width,
        height=fitted.height,
        thumb_width=thumb.width,
        thumb_height=thumb.height,
        source_format=source_format,
        sha256=hashlib.sha256(encoded).hexdigest(),
    )


def _check_header(data: bytes, field: str) -> str:
    """Check format and dimensions from the header alone, then verify; return the format."""
    try:
        probe = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if kind := _sniff_unsupported(data):
            raise _unsupported(kind, field) from None
        raise
    with probe:
        kind = _FORMAT_ALIASES.get(probe.format or "", probe.format or "unknown")
        if kind not in FORMATS:
            raise _unsupported(kind, field)
        width, height = probe.size
        if width * height > MAX_PIXELS:
            raise _too_many_pixels(field)
        if min(width, height) < MIN_SIDE:
            raise ValidationFailed(
                f"The image is {width}x{height} px; both sides must be at least {MIN_SIDE} px.",
                code="image_too_small",
                field=field,
            )
        probe.verify()
    return kind


def _decode(data: bytes) -> Image.Image:
    """Decode the (already checked) upload to upright sRGB pixels fitted to IMAGE_MAX_SIDE."""
    with Image.open(io.BytesIO(data)) as image:
        raw_size = image.size
        # Let libjpeg decode big JPEGs at 1/2, 1/4 or 1/8 scale (never below the fitted size):
        # a fraction of the memory and time of a full decode, and LANCZOS does the rest. The
        # box is square, so the scale is the same whichever way the photo is turned.
        image.draft("RGB", _fit(raw_size, IMAGE_MAX_SIDE))
        image.load()
        # Read after load: a PNG may keep its eXIf chunk after the pixel data.
        turned = image.getexif().get(ExifTags.Base.Orientation) in _SWAPS_SIDES
        upright = _flatten(_to_srgb(ImageOps.exif_transpose(image)))
    # Sized from the header, not the drafted pixels, whose sides are rounded up.
    target = _fit(raw_size[::-1] if turned else raw_size, IMAGE_MAX_SIDE)
    if upright.size == target:
        return upright  # never upscale, and don't resample what already fits
    return upright.resize(target, Image.Resampling.LANCZOS)


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert pixels from an embedded ICC profile to sRGB, since the profile is dropped."""
    icc = image.info.get("icc_profile")
    output_mode = _CMS_OUTPUT_MODES.get(image.mode)
    if not icc or output_mode is None:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=output_mode)
    except _DECODE_ERRORS:
        # A broken or mismatched profile should cost colour accuracy, not the upload.
        return image
    return converted if converted is not None else image


def _flatten(image: Image.Image) -> Image.Image:
    """Return RGB pixels composited on white, as a fresh image with no `info` to leak."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        # 16-bit greyscale PNGs: plain conversion clips everything above 255 to white.
        image = image.convert("I").point(lambda value: value / 257).convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or ("transparency" in image.info)
    flat = Image.new("RGB", image.size, "white")
    if has_alpha:
        rgba = image.convert("RGBA")
        flat.paste(rgba, mask=rgba.getchannel("A"))
    else:
        flat.paste(image.convert("RGB"))
    return flat


def _fit(size: tuple[int, int], box: int) -> tuple[int, int]:
    """Return `size` scaled to fit within a `box` x `box` square, keeping aspect, never larger."""
    width, height = size
    scale = min(box / width, box / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _jpeg(image: Image.Image) -> bytes:
    """Encode `image` as a progressive, optimized JPEG with no metadata."""
    out = io.BytesIO()
    # The encoder copies a JPEG comment from `image.info`; only pass what we mean to write.
    image.info.clear()
    image.save(out, "JPEG", quality=JPEG_QUALITY, progressive=True, optimize=True)
    return out.getvalue()


def _sniff_unsupported(data: bytes) -> str | None:
    """Name common image formats Pillow cannot open, so the error can say what was sent."""
    head = data[:1024].lstrip().lower()
    if head.startswith(b"<") and b"<svg" in head:
        return "SVG"
    if data[4:8] == b"ftyp":
        return "HEIC/AVIF"
    return None


def _unsupported(kind: str, field: str) -> ValidationFailed:
    return ValidationFailed(
        f"{kind} images are not supported; upload a {_FORMAT_NAMES} image.",
        code="image_unsupported_format",
        field=field,
    )


def _too_many_pixels(field: str) -> ValidationFailed:
    return ValidationFailed(
        f"The image has more than {MAX_PIXELS // 1_000_000} million pixels.",
        code="image_too_large",
        field=field,
    )
