"""Live events for receivers: the live package tells this when a drop starts, sells out or a
stream ends; the events go to the `{wx}` event stream, where the fan-out reads them.

A drop ends by itself when its window closes, so each started drop is put in a schedule of
endings (same slot as the stream): one script takes the due endings and appends their events,
so each drop's end is appended once, by one process, and never lost between the two.
"""

from __future__ import annotations

import redis

from core.scripts import LuaScripts

from . import keys

DROPS_DUE = "wh:{wx}:drops_due"  # sorted set: '<stream>|<drop>' -> when the drop ends
EVENTS_MAXLEN = 100_000

# KEYS: drops due, events   ARGV: now, limit, max length
DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'type', 'live.drop_ended',
             'key', 'drop:' .. member, 'at', ARGV[1])
end
return #due
"""


class LiveEvents:
    """Record live events for the webhooks (cheap: one command each, off the hot paths)."""

    def __init__(self, r: redis.Redis, clock) -> None:
        self.r = r
        self.clock = clock
        self.scripts = LuaScripts(r, {"due": DUE})

    def drop_started(self, sid: str, did: str, ends_at: float) -> None:
        """Schedule a drop's end."""
        self.r.zadd(DROPS_DUE, {f"{sid}|{did}": ends_at})

    def drop_sold_out(self, sid: str, did: str) -> None:
        """A drop sold out: it ends now (if its end is still scheduled)."""
        self.r.zadd(DROPS_DUE, {f"{sid}|{did}": 0}, xx=True)

    def stream_ended(self, sid: str) -> None:
        """A stream ended: its report summary is sent."""
        self.r.xadd(
            keys.EVENTS,
            {"type": "live.stream_ended", "key": f"stream:{sid}", "at": repr(self.clock.now())},
            maxlen=EVENTS_MAXLEN,
            approximate=True,
        )

    def due(self, limit: int = 200) -> int:
        """Append the end events of every drop due by now; return how many."""
        now = self.clock.now()
        return int(
            self.scripts.call("due", [DROPS_DUE, keys.EVENTS], [repr(now), limit, EVENTS_MAXLEN])
        )
