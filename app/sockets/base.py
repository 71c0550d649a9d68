"""A Namespace that authenticates at connect, checks each event's roles and never drops a client
over bad input: every failure becomes an error ack (and an `error` event) with the envelope."""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

import redis
from flask import current_app, request
from flask_socketio import ConnectionRefusedError, Namespace, emit
from pydantic import ValidationError

from core.errors import DomainError, Forbidden, Unauthorized

from ..auth import Principal, authorize, declared_roles
from ..errors import field_path

log = logging.getLogger(__name__)

LIFECYCLE = {"connect", "disconnect"}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """Return the error envelope used by acks and `error` events."""
    return {"error": {"code": code, "message": message, "field": field}}


def token_from_handshake(auth: Any) -> str | None:
    """Find the bearer token in the auth payload, the Authorization header or ?token=."""
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return auth["token"]
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.args.get("token")


def refusal(body: dict[str, Any]) -> ConnectionRefusedError:
    """Build the connect refusal a client reads as `err.message` and `err.data` (the envelope).

    Socket.IO's own exception, not the builtin of the same name: python-socketio answers the
    builtin with a bare "Connection refused by server". With a single argument it would send
    str(body), a Python repr no client parses.
    """
    return ConnectionRefusedError(body["error"]["message"], body)


class SecureNamespace(Namespace):
    """Base of every namespace: roles at connect and per event, default deny."""

    connect_roles: tuple[str, ...] = ()
    max_payload_bytes = 16 * 1024

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        # Who is behind each connection of this process (connections live in one process).
        self.principals: dict[str, Principal] = {}

    def on_connect(self, auth: Any = None) -> None:
        token = token_from_handshake(auth)
        if not token:
            raise refusal(error_body("unauthorized", "a token is required"))
        try:
            who = current_app.extensions["accounts"].authenticate(token)
            authorize(who, self.connect_roles)
        except (Unauthorized, Forbidden) as exc:
            raise refusal(exc.to_dict()) from None
        except redis.RedisError:
            raise refusal(
                error_body("service_unavailable", "storage is unavailable, retry shortly")
            ) from None
        self.principals[request.sid] = who
        try:
            current_app.extensions["accounts"].track_socket(who, self.namespace, request.sid)
        except redis.RedisError:
            raise refusal(
                error_body("service_unavailable", "storage is unavailable, retry shortly")
            ) from None
        self.joined(who)

    def joined(self, who: Principal) -> None:
        """Hook: put a new connection in its rooms."""

    def on_disconnect(self, reason: Any = None) -> None:
        who = self.principals.pop(request.sid, None)
        if who is not None:
            try:
                current_app.extensions["accounts"].forget_socket(who, self.namespace, request.sid)
            except redis.RedisError:
                log.warning("could not forget socket %s: redis unavailable", request.sid)

    def principal(self) -> Principal:
        """Return the principal of the connection handling this event."""
        return self.principals[request.sid]

    def trigger_event(self, event: str, *args: Any) -> Any:
        # A client may send an ordinary event named "connect" or "disconnect", and
        # python-socketio routes it here like the real ones: re-authenticating with another
        # token, or dropping the principal. Clients' events only run while the connection is
        # established; the real lifecycle calls come while it is pending (always_connect off).
        if event in LIFECYCLE and not self.server.manager.is_connected(args[0], self.namespace):
            return super().trigger_event(event, *args)
        # python-socketio passes (sid, *data). Flask-SocketIO's _handle_event (what its own
        # Namespace.trigger_event uses) pushes the request context that gives request.sid,
        # current_app and emit() their meaning; calling handlers directly would run without it.
        # (Given the name "connect", _handle_event passes only what it takes for `auth`.)
        sid, *data = args
        return self.socketio._handle_event(partial(self._guarded, event), event,
                                           self.namespace, sid, *data)

    def _guarded(self, event: str, *args: Any) -> Any:
        """Run one event inside the request context; every failure becomes an error ack."""
        try:
            return self._dispatch(event, *args)
        except DomainError as exc:
            return self._fail(exc.to_dict(), event)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            code = "unknown_field" if first["type"] == "extra_forbidden" else "validation_error"
            return self._fail(error_body(code, first["msg"], field_path(tuple(first["loc"]))),
                              event)
        except redis.RedisError:
            return self._fail(error_body("service_unavailable",
                                         "storage is unavailable, retry shortly"), event)
        except Exception:
            log.exception("socket handler failed", extra={"event": event})
            return self._fail(error_body("internal_error", "internal error"), event)

    def _dispatch(self, event: str, *args: Any) -> Any:
        callable_by_clients = event.isidentifier() and event not in LIFECYCLE
        handler = getattr(self, f"on_{event}", None) if callable_by_clients else None
        if handler is None:
            raise DomainError(f"unknown event {event!r}", code="unknown_event", field="event")
        allowed = declared_roles(handler)
        if allowed is None:
            raise Forbidden("this event declares no roles", code="undeclared_roles")
        who = self.principals.get(request.sid)
        authorize(who, allowed)
        if len(args) > 1:
            raise DomainError("send one payload object", code="invalid_payload", field="payload")
        payload = args[0] if args else None
        if payload is not None:
            size = len(json.dumps(payload, separators=(",", ":"), default=str))
            if size > self.max_payload_bytes:
                raise DomainError(f"payload over {self.max_payload_bytes} bytes",
                                  code="payload_too_large", field="payload", status=413)
        return handler(payload)

    def _fail(self, body: dict[str, Any], event: str) -> dict[str, Any]:
        emit("error", {**body, "event": event})
        return body
