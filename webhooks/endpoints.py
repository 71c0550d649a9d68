"""The endpoint registry: who registered which URL for which events, its secrets and status.

Endpoints live in one hash (`{wh}` slot) beside a version counter that every change bumps, so
each process keeps a copy and re-reads it only when the version moved. A change is a
compare-and-set script on the record: two marketers editing one endpoint never lose a write.
Secrets are generated here (`whsec_` + base64 of 32 random bytes), shown once, and kept in the
record so that senders can sign; a rotation keeps the previous secret for an overlap, during
which every message carries both signatures.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import Conflict, NotFound
from core.scripts import LuaScripts

from . import keys
from .events import EVENT_TYPES

SECRET_BYTES = 32
MAX_ENDPOINTS = 500
MAX_OVERLAP_S = 7 * 86_400
DEFAULT_OVERLAP_S = 86_400
ENDPOINT_ID = r"^ep_[0-9]{1,12}$"

# KEYS: endpoints, version   ARGV: id, expected JSON ('' = must not exist), new JSON ('' = delete)
CAS = """
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
redis.call('INCR', KEYS[2])
return 1
"""


def new_secret() -> str:
    """Return a fresh signing secret in the Standard Webhooks form."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def known_types(value: list[str] | None) -> list[str] | None:
    """Check event type names ('*' = every type) and drop repeats."""
    if value is None:
        return None
    for kind in value:
        if kind != "*" and kind not in EVENT_TYPES:
            raise ValueError(f"unknown event type {kind[:60]!r}")
    return list(dict.fromkeys(value))


class EndpointIn(BaseModel):
    """A new endpoint."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str = Field(min_length=1, max_length=2000)
    event_types: list[str] = Field(
        min_length=1,
        max_length=len(EVENT_TYPES),
        description="event types to receive, or ['*'] for every type",
    )
    description: str = Field(default="", max_length=500)
    campaign_id: str | None = Field(
        default=None,
        pattern=r"^[0-9]{1,12}$",
        description="only this campaign's events (coupon.*, campaign.*, live.drop_ended)",
    )

    _types = field_validator("event_types")(lambda cls, value: known_types(value))


class EndpointPatch(BaseModel):
    """A change to an endpoint; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    description: str | None = Field(default=None, max_length=500)
    status: Literal["active", "disabled"] | None = None

    _types = field_validator("event_types")(lambda cls, value: known_types(value))


