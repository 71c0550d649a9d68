"""The audit log: who changed what and when, append-only in one Redis stream.

Every change a marketer or admin makes through the API (stores and their fences and hours,
campaigns, offers, grants, game set-up, membership programs, coupon voids) is one entry:
the actor ("role:user"), the time from the injected clock, the action, the kind and id of the
object, and only the fields that changed, before → after. A value too large to keep (a
5,000-vertex polygon) is replaced by a marker with its size, so an entry stays bounded.
The stream is capped at `max_entries` (exact MAXLEN, cheap at this write rate): the oldest
entries go first. One stream means one key, so in a Redis Cluster it lives on one slot,
which is fine for the write rate of people editing campaigns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import redis

from .clock import Clock

KEY = "audit:log"
CURSOR_PATTERN = r"^[0-9]{1,19}-[0-9]{1,19}$"  # a stream entry id (below 2**64 each)
MAX_VALUE_CHARS = 2000  # one field's JSON above this is kept as a size marker only
BATCH = 500
SCAN_LIMIT = 10_000  # entries read per query at most; a filtered page may end early with a cursor
# The entry's own time says when; a record's timestamp of its last change is no news.
ALWAYS_IGNORED = frozenset({"updated_at"})


@dataclass(frozen=True)
class AuditFilter:
    """What a query keeps; None matches everything."""

    actor: str | None = None
    action: str | None = None
    kind: str | None = None
    object_id: str | None = None
    since: float | None = None  # unix seconds, inclusive
    until: float | None = None  # unix seconds, exclusive

    def matches(self, entry: dict[str, Any]) -> bool:
        """Tell whether an entry passes every filter that is set."""
        for name in ("actor", "action", "kind", "object_id"):
            wanted = getattr(self, name)
            if wanted is not None and entry[name] != wanted:
                return False
        if self.since is not None and entry["ts"] < self.since:
            return False
        return not (self.until is not None and entry["ts"] >= self.until)


def diff(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    ignore: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (before, after) restricted to the top-level fields that differ, values bounded."""
    before = before or {}
    after = after or {}
    names = [n for n in {**before, **after} if n not in ignore and n not in ALWAYS_IGNORED]
    changed = [n for n in names if before.get(n) != after.get(n)]
    return (
        {n: _bounded(before[n]) for n in changed if n in before},
        {n: _bounded(after[n]) for n in changed if n in after},
    )


def _bounded(value: Any) -> Any:
    text = json.dumps(value, separators=(",", ":"), default=str)
    if len(text) <= MAX_VALUE_CHARS:
        return value
    return {"truncated": True, "chars": len(text)}


class AuditLog:
    """Append-only record of changes, newest first on reading."""

    def __init__(self, r: redis.Redis, clock: Clock, *, max_entries: int = 100_000) -> None:
        self.r = r
        self.clock = clock
        self.max_entries = max_entries

    def record(
        self,
        actor: str,
        action: str,
        kind: str,
        object_id: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        *,
        ignore: frozenset[str] = frozenset(),
    ) -> str:
        """Append one change (only the fields that differ) and return its entry id."""
        old, new = diff(before, after, ignore)
        fields = {
            "ts": repr(round(self.clock.now(), 3)),
            "actor": actor,
            "action": action,
            "kind": kind,
            "object_id": object_id,
            "before": json.dumps(old, separators=(",", ":"), default=str),
            "after": json.dumps(new, separators=(",", ":"), default=str),
        }
        return self.r.xadd(KEY, fields, maxlen=self.max_entries, approximate=False)

    def query(
        self, where: AuditFilter | None = None, *, cursor: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        """Return a page of entries newest first; next_cursor continues after the last one read.

        At most SCAN_LIMIT entries are read per call, so a narrow filter over a long log may
        answer a short (even empty) page with a next_cursor: follow it to read on.
        """
        where = where or AuditFilter()
        if cursor is not None and not re.match(CURSOR_PATTERN, cursor):
            raise ValueError("bad cursor")
        if cursor is not None and not any(int(part) for part in cursor.split("-")):
            return {"items": [], "next_cursor": None}  # nothing is older than the first id
        items: list[dict[str, Any]] = []
        top = f"({cursor}" if cursor else "+"
        scanned = 0
        last_id: str | None = None
        exhausted = False
        while len(items) < limit and scanned < SCAN_LIMIT:
            batch = self.r.xrevrange(KEY, max=top, min="-", count=BATCH)
            if not batch:
                exhausted = True
                break
            for entry_id, raw in batch:
                scanned += 1
                last_id = entry_id
                entry = _decode(entry_id, raw)
                if where.matches(entry):
                    items.append(entry)
                    if len(items) == limit:
                        break
                if scanned >= SCAN_LIMIT:
                    break
            if len(batch) < BATCH and last_id == batch[-1][0]:
                exhausted = True
                break
            top = f"({last_id}"
        more = not exhausted and last_id is not None
        if more:  # one look past the last entry read, so the last page says it is the last
            more = bool(self.r.xrevrange(KEY, max=f"({last_id}", min="-", count=1))
        return {"items": items, "next_cursor": last_id if more else None}

    def count(self) -> int:
        """Return how many entries the log holds now."""
        return self.r.xlen(KEY)


def _decode(entry_id: str, raw: dict[str, str]) -> dict[str, Any]:
    return {
        "id": entry_id,
        "ts": float(raw["ts"]),
        "actor": raw["actor"],
        "action": raw["action"],
        "kind": raw["kind"],
        "object_id": raw["object_id"],
        "before": json.loads(raw["before"]),
        "after": json.loads(raw["after"]),
    }
