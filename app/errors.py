"""One JSON error envelope for every failure: domain errors, framework errors, Redis outages."""

from __future__ import annotations

import logging

import redis
from flask import Flask, current_app, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from core.durability import NotReplicated
from core.errors import DomainError, RateLimited

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    431: "headers_too_large",  # the same codes as gunicorn_worker.py for gunicorn's refusals
}


def is_streamed() -> bool:
    """Tell whether the request body is streamed (chunked): no Content-Length to check."""
    return request.content_length is None and "wsgi.input_terminated" in request.environ


def read_streamed_body() -> None:
    """Read a streamed body into the request (bounded), refusing one that fills the limit.

    Werkzeug reads a body without Content-Length up to MAX_CONTENT_LENGTH and then stops
    *without an error* (`get_data` returns the first MAX_CONTENT_LENGTH bytes), so a body that
    fills the limit is refused as too large here rather than parsed truncated; forms then parse
    from the bytes read. A no-op for bodies with a Content-Length (werkzeug checks those).
    """
    if not is_streamed():
        return
    limit = request.max_content_length
    if limit is not None and len(request.get_data(cache=True)) >= limit:
        raise RequestEntityTooLarge(f"the request body exceeds {limit} bytes")


def envelope(status: int, code: str, message: str, field: str | None = None, **extra):
    """Build the JSON error response."""
    body = {"code": code, "message": message, "field": field}
    body.update({k: v for k, v in extra.items() if v is not None})
    response = jsonify({"error": body})
    response.status_code = status
    return response


def field_path(loc: tuple) -> str | None:
    """Turn a pydantic error location into a dotted field path like 'fixes[3].lat'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or None


def validation_response(exc: ValidationError):
    """Answer a pydantic validation failure with the first offending field."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    first = errors[0] if errors else {"loc": (), "msg": "invalid input", "type": "value_error"}
    # flask-openapi3 validates body/query/path models; the location starts inside the model.
    loc = tuple(first.get("loc", ()))
    # An empty location is the body as a whole: missing, null, an array instead of an object.
    field = field_path(loc) or "body"
    kind = first.get("type", "")
    code = "unknown_field" if kind == "extra_forbidden" else "validation_error"
    message = first.get("msg", "invalid input")
    if kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "missing":
        message = "field required"
    elif kind == "model_type" and not loc:
        message = "the request body must be a JSON object"
    details = [
        {
            "field": field_path(tuple(e.get("loc", ()))) or "body",
            "message": e.get("msg"),
            "type": e.get("type"),
        }
        for e in errors[:20]
    ]
    return envelope(422, code, message, field, details=details)


def register_errorhandlers(app: Flask) -> None:
    """Map every exception the app can meet to the envelope."""

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        response = jsonify(exc.to_dict())
        response.status_code = exc.status
        if isinstance(exc, (RateLimited, NotReplicated)):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(ValidationError)
    def _pydantic(exc: ValidationError):
        return validation_response(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        # flask-openapi3 aborts with a ready response for validation errors: keep it.
        if exc.response is not None and exc.code is None:
            return exc.response
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        response = envelope(status, code, exc.description or exc.name)
        if status == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    @app.errorhandler(redis.BusyLoadingError)
    # Cluster mode, once the client's bounded retries are spent: a failover in progress or
    # nodes out of reach (the last two are not RedisErrors in redis-py).
    @app.errorhandler(redis.exceptions.ClusterDownError)
    @app.errorhandler(redis.exceptions.TryAgainError)
    @app.errorhandler(redis.exceptions.SlotNotCoveredError)
    @app.errorhandler(redis.exceptions.RedisClusterUnreachableError)
    def _redis_down(exc: Exception):
        log.warning("redis unavailable: %s", exc)
        response = envelope(503, "service_unavailable", "storage is unavailable, retry shortly")
        response.headers["Retry-After"] = str(current_app.config.get("RETRY_AFTER_S", 2))
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return envelope(500, "internal_error", "internal server error")

    @app.errorhandler(RecursionError)
    def _too_deep(exc: RecursionError):
        # json.loads gives up on a deeply nested document with RecursionError, not ValueError,
        # so it slips past the malformed-JSON check; any other recursion is our own bug.
        if "decoding a JSON" not in str(exc):
            return _unexpected(exc)
        return envelope(400, "malformed_json", "request body is nested too deeply", "body")
