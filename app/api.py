"""Declaring an endpoint: its route, its roles (default deny) and its OpenAPI entry together."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import current_app, g

from .auth import PUBLIC, Principal, roles
from .schemas import error_responses

BEARER = [{"bearer": []}]


def endpoint(
    bp,
    method: str,
    rule: str,
    *,
    allow: Iterable[str],
    summary: str,
    description: str = "",
    **options,
) -> Callable:
    """Register a view on an APIBlueprint with the roles that may call it.

    `responses` documents the success answers; every operation also documents the error
    envelope for the 4xx/5xx statuses of schemas.error_responses (Retry-After on 429/503).
    """
    allowed = tuple(allow)
    who = "anyone" if PUBLIC in allowed else ", ".join(allowed)
    text = f"Roles: {who}." + (f"\n\n{description}" if description else "")
    security = [] if PUBLIC in allowed else BEARER
    responses = {
        **error_responses(),
        **{str(k): v for k, v in options.pop("responses", {}).items()},
    }

    def decorator(func: Callable) -> Callable:
        func = roles(*allowed)(func)
        return getattr(bp, method)(
            rule,
            summary=summary,
            description=text,
            security=security,
            responses=responses,
            **options,
        )(func)

    return decorator


def principal() -> Principal:
    """Return the authenticated caller of this request."""
    return g.principal


def audit(
    action: str,
    kind: str,
    object_id: str,
    before: dict | None = None,
    after: dict | None = None,
    *,
    ignore: frozenset[str] = frozenset(),
) -> None:
    """Record the caller's change in the audit log (only the fields that changed)."""
    who = principal()
    current_app.extensions["audit"].record(
        f"{who.role}:{who.user_id}", action, kind, object_id, before, after, ignore=ignore
    )
