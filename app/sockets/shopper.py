"""/shopper: a signed-in shopper's private channel (geofence events; fixes over the socket)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_socketio import join_room
from pydantic import TypeAdapter

from core.errors import DomainError

from ..auth import Principal, roles
from ..blueprints.location import FixBatch, FixIn
from ..sinks import shopper_room
from .base import SecureNamespace

_fix = TypeAdapter(FixIn)
_batch = TypeAdapter(FixBatch)


class ShopperNamespace(SecureNamespace):
    """Each shopper joins `shopper:<id>`; events for them reach every process through Redis."""

    connect_roles = ("shopper",)

    def joined(self, who: Principal) -> None:
        join_room(shopper_room(who.user_id))

    @roles("shopper")
    def on_location(self, payload: Any) -> dict[str, Any]:
        """Take one fix or {"fixes": [...]}; ack with the verdicts and events."""
        if not isinstance(payload, dict):
            raise DomainError("payload must be an object", code="invalid_payload", field="payload")
        if "fixes" in payload:
            fixes = [f.to_fix() for f in _batch.validate_python(payload).fixes]
        else:
            fixes = [_fix.validate_python(payload).to_fix()]
        engine = current_app.extensions["geo"]
        results = engine.record_fixes(self.principal().user_id, fixes)
        current_app.extensions["metrics"].count_fix_results(results)
        return {"results": [r.to_dict() for r in results]}

    @roles("shopper")
    def on_whoami(self, payload: Any = None) -> dict[str, Any]:
        """Ack with the connection's account id and role."""
        who = self.principal()
        return {"user_id": who.user_id, "role": who.role}
