"""A stream's broadcast history with offsets, so a reconnecting viewer gets what it missed.

Every event broadcast to a stream's room is also appended to a Redis Stream with its own
monotonic offset (`<n>-0`, from a counter, so offsets never depend on a server's clock). A
viewer that comes back with the last offset it saw receives the events after it — or, when
that offset has been trimmed away (too far behind), the answer says so and the caller sends
the current state instead (as Centrifugo's history recovery does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from core.scripts import LuaScripts

from . import keys

HISTORY_SIZE = 1_000
HISTORY_TTL_S = 2 * 86_400  # kept a while after the stream ends, then gone

# KEYS: history stream, offset counter      ARGV: event name, payload JSON, maxlen, ttl
APPEND = """
local n = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], n .. '-0', 'e', ARGV[1], 'p', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return n
"""


def history_key(sid: str) -> str:
    """Stream: the stream's broadcast events, offsets '<n>-0'."""
    return f"{keys.stream(sid)}:history"


def offset_key(sid: str) -> str:
    """Counter: the last offset given out."""
    return f"{keys.stream(sid)}:offset"


@dataclass
class Recovery:
    """What a reconnecting viewer missed: the events, or `too_far` (send the state)."""

    events: list[dict[str, Any]]
    offset: int
    too_far: bool


class History:
    """Append broadcast events with offsets; replay them after an offset."""

    def __init__(self, r: redis.Redis, size: int = HISTORY_SIZE) -> None:
        self.r = r
        self.size = size
        self.scripts = LuaScripts(r, {"append": APPEND})

    def append(self, sid: str, name: str, payload: dict[str, Any]) -> int:
        """Record one broadcast event and return its offset."""
        return int(
            self.scripts.call(
                "append",
                [history_key(sid), offset_key(sid)],
                [
                    name,
                    json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
                    self.size,
                    HISTORY_TTL_S,
                ],
            )
        )

    def offset(self, sid: str) -> int:
        """Return the stream's latest offset (0 before any event)."""
        return int(self.r.get(offset_key(sid)) or 0)

    def since(self, sid: str, offset: int, limit: int = 500) -> Recovery:
        """Return the events after `offset`, or too_far if some of them are gone."""
        pipe = self.r.pipeline(transaction=False)
        pipe.get(offset_key(sid))
        pipe.xrange(history_key(sid), f"({offset}-0", "+", count=limit + 1)
        pipe.xrange(history_key(sid), "-", "+", count=1)
        latest, rows, first = pipe.execute()
        latest = int(latest or 0)
        if offset > latest:
            return Recovery([], latest, True)  # an offset from another stream's numbering
        oldest = int(first[0][0].split("-")[0]) if first else latest + 1
        if offset < latest and (offset + 1 < oldest or len(rows) > limit):
            return Recovery([], latest, True)
        events = [
            {
                "offset": int(entry_id.split("-")[0]),
                "event": fields["e"],
                "data": json.loads(fields["p"]),
            }
            for entry_id, fields in rows
        ]
        return Recovery(events, latest, False)
