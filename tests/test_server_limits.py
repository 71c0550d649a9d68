"""Limits a real gunicorn server enforces, answered with the JSON envelope like every API error.

Oversized headers and request lines are refused by gunicorn before Flask sees the request (see
gunicorn_worker.py); chunked bodies have no Content-Length for werkzeug to check up front.
"""

from __future__ import annotations

import http.client
import json

import pytest

from tests.servers import start_gunicorn

LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def server(redis_server):
    with start_gunicorn(redis_server, extra_env={"MAX_CONTENT_LENGTH": str(LIMIT)}) as server:
        yield server


def request(server, method: str, path: str, body=None, headers=None, chunked=False):
    """Send one request on a fresh connection; return (status, content type, parsed JSON)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        try:
            conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the whole body is sent
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), json.loads(response.read())
    finally:
        conn.close()


def chunks(data: bytes, size: int = 64 * 1024):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def check_envelope(answer, status: int, code: str, field=None) -> dict:
    got_status, content_type, body = answer
    assert (got_status, content_type) == (status, "application/json"), answer
    assert body["error"]["code"] == code and body["error"]["field"] == field, body
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize("size", [10_000, 100_000])
def test_an_oversized_header_is_431_in_the_envelope(server, size):
    answer = request(server, "GET", "/healthz", headers={"X-Big": "a" * size})
    check_envelope(answer, 431, "headers_too_large")


def test_too_many_headers_is_431_in_the_envelope(server):
    headers = {f"X-H{i}": "x" for i in range(150)}
    check_envelope(request(server, "GET", "/healthz", headers=headers), 431, "headers_too_large")


def test_an_oversized_request_line_is_414_in_the_envelope(server):
    check_envelope(request(server, "GET", "/api/streams?x=" + "a" * 10_000), 414, "uri_too_long")


def test_a_chunked_body_over_the_limit_is_413_in_the_envelope(server):
    body = json.dumps({"email": "a@b.cd", "password": "x" * (3 * LIMIT)}).encode()
    answer = request(
        server,
        "POST",
        "/api/auth/login",
        body=chunks(body),
        chunked=True,
        headers={"Content-Type": "application/json"},
    )
    check_envelope(answer, 413, "payload_too_large")


def test_malformed_chunked_json_is_400_malformed_json(server):
    answer = request(
        server,
        "POST",
        "/api/auth/login",
        body=iter([b'{"email": ', b"nope"]),
        chunked=True,
        headers={"Content-Type": "application/json"},
    )
    check_envelope(answer, 400, "malformed_json", "body")


def test_a_chunked_body_under_the_limit_is_read_whole(server):
    # Parsed whole, so the answer is about the (too long) password, not a truncated body.
    body = json.dumps({"email": "nobody@example.test", "password": "x" * (LIMIT // 2)})
    answer = request(
        server,
        "POST",
        "/api/auth/login",
        body=chunks(body.encode()),
        chunked=True,
        headers={"Content-Type": "application/json"},
    )
    check_envelope(answer, 422, "validation_error", "password")


def test_an_ordinary_request_still_works(server):
    status, _, body = request(server, "GET", "/healthz")
    assert status == 200 and body
