"""Rights before work: a caller who may not act on an object gets no upload parsed or decoded."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from .conftest import T0
from .helpers import assert_error, bearer


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def bomb_png(side: int = 20_000) -> bytes:
    """A real, valid 1-bit PNG of side x side: a few KB on the wire, 400 MP decoded."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def people(auth):
    marketer, _ = auth.headers("marketer")
    host = auth.user("host")
    intruder = auth.user("host")  # a host, but of no stream of ours
    shopper, _ = auth.headers("shopper")
    return {
        "marketer": marketer,
        "host": bearer(host["token"]),
        "host_id": host["user"]["id"],
        "intruder": bearer(intruder["token"]),
        "shopper": shopper,
    }


@pytest.fixture
def stream_id(client, people):
    body = {
        "title": "Coats",
        "brand": "Acme",
        "playback_url": "https://video.example/a",
        "hosts": [people["host_id"]],
        "starts_at": T0 + 3600,
    }
    response = client.post("/api/streams", json=body, headers=people["marketer"])
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


# Each upload would be refused by the decoder with its own code if it were ever decoded:
# so the permission code in the answer proves the decoder never ran.
UPLOADS = {
    "garbage": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 4096, "image_invalid"),
    "bomb": (bomb_png(), "image_too_large"),
    "valid": (png(800, 600), None),
}


@pytest.mark.parametrize("upload", sorted(UPLOADS))
def test_a_host_of_another_stream_gets_403_before_the_image_is_decoded(
    client, people, stream_id, upload
):
    data, decoder_code = UPLOADS[upload]
    url = f"/api/streams/{stream_id}/products"
    form = {"name": "Coat", "price_fen": "100", "image": (io.BytesIO(data), "coat.png")}
    assert_error(
        client.post(url, headers=people["intruder"], data=form, content_type="multipart/form-data"),
        403,
        "not_your_stream",
        "stream_id",
    )
    assert client.get(f"/api/streams/{stream_id}").get_json()["products"] == []
    # The stream's own host gets the decoder's verdict for the same bytes.
    form = {"name": "Coat", "price_fen": "100", "image": (io.BytesIO(data), "coat.png")}
    response = client.post(
        url, headers=people["host"], data=form, content_type="multipart/form-data"
    )
    if decoder_code is None:
        assert response.status_code == 201, response.get_json()
    else:
        assert_error(response, 422, decoder_code, "image")


@pytest.mark.parametrize("upload", sorted(UPLOADS))
def test_an_image_for_a_stream_that_does_not_exist_is_never_decoded(client, people, upload):
    data, _ = UPLOADS[upload]
    form = {"name": "Coat", "price_fen": "100", "image": (io.BytesIO(data), "coat.png")}
    assert_error(
        client.post(
            "/api/streams/999999/products",
            headers=people["host"],
            data=form,
            content_type="multipart/form-data",
        ),
        404,
        "stream_not_found",
        "stream_id",
    )


def test_bad_fields_are_refused_before_the_image_is_decoded(client, people, stream_id):
    form = {"name": "Coat", "price_fen": "12.50", "image": (io.BytesIO(bomb_png()), "c.png")}
    assert_error(
        client.post(
            f"/api/streams/{stream_id}/products",
            headers=people["host"],
            data=form,
            content_type="multipart/form-data",
        ),
        422,
        "validation_error",
        "price_fen",
    )
