"""Product image uploads: fitted, thumbnailed, stripped of metadata, and bad input refused."""

from __future__ import annotations

import functools
import hashlib
import io
import random
import warnings

import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile, PngImagePlugin

from core.errors import ValidationFailed
from live import images
from live.images import process_product_image

RED = (220, 20, 20)
BLUE = (20, 40, 220)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def picture(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Return a picture with a red left half and a blue right half."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, size[0] // 2, size[1]))
    return image.convert(mode)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    image.load()
    return image


def near(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 24) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def refusal(data: bytes, **kwargs) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        process_product_image(data, **kwargs)
    return caught.value


@functools.cache
def huge_png(side: int) -> bytes:
    """Return a real, valid all-black 1-bit PNG of side x side: a few KB, many pixels."""
    return encode(Image.new("1", (side, side)), "PNG")


@functools.cache
def sized_png(size: tuple[int, int]) -> bytes:
    return encode(Image.new("1", size), "PNG")


# --- accepted images ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("JPEG", {"quality": 95}), ("PNG", {}), ("WEBP", {"lossless": True})],
)
@pytest.mark.parametrize(
    ("size", "fitted", "thumb"),
    [
        ((300, 200), (300, 200), (240, 160)),  # never upscaled
        ((4000, 3000), (1200, 900), (240, 180)),
        ((900, 1600), (675, 1200), (135, 240)),
        ((1200, 1200), (1200, 1200), (240, 240)),
        ((100, 64), (100, 64), (100, 64)),  # smaller than the thumbnail box: left alone
        ((3000, 64), (1200, 26), (240, 5)),
    ],
)
def test_accepted_formats_are_fitted_and_thumbnailed(fmt, params, size, fitted, thumb):
    result = process_product_image(encode(picture(size), fmt, **params))

    assert result.source_format == fmt
    assert (result.width, result.height) == fitted
    assert (result.thumb_width, result.thumb_height) == thumb
    image, small = decoded(result.image), decoded(result.thumb)
    assert image.size == fitted and image.mode == "RGB"
    assert small.size == thumb and small.mode == "RGB"
    assert image.info.get("progressive") == 1
    # Content is scaled, not cropped or mirrored: red stays left, blue right.
    assert near(image.getpixel((image.width // 8, image.height // 2)), RED)
    assert near(image.getpixel((image.width * 7 // 8, image.height // 2)), BLUE)


def test_sha256_matches_the_image_bytes():
    result = process_product_image(encode(picture((640, 480)), "PNG"))

    assert result.sha256 == hashlib.sha256(result.image).hexdigest()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_same_input_gives_the_same_bytes(fmt):
    data = encode(picture((2000, 1500)), fmt)

    first, second = process_product_image(data), process_product_image(data)

    assert first == second


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("PNG", {}), ("WEBP", {"lossless": True})],
)
def test_transparency_becomes_white(fmt, params):
    image = Image.new("RGBA", (400, 300), (0, 0, 0, 0))  # transparent *black*
    image.paste((*RED, 255), (100, 75, 300, 225))

    result = process_product_image(encode(image, fmt, **params))

    out = decoded(result.image)
    assert near(out.getpixel((10, 10)), (255, 255, 255), tolerance=4)
    assert near(out.getpixel((200, 150)), RED)


def test_palette_png_transparency_becomes_white():
    image = Image.new("P", (200, 200), 1)
    image.putpalette([*RED, *BLUE])
    image.paste(0, (0, 0, 100, 200))
    image.info["transparency"] = 1  # the blue right half

    out = decoded(process_product_image(encode(image, "PNG")).image)

    assert near(out.getpixel((150, 100)), (255, 255, 255), tolerance=4)
    assert near(out.getpixel((50, 100)), RED)


def test_half_transparent_pixels_blend_with_white():
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 128))

    out = decoded(process_product_image(encode(image, "PNG")).image)

    assert near(out.getpixel((50, 50)), (127, 127, 127), tolerance=4)


def exif_with(orientation: int | None = None, gps: bool = False) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.Base.Model] = "Snap 12"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if gps:
        exif[ExifTags.IFD.GPSInfo] = {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (31.0, 13.0, 50.0),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: (121.0, 28.0, 10.0),
        }
    return exif


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_is_applied(fmt):
    # Stored 400x200 (red left, blue right); orientation 6 says "turn 90 degrees clockwise".
    data = encode(picture((400, 200)), fmt, exif=exif_with(orientation=6))

    result = process_product_image(data)

    assert (result.width, result.height) == (200, 400)
    assert (result.thumb_width, result.thumb_height) == (120, 240)
    out = decoded(result.image)
    assert near(out.getpixel((100, 50)), RED)
    assert near(out.getpixel((100, 350)), BLUE)


def test_large_turned_jpeg_is_sized_exactly():
    # Big JPEGs are decoded at reduced scale; the output size must still come from the header.
    data = encode(picture((4001, 3001)), "JPEG", exif=exif_with(orientation=8))

    result = process_product_image(data)

    assert (result.width, result.height) == (900, 1200)
    assert (result.thumb_width, result.thumb_height) == (180, 240)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_no_metadata_survives(fmt):
    params: dict = {"exif": exif_with(orientation=1, gps=True)}
    if fmt == "JPEG":
        params["comment"] = b"shot at home, 12 Secret Lane"
    if fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", "shot at home, 12 Secret Lane")
        params["pnginfo"] = text
    data = encode(picture((500, 400)), fmt, **params)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # really there

    result = process_product_image(data)

    for output in (result.image, result.thumb):
        out = decoded(output)
        assert not out.getexif()
        assert b"Exif" not in output
        assert b"Secret Lane" not in output and b"PhoneCo" not in output
        assert not {"exif", "comment", "icc_profile", "xmp"} & out.info.keys()


def test_icc_profile_is_applied_and_dropped():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    plain = process_product_image(encode(picture((300, 200)), "PNG"))

    tagged = process_product_image(encode(picture((300, 200)), "PNG", icc_profile=srgb))

    out = decoded(tagged.image)
    assert "icc_profile" not in out.info
    assert near(out.getpixel((30, 100)), decoded(plain.image).getpixel((30, 100)), tolerance=3)


def test_broken_icc_profile_does_not_fail_the_upload():
    data = encode(picture((300, 200)), "JPEG", icc_profile=b"not a profile" * 20)

    out = decoded(process_product_image(data).image)

    assert "icc_profile" not in out.info
    assert near(out.getpixel((30, 100)), RED)


def test_cmyk_jpeg_becomes_rgb():
    result = process_product_image(encode(picture((300, 200), "CMYK"), "JPEG"))

    out = decoded(result.image)
    assert out.mode == "RGB"
    assert near(out.getpixel((30, 100)), RED, tolerance=40)


def test_greyscale_images_are_accepted():
    grey = Image.new("L", (300, 200), 90)

    for fmt in ("JPEG", "PNG"):
        out = decoded(process_product_image(encode(grey, fmt)).image)
        assert out.mode == "RGB"
        assert near(out.getpixel((150, 100)), (90, 90, 90), tolerance=3)


def test_sixteen_bit_greyscale_png_is_not_washed_out():
    deep = Image.new("I;16", (300, 200), 40_000)  # about 61% grey

    out = decoded(process_product_image(encode(deep, "PNG")).image)

    assert near(out.getpixel((150, 100)), (156, 156, 156), tolerance=3)


def test_multi_picture_jpeg_counts_as_jpeg():
    frames = [picture((300, 200)), Image.new("RGB", (300, 200), "black")]
    out = io.BytesIO()
    frames[0].save(out, "MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(out.getvalue())).format == "MPO"

    result = process_product_image(out.getvalue())

    assert result.source_format == "JPEG"
    assert near(decoded(result.image).getpixel((30, 100)), RED)


# --- refusals -----------------------------------------------------------------------------


def truncated(fmt: str) -> bytes:
    noise = random.Random(3).randbytes(400 * 300 * 3)
    data = encode(Image.frombytes("RGB", (400, 300), noise), fmt)
    return data[: len(data) // 2]


REFUSALS = [
    pytest.param(b"", "image_empty", id="empty"),
    pytest.param(b"\xff" * (images.MAX_BYTES + 1), "image_too_large", id="over-max-bytes"),
    pytest.param(random.Random(1).randbytes(5000), "image_invalid", id="random-bytes"),
    pytest.param(b"hello, this is not an image\n", "image_invalid", id="text"),
    pytest.param(truncated("JPEG"), "image_invalid", id="truncated-jpeg"),
    pytest.param(truncated("PNG"), "image_invalid", id="truncated-png"),
    pytest.param(encode(picture((300, 200)), "PNG")[:-40], "image_invalid", id="png-no-end"),
    pytest.param(encode(picture((300, 200)), "GIF"), "image_unsupported_format", id="gif"),
    pytest.param(encode(picture((300, 200)), "BMP"), "image_unsupported_format", id="bmp"),
    pytest.param(encode(picture((300, 200)), "TIFF"), "image_unsupported_format", id="tiff"),
    pytest.param(
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="300" '
        b'height="200"><rect width="300" height="200" fill="red"/></svg>\n',
        "image_unsupported_format",
        id="svg",
    ),
    pytest.param(
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200),
        "image_unsupported_format",
        id="heic",
    ),
    pytest.param(encode(picture((50, 500)), "PNG"), "image_too_small", id="too-narrow"),
    pytest.param(encode(picture((500, 63)), "JPEG"), "image_too_small", id="too-short"),
]


@pytest.mark.parametrize(("data", "code"), REFUSALS)
def test_bad_uploads_are_refused(data, code):
    error = refusal(data)

    assert error.code == code
    assert error.field == "image"
    assert error.status == 422
    assert error.message


@pytest.mark.parametrize(("data", "code"), REFUSALS)
def test_errors_carry_the_field(data, code):
    error = refusal(data, field="gallery[2]")

    assert error.code == code
    assert error.to_dict()["error"]["field"] == "gallery[2]"


def test_unsupported_format_is_named():
    error = refusal(encode(picture((300, 200)), "GIF"))

    assert "GIF" in error.message and "JPEG" in error.message


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if Pillow decodes or verifies pixel data."""

    def refuse(self, *args, **kwargs):
        raise AssertionError("pixels were read")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "verify", refuse)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(huge_png(20_000), id="20000x20000"),  # past Pillow's own hard limit
        pytest.param(sized_png((10_000, 10_000)), id="10000x10000"),  # Pillow only warns
        pytest.param(sized_png((8_000, 6_000)), id="8000x6000"),  # only our limit
    ],
)
def test_decompression_bombs_are_refused_from_the_header(data, no_decoding):
    assert len(data) < images.MAX_BYTES
    pixel_limit = Image.MAX_IMAGE_PIXELS

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        error = refusal(data, field="cover")

    assert error.code == "image_too_large"
    assert error.field == "cover"
    assert "40 million pixels" in error.message
    assert seen == []  # Pillow's DecompressionBombWarning never surfaces
    assert Image.MAX_IMAGE_PIXELS == pixel_limit


def test_just_under_the_pixel_limit_is_accepted():
    result = process_product_image(sized_png((8_000, 5_000)))

    assert (result.width, result.height) == (1200, 750)