class Endpoints:
    """Create, change, rotate and read endpoints; a per-process copy for the senders."""

    def __init__(self, r: redis.Redis, clock, check_url=None) -> None:
        self.r = r
        self.clock = clock
        self.check_url = check_url or (lambda url, field: url)
        self.scripts = LuaScripts(r, {"cas": CAS})
        self._cache: dict[str, dict[str, Any]] = {}
        self._version: str | None = None
        self._lock = threading.Lock()

    # -- reads -------------------------------------------------------------------------------
    def record(self, eid: str) -> dict[str, Any]:
        """Return an endpoint's full record (secrets included), or raise NotFound."""
        raw = self.r.hget(keys.ENDPOINTS, eid)
        if raw is None:
            raise NotFound("no such webhook endpoint", code="not_found", field="endpoint_id")
        return json.loads(raw)

    def get(self, eid: str) -> dict[str, Any]:
        """Return an endpoint as the API shows it (no secrets)."""
        return self.public(self.record(eid))

    def list(self) -> list[dict[str, Any]]:
        """Return every endpoint (no secrets), oldest first."""
        records = [json.loads(v) for v in self.r.hvals(keys.ENDPOINTS)]
        records.sort(key=lambda rec: int(rec["id"][3:]))
        return [self.public(rec) for rec in records]

    def public(self, rec: dict[str, Any]) -> dict[str, Any]:
        """Drop the secrets from a record; say until when an old secret still signs."""
        out = {k: v for k, v in rec.items() if k != "secrets"}
        now = self.clock.now()
        old = [s["expires_at"] for s in rec["secrets"][1:] if s["expires_at"] > now]
        out["previous_secret_expires_at"] = max(old) if old else None
        out["secret_created_at"] = rec["secrets"][0]["created_at"]
        return out

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Return every endpoint record, re-read only when the registry's version moved."""
        version = self.r.get(keys.VERSION)
        with self._lock:
            if version == self._version:
                return self._cache
        records = {eid: json.loads(raw) for eid, raw in self.r.hgetall(keys.ENDPOINTS).items()}
        with self._lock:
            self._cache, self._version = records, version
        return records

    def signing_secrets(self, rec: dict[str, Any], now: float) -> list[str]:
        """Return the secrets that sign now: the current one, then unexpired previous ones."""
        first, *rest = rec["secrets"]
        return [first["secret"], *(s["secret"] for s in rest if s["expires_at"] > now)]

    # -- writes ------------------------------------------------------------------------------
    def create(self, data: EndpointIn, actor: str) -> tuple[dict[str, Any], str]:
        """Register an endpoint; return it and its secret (shown this once)."""
        self.check_url(data.url, "url")
        if self.r.hlen(keys.ENDPOINTS) >= MAX_ENDPOINTS:
            raise Conflict(f"at most {MAX_ENDPOINTS} webhook endpoints", code="too_many_endpoints")
        now = self.clock.now()
        secret = new_secret()
        eid = f"ep_{self.r.incr(keys.SEQ)}"
        rec = {
            "id": eid,
            "url": data.url,
            "event_types": data.event_types,
            "description": data.description,
            "campaign_id": data.campaign_id,
            "status": "active",
            "disabled_code": None,
            "disabled_reason": None,
            "disabled_at": None,
            "created_at": now,
            "created_by": actor,
            "updated_at": now,
            "secrets": [{"secret": secret, "created_at": now, "expires_at": None}],
        }
        if not self._cas(eid, "", rec):
            raise Conflict("the endpoint id is taken; try again", code="conflict")
        return self.public(rec), secret

    def update(self, eid: str, patch: EndpointPatch) -> dict[str, Any]:
        """Change an endpoint; enabling it again clears its failure record."""
        if patch.url is not None:
            self.check_url(patch.url, "url")

        def change(rec: dict[str, Any]) -> None:
            for name in ("url", "event_types", "description"):
                value = getattr(patch, name)
                if value is not None:
                    rec[name] = value
            if patch.status == "active" and rec["status"] != "active":
                rec.update(status="active", disabled_code=None, disabled_reason=None)
                rec["disabled_at"] = None
            elif patch.status == "disabled" and rec["status"] != "disabled":
                self._disable(rec, "manual", "disabled by a marketer or admin")

        rec = self._change(eid, change)
        if patch.status == "active":
            self.r.hdel(keys.HEALTH, f"fs:{eid}", f"pu:{eid}")
        return self.public(rec)

    def rotate(self, eid: str, overlap_s: int = DEFAULT_OVERLAP_S) -> tuple[dict[str, Any], str]:
        """Give an endpoint a new secret; the previous one keeps signing for overlap_s."""
        secret = new_secret()

        def change(rec: dict[str, Any]) -> None:
            now = self.clock.now()
            current = dict(rec["secrets"][0], expires_at=now + overlap_s)
            kept = [s for s in rec["secrets"][1:] if s["expires_at"] > now]
            fresh = {"secret": secret, "created_at": now, "expires_at": None}
            rec["secrets"] = [fresh, *([current] if overlap_s > 0 else []), *kept][:3]

        rec = self._change(eid, change)
        return self.public(rec), secret

    def disable(self, eid: str, code: str, reason: str) -> bool:
        """Disable an endpoint for a reason its owner will see; False if it already was."""
        changed = []

        def change(rec: dict[str, Any]) -> None:
            if rec["status"] == "active":
                self._disable(rec, code, reason)
                changed.append(True)

        try:
            self._change(eid, change)
        except NotFound:
            return False
        return bool(changed)

    def delete(self, eid: str) -> None:
        """Remove an endpoint, its log and its failed messages."""
        self._change(eid, None)
        self.r.delete(keys.log(eid))
        self.r.delete(keys.failed(eid))
        self.r.hdel(keys.HEALTH, f"fs:{eid}", f"pu:{eid}")

    def _disable(self, rec: dict[str, Any], code: str, reason: str) -> None:
        now = self.clock.now()
        rec.update(status="disabled", disabled_code=code, disabled_reason=reason)
        rec["disabled_at"] = now

    def _change(self, eid: str, change) -> dict[str, Any]:
        for _ in range(20):
            raw = self.r.hget(keys.ENDPOINTS, eid)
            if raw is None:
                raise NotFound("no such webhook endpoint", code="not_found", field="endpoint_id")
            if change is None:
                if self.scripts.call("cas", [keys.ENDPOINTS, keys.VERSION], [eid, raw, ""]):
                    return json.loads(raw)
                continue
            rec = json.loads(raw)
            change(rec)
            rec["updated_at"] = self.clock.now()
            if self._cas(eid, raw, rec):
                return rec
        raise Conflict("the endpoint changed too often; try again", code="conflict")

    def _cas(self, eid: str, expected: str, rec: dict[str, Any]) -> bool:
        new = json.dumps(rec, separators=(",", ":"))
        return bool(self.scripts.call("cas", [keys.ENDPOINTS, keys.VERSION], [eid, expected, new]))
