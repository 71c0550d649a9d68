"""Each endpoint's delivery log: every attempt (when, result, HTTP status, latency, error, the
next try), newest first, filtered by event type and result; and its failed messages."""

from __future__ import annotations

import json
import re
from typing import Any

import redis

from core.errors import ValidationFailed

from . import keys

RESULTS = ("succeeded", "retrying", "failed")
CURSOR = r"^[0-9]{1,20}-[0-9]{1,20}$"
SCAN_MAX = 5_000  # entries one filtered page reads at most before answering a short page


def write(pipe, endpoint_id: str, entry: dict[str, Any], maxlen: int) -> None:
    """Queue one attempt's entry on a pipeline (values already strings or JSON)."""
    pipe.xadd(keys.log(endpoint_id), entry, maxlen=maxlen, approximate=True)


def _entry(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": entry_id,
        "at": float(fields["at"]),
        "msg_id": fields["msg"],
        "type": fields["type"],
        "attempt": int(fields["n"]),
        "result": fields["result"],
        "status": int(json.loads(fields.get("status", "0"))) or None,
        "latency_ms": round(float(json.loads(fields.get("latency_ms", "0"))), 1) or None,
        "error": fields.get("error"),
        "response": fields.get("response"),
        "next_at": float(fields["next_at"]) if "next_at" in fields else None,
    }
    return out


class DeliveryLog:
    """Read endpoints' attempts and failed messages."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r

    def attempts(
        self,
        endpoint_id: str,
        *,
        type: str | None = None,
        result: str | None = None,
        msg_id: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """Return one page of attempts, newest first, and the cursor of the next page."""
        if cursor is not None and not re.match(CURSOR, cursor):
            raise ValidationFailed("not a cursor of this log", field="cursor")
        top = f"({cursor}" if cursor else "+"
        items: list[dict[str, Any]] = []
        scanned = 0
        last = None
        while len(items) < limit and scanned < SCAN_MAX:
            chunk = self.r.xrevrange(keys.log(endpoint_id), top, "-", count=min(500, SCAN_MAX))
            if not chunk:
                last = None
                break
            for entry_id, fields in chunk:
                scanned += 1
                last = entry_id
                if type and fields.get("type") != type:
                    continue
                if result and fields.get("result") != result:
                    continue
                if msg_id and fields.get("msg") != msg_id:
                    continue
                items.append(_entry(entry_id, fields))
                if len(items) == limit:
                    break
            top = f"({last}"
        more = last is not None and bool(self.r.xrevrange(keys.log(endpoint_id), top, "-", count=1))
        return {"items": items, "next_cursor": last if more else None}

    def failed(self, endpoint_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """Return the endpoint's failed messages (retries ran out, or it was disabled)."""
        out = []
        for msg, raw in self.r.hscan_iter(keys.failed(endpoint_id), count=200):
            doc = json.loads(raw)
            job = json.loads(doc["job"])
            out.append(
                {"msg_id": msg, "type": job["type"], "attempts": job["n"], "why": doc["why"]}
            )
            if len(out) >= limit:
                break
        return out
