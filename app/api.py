"""Declaring an endpoint: its route, its roles (default deny) and its OpenAPI entry together."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import g

from .auth import PUBLIC, Principal, roles

BEARER = [{"bearer": []}]


def endpoint(bp, method: str, rule: str, *, allow: Iterable[str], summary: str,
             description: str = "", **options) -> Callable:
    """Register a view on an APIBlueprint with the roles that may call it."""
    allowed = tuple(allow)
    who = "anyone" if PUBLIC in allowed else ", ".join(allowed)
    text = f"Roles: {who}." + (f"\n\n{description}" if description else "")
    security = [] if PUBLIC in allowed else BEARER

    def decorator(func: Callable) -> Callable:
        func = roles(*allowed)(func)
        return getattr(bp, method)(rule, summary=summary, description=text,
                                   security=security, **options)(func)

    return decorator


def principal() -> Principal:
    """Return the authenticated caller of this request."""
    return g.principal
