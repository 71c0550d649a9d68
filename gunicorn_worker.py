"""Gunicorn's gevent worker, answering the requests gunicorn refuses itself with the API envelope.

Gunicorn parses the request line and headers before the application sees anything: a header
over `limit_request_field_size` (8,190 bytes), more than `limit_request_fields` (100) headers,
a request line over `limit_request_line` (4,094 bytes) or a malformed request never reach
Flask, and gunicorn writes an HTML page. Gunicorn has no setting or hook for that page; it is
written by `Worker.handle_error`, a public method of the worker class, and a custom worker class
is gunicorn's documented extension point (`worker_class` takes a Python path). This worker
writes the JSON envelope `{"error": {"code", "message", "field"}}` for those refusals, with
the status gunicorn chose, and leaves every other error to gunicorn.

This module imports no part of the application: gunicorn loads the worker class in the master
process, before gevent patches the standard library in the worker.
"""

from __future__ import annotations

import json

from gunicorn.http import errors
from gunicorn.workers.ggevent import GeventWorker

__all__ = ["EnvelopeGeventWorker"]

# (exception classes, status, reason phrase, error code); the first match wins. The codes are
# those app/errors.py uses for the same statuses.
_REFUSALS: list[tuple[tuple[type[BaseException], ...], int, str, str]] = [
    ((errors.LimitRequestHeaders,), 431, "Request Header Fields Too Large", "headers_too_large"),
    ((errors.LimitRequestLine,), 414, "URI Too Long", "uri_too_long"),
    (
        (
            errors.InvalidRequestLine,
            errors.InvalidRequestMethod,
            errors.InvalidHTTPVersion,
            errors.ObsoleteFolding,
            errors.InvalidChunkSize,
            errors.ChunkMissingTerminator,
            errors.InvalidChunkExtension,
            errors.InvalidProxyLine,
            errors.InvalidSchemeHeaders,
        ),
        400,
        "Bad Request",
        "bad_request",
    ),
]
# Header errors share classes with the application's own bad response headers (a 500 that
# gunicorn must keep answering as its own error).
_HEADER_ERRORS = (errors.InvalidHeader, errors.InvalidHeaderName)
_RESPONSE_ERRORS = (errors.InvalidResponseHeader, errors.InvalidResponseHeaderName)

MESSAGES = {
    431: "a request header is too large, or there are too many headers",
    414: "the request line (method and URL) is too long",
}


def refusal(exc: BaseException) -> tuple[int, str, str] | None:
    """Return (status, reason, code) for a request gunicorn refused, or None for other errors."""
    if isinstance(exc, _RESPONSE_ERRORS):
        return None
    if isinstance(exc, _HEADER_ERRORS):
        return 400, "Bad Request", "bad_request"
    for classes, status, reason, code in _REFUSALS:
        if isinstance(exc, classes):
            return status, reason, code
    return None


def envelope_response(status: int, reason: str, code: str, message: str) -> bytes:
    """Return a complete HTTP/1.1 response carrying the JSON error envelope."""
    body = json.dumps(
        {"error": {"code": code, "message": message, "field": None}}, separators=(",", ":")
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class EnvelopeGeventWorker(GeventWorker):
    """The gevent worker (websockets, one greenlet per connection) with JSON refusals."""

    def handle_error(self, req, client, addr, exc):
        """Answer gunicorn's own refusals with the envelope; leave the rest to gunicorn."""
        found = refusal(exc)
        if found is None:
            return super().handle_error(req, client, addr, exc)
        status, reason, code = found
        ip = addr[0] if addr else ""
        self.log.warning("Invalid request from ip=%s: %s", ip, exc)
        message = MESSAGES.get(status) or f"malformed request: {exc}"
        try:
            client.sendall(envelope_response(status, reason, code, message))
        except OSError:
            self.log.debug("Failed to send error message.")
        return None
