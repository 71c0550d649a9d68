"""Rights before work: a caller who may not act on an object gets no upload parsed or decoded."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from live.models import StreamIn
from live.streams import Caller

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


def multipart(fields: dict[str, str], image: bytes) -> tuple[bytes, str]:
    boundary = "footfall-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="c.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + image
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_a_streamed_upload_is_refused_on_rights_before_its_size(make_app):
    app = make_app(MAX_CONTENT_LENGTH=5_000)
    client = app.test_client()
    host = app.extensions["accounts"]
    host.create_user("h@example.test", "correct-horse-1", "host")
    host.create_user("i@example.test", "correct-horse-1", "host")
    owner = host.find_by_email("h@example.test")
    tokens = {
        who: host.open_session(host.find_by_email(f"{who[0]}@example.test"))["token"]
        for who in ("host", "intruder")
    }
    stream = app.extensions["streams"].create(
        StreamIn(
            title="Coats",
            brand="Acme",
            playback_url="https://video.example/a",
            hosts=[owner["id"]],
            starts_at=T0 + 3600,
        ),
        Caller(owner["id"], "host"),
    )
    body, content_type = multipart({"name": "Coat", "price_fen": "100"}, png(800, 600) * 4)
    assert len(body) > 5_000
    url = f"/api/streams/{stream['id']}/products"

    def post(who: str):
        return client.post(
            url,
            input_stream=io.BytesIO(body),
            content_type=content_type,
            headers={"Transfer-Encoding": "chunked", **bearer(tokens[who])},
            environ_overrides={"wsgi.input_terminated": True},
        )

    assert_error(post("intruder"), 403, "not_your_stream", "stream_id")
    assert_error(post("host"), 413, "payload_too_large")
    assert app.extensions["streams"].get(stream["id"])["products"] == []
