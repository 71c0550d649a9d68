"""A Namespace that authenticates at connect, checks each event's roles and never drops a client
over bad input: every failure becomes an error ack (and an `error` event) with the envelope."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from flask import current_app, request
from flask_socketio import ConnectionRefusedError, Namespace, disconnect, emit
from pydantic import ValidationError

from core.errors import DomainError, Forbidden, Unauthorized

from ..auth import Principal, authorize, declared_roles
from ..errors import field_path
from .packets import Refused
from .wsinput import SOCKET_KEYS, BoundedSocket

log = logging.getLogger(__name__)

LIFECYCLE = {"connect", "disconnect"}
# The one handler every client event is routed to (SecureNamespace.trigger_event).
ROUTE = "client_event"


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

    def trigger_event(self, event: Any, *args: Any) -> Any:
        # A client may send an ordinary event named "connect" or "disconnect", and
        # python-socketio routes it here like the real ones: re-authenticating with another
        # token, or dropping the principal. Clients' events only run while the connection is
        # established; the real lifecycle calls come while it is pending (always_connect off).
        if event in LIFECYCLE and not self.server.manager.is_connected(args[0], self.namespace):
            return super().trigger_event(event, *args)
        # Every client event, known or not, goes to one handler (Flask-SocketIO's documented
        # use of overriding trigger_event), which Flask-SocketIO runs in the request context
        # (request.sid, emit) with socket_error as its error handler: its return is the ack.
        sid, *data = args
        return super().trigger_event(ROUTE, sid, event, *data)

    def on_client_event(self, event: Any, *args: Any) -> Any:
        """Check and run one client event (see trigger_event); failures go to socket_error."""
        if isinstance(event, Refused):
            return self._refused(event)
        callable_by_clients = (
            isinstance(event, str)
            and event.isidentifier()
            and event not in LIFECYCLE
            and event != ROUTE
        )
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
                raise DomainError(
                    f"payload over {self.max_payload_bytes} bytes",
                    code="payload_too_large",
                    field="payload",
                    status=413,
                )
        return handler(payload)

    def _refused(self, refused: Refused) -> None:
        """Answer an event the packet layer refused; close the connection when it says so."""
        if not refused.close:
            raise DomainError(refused.message, code=refused.code, field="payload", status=413)
        emit(
            "error",
            {**error_body(refused.code, refused.message, "payload"), "event": refused.event},
        )
        log.warning("socket closed: %s", refused.code, extra={"sid": request.sid})
        eio_sid = self.server.manager.eio_sid_from_sid(request.sid, self.namespace)
        disconnect()  # the namespace: the client hears "io server disconnect"
        if eio_sid is not None:
            self.server.eio.disconnect(eio_sid)  # the transport, once the above is handed over
        for key in SOCKET_KEYS:  # and stop reading what the client still sends
            if isinstance(request.environ.get(key), BoundedSocket):
                request.environ[key].stop()


def client_event_name() -> Any:
    """Return the name of the client event being handled (inside a socket handler)."""
    event = request.event
    if event["message"] != ROUTE:
        return event["message"]
    name = event["args"][0] if event["args"] else None
    return name.event if isinstance(name, Refused) else name


def socket_error(exc: Exception) -> dict[str, Any] | None:
    """Flask-SocketIO's default error handler: the envelope as the ack and an `error` event.

    Runs in the failed handler's request context. A failed connect is refused (never accepted
    by an error ack); a failed disconnect is only logged.
    """
    event = client_event_name()
    if isinstance(exc, DomainError):
        body = exc.to_dict()
    elif isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        code = "unknown_field" if first["type"] == "extra_forbidden" else "validation_error"
        body = error_body(code, first["msg"], field_path(tuple(first["loc"])))
    elif isinstance(exc, (redis.RedisError, redis.exceptions.RedisClusterException)):
        # RedisClusterException: cluster mode, a slot not covered or no node reachable (a
        # failover in progress), once the client's bounded retries are spent.
        body = error_body("service_unavailable", "storage is unavailable, retry shortly")
    else:
        log.error("socket handler failed", exc_info=exc, extra={"event": str(event)})
        body = error_body("internal_error", "internal error")
    lifecycle = request.event["message"]  # a client's event named so arrives as ROUTE
    if lifecycle == "connect":
        raise refusal(body) from exc
    if lifecycle == "disconnect":
        return None
    emit("error", {**body, "event": event})
    return body
