"""Who is watching: connections per stream across processes, healing when a process dies.

Each process keeps its viewers' connections in the stream's presence set with an expiry
(score = last heartbeat + TTL) and refreshes them every few seconds. A process that dies
stops refreshing, so its connections drop out of the count within one TTL; nothing has to
notice the death.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from . import keys

PRESENCE_TTL_S = 30.0


def presence_key(sid: str) -> str:
    """Sorted set: '<process>|<connection>' -> expiry time."""
    return f"{keys.stream(sid)}:presence"


class Presence:
    """Join, leave, heartbeat and count a stream's connections."""

    def __init__(self, r: redis.Redis, clock, process_id: str,
                 ttl_s: float = PRESENCE_TTL_S) -> None:
        self.r = r
        self.clock = clock
        self.process_id = process_id
        self.ttl_s = ttl_s

    def _member(self, connection_id: str) -> str:
        return f"{self.process_id}|{connection_id}"

    def join(self, sid: str, connection_id: str) -> int:
        """Add a connection; return the stream's viewer count."""
        now = self.clock.now()
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(presence_key(sid), {self._member(connection_id): now + self.ttl_s})
        pipe.zremrangebyscore(presence_key(sid), "-inf", now)
        pipe.zcard(presence_key(sid))
        return int(pipe.execute()[-1])

    def leave(self, sid: str, connection_id: str) -> int:
        """Remove a connection; return the stream's viewer count."""
        pipe = self.r.pipeline(transaction=False)
        pipe.zrem(presence_key(sid), self._member(connection_id))
        pipe.zremrangebyscore(presence_key(sid), "-inf", self.clock.now())
        pipe.zcard(presence_key(sid))
        return int(pipe.execute()[-1])

    def heartbeat(self, connections: Iterable[tuple[str, str]]) -> None:
        """Refresh this process's (stream, connection) pairs."""
        expires = self.clock.now() + self.ttl_s
        pipe = self.r.pipeline(transaction=False)
        for sid, connection_id in connections:
            pipe.zadd(presence_key(sid), {self._member(connection_id): expires})
        pipe.execute()

    def count(self, sid: str) -> int:
        """Return the live connections of a stream (expired ones are dropped)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.zremrangebyscore(presence_key(sid), "-inf", self.clock.now())
        pipe.zcard(presence_key(sid))
        return int(pipe.execute()[-1])
