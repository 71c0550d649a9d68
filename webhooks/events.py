"""Webhook event types and how each source entry becomes one: ids, payloads, the size bound.

An event's id (the `webhook-id` every attempt carries) is derived from the id of the entry that
recorded it, so an entry read twice (a consumer died before acknowledging it) becomes the same
message again: a receiver that de-duplicates by `webhook-id` sees it once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_BODY_BYTES = 20 * 1024

GEOFENCE = ("geofence.enter", "geofence.dwell", "geofence.exit")
COUPON = ("coupon.issued", "coupon.redeemed", "coupon.voided", "coupon.expired")
EVENT_TYPES: tuple[str, ...] = (
    *GEOFENCE,
    *COUPON,
    "coupon.redemption_voided",
    "campaign.status_changed",
    "live.drop_ended",
    "live.stream_ended",
)
PING = "webhook.ping"  # sent only on request, to one endpoint

# Ledger entry type -> webhook event type (grants and other bookkeeping are not sent).
LEDGER_TYPES = {
    "issue": "coupon.issued",
    "redeem": "coupon.redeemed",
    "void": "coupon.voided",
    "void_redemption": "coupon.redemption_voided",
    "expire": "coupon.expired",
    "status": "campaign.status_changed",
}


@dataclass(frozen=True)
class Event:
    """One event to deliver: its message id, type, time, payload and campaign (if any)."""

    id: str
    type: str
    at: float
    data: dict[str, Any] = field(default_factory=dict)
    campaign_id: str | None = None

    def body(self) -> str:
        """Return the JSON body `{"type", "timestamp", "data"}`, at most MAX_BODY_BYTES.

        A payload that would be larger (a stream report with many polls, say) is sent as its
        scalar fields with `"truncated": true`; the full record stays readable in the API.
        """
        doc = {"type": self.type, "timestamp": iso(self.at), "data": self.data}
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        if len(text.encode()) <= MAX_BODY_BYTES:
            return text
        small = {
            k: v[:200] if isinstance(v, str) else v
            for k, v in list(self.data.items())[:50]
            if not isinstance(v, dict | list)
        }
        small["truncated"] = True
        doc["data"] = small
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def iso(ts: float) -> str:
    """Return a unix time as RFC 3339 UTC with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def message_id(source: str) -> str:
    """Return a stable message id (`msg_` + 26 base32 characters) for a source entry."""
    digest = hashlib.sha256(source.encode()).digest()[:16]
    return "msg_" + base64.b32encode(digest).decode().rstrip("=").lower()


class Subjects:
    """Opaque shopper ids for receivers: HMAC-SHA256 of the account id under a server key.

    Stable (a CRM can join one shopper's events), not reversible without the key, and not the
    account id the API uses.
    """

    def __init__(self, key: bytes) -> None:
        self.key = key

    def of(self, shopper_id: str | None) -> str | None:
        if not shopper_id:
            return None
        mac = hmac.new(self.key, shopper_id.encode(), hashlib.sha256).hexdigest()
        return "shp_" + mac[:32]


def from_geo(stream: str, entry_id: str, fields: dict[str, str], subjects: Subjects):
    """Return the event of one geofence stream entry (no coordinates), or None."""
    try:
        event = json.loads(fields["event"])
        kind = event["kind"]
    except (KeyError, ValueError, TypeError):
        return None
    if f"geofence.{kind}" not in GEOFENCE:
        return None
    data = {
        "store_id": event.get("store_id"),
        "shopper": subjects.of(event.get("shopper_id")),
        "kind": kind,
        "at": iso(float(event.get("at", 0))),
    }
    for name in ("dwell_s", "duration_s", "trust"):
        if name in event:
            data[name] = event[name]
    source = event.get("id") or f"{stream}/{entry_id}"
    return Event(message_id(f"geo|{source}"), f"geofence.{kind}", float(event.get("at", 0)), data)


def from_ledger(cid: str, entry_id: str, fields: dict[str, str], subjects: Subjects):
    """Return the event of one campaign ledger entry, or None for bookkeeping entries."""
    kind = LEDGER_TYPES.get(fields.get("type", ""))
    if kind is None:
        return None
    at = _float(fields.get("at")) or int(entry_id.split("-")[0]) / 1000
    data: dict[str, Any] = {"campaign_id": cid}
    if kind == "campaign.status_changed":
        data.update({"from": fields.get("from"), "to": fields.get("to")})
        data["actor"] = fields.get("actor")
    else:
        data.update(
            {
                "coupon_id": fields.get("coupon"),
                "offer_id": fields.get("offer"),
                "store_id": fields.get("store") or None,
                "shopper": subjects.of(fields.get("shopper")),
                "channel": fields.get("channel"),
            }
        )
        for name in ("value_fen", "basket_fen", "discount_fen"):
            if fields.get(name) not in (None, ""):
                data[name] = int(float(fields[name]))
        for name in ("order_ref", "reason"):
            if fields.get(name):
                data[name] = fields[name]
    return Event(message_id(f"ledger|{cid}|{entry_id}"), kind, at, data, campaign_id=cid)


def from_live(entry_id: str, fields: dict[str, str]):
    """Return the event of one entry of the live event stream, or None."""
    try:
        kind = fields["type"]
        # Drop and stream endings carry only their subject's key: the payload is read when
        # the entry is fanned out (the final counts, the report).
        data = json.loads(fields["data"]) if "data" in fields else {}
    except (KeyError, ValueError):
        return None
    if kind not in EVENT_TYPES:
        return None
    at = _float(fields.get("at")) or int(entry_id.split("-")[0]) / 1000
    source = fields.get("key") or entry_id
    return Event(message_id(f"live|{source}"), kind, at, data, fields.get("campaign") or None)


def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw not in (None, "") else None
    except ValueError:
        return None
