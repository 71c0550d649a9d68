"""Who is watching: distinct viewers per stream across processes, healing when a process dies.

Each process keeps its viewers' connections in the stream's presence with an expiry (last
heartbeat + `ttl_s`, 30 s) and says every second, per stream it has viewers in, that it is
alive (until now + `process_ttl_s`, 5 s). The count is the number of distinct viewers (a viewer
with two tabs, or one who reconnected through another process, is one) over connections of
processes that are alive: when a process dies, its connections stop counting within
`process_ttl_s`, without anyone having to notice the death. A connection whose process lives
but stopped refreshing it (a leave that never reached Redis) drops out after `ttl_s`.

All of a stream's presence keys share its hash tag; each change is one Lua script, which keeps
the per-viewer connection counts (and so the count, HLEN) exact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import redis

from core.scripts import LuaScripts

from . import keys

PRESENCE_TTL_S = 30.0
PROCESS_TTL_S = 5.0
HEARTBEAT_CHUNK = 1_000  # connections per script call

# KEYS: 1 expiries (zset member -> expiry)  2 members (zset, score 0, by process in lex order)
#       3 processes (hash process -> alive until)  4 viewers (hash viewer -> counted connections)
# A member is '<process>|<connection>|<viewer>'.
_COMMON = """
local function add(member, expires)
  redis.call('ZADD', KEYS[1], expires, member)
  if redis.call('ZADD', KEYS[2], 0, member) == 1 then
    redis.call('HINCRBY', KEYS[4], string.match(member, '[^|]*$'), 1)
  end
end
local function drop(member)
  redis.call('ZREM', KEYS[1], member)
  if redis.call('ZREM', KEYS[2], member) == 1 then
    local viewer = string.match(member, '[^|]*$')
    if redis.call('HINCRBY', KEYS[4], viewer, -1) <= 0 then
      redis.call('HDEL', KEYS[4], viewer)
    end
  end
end
local function reap(now)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
    drop(member)
  end
  local procs = redis.call('HGETALL', KEYS[3])
  for i = 1, #procs, 2 do
    if tonumber(procs[i + 1]) <= now then
      local prefix = procs[i] .. '|'
      for _, member in ipairs(redis.call('ZRANGEBYLEX', KEYS[2], '[' .. prefix,
                                         '[' .. prefix .. '\\255')) do
        drop(member)
      end
      redis.call('HDEL', KEYS[3], procs[i])
    end
  end
end
"""

# ARGV: now, process, alive until, expires, member
JOIN = (
    _COMMON
    + """
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
add(ARGV[5], ARGV[4])
reap(tonumber(ARGV[1]))
return redis.call('HLEN', KEYS[4])
"""
)

# ARGV: now, member
LEAVE = (
    _COMMON
    + """
drop(ARGV[2])
reap(tonumber(ARGV[1]))
return redis.call('HLEN', KEYS[4])
"""
)

# ARGV: now, process, alive until, expires, member...
# A process that was taken for dead (a long pause) and comes back puts its connections back.
HEARTBEAT = (
    _COMMON
    + """
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
for i = 5, #ARGV do add(ARGV[i], ARGV[4]) end
return 1
"""
)

# ARGV: now
COUNT = (
    _COMMON
    + """
reap(tonumber(ARGV[1]))
return redis.call('HLEN', KEYS[4])
"""
)


def presence_key(sid: str) -> str:
    """Sorted set: '<process>|<connection>|<viewer>' -> expiry time."""
    return f"{keys.stream(sid)}:presence"


def members_key(sid: str) -> str:
    """Sorted set (all scores 0): the same members, found by process in lexical order."""
    return f"{keys.stream(sid)}:presence:members"


def processes_key(sid: str) -> str:
    """Hash: process id -> alive until (refreshed every second by the process's ticker)."""
    return f"{keys.stream(sid)}:presence:processes"


def viewers_key(sid: str) -> str:
    """Hash: viewer id -> connections of that viewer that count (HLEN = the viewer count)."""
    return f"{keys.stream(sid)}:presence:viewers"


def _keys(sid: str) -> list[str]:
    return [presence_key(sid), members_key(sid), processes_key(sid), viewers_key(sid)]


class Presence:
    """Join, leave, heartbeat and count a stream's viewers."""

    def __init__(
        self,
        r: redis.Redis,
        clock,
        process_id: str,
        ttl_s: float = PRESENCE_TTL_S,
        process_ttl_s: float = PROCESS_TTL_S,
    ) -> None:
        if "|" in process_id:
            raise ValueError("a process id cannot contain '|'")
        self.r = r
        self.clock = clock
        self.process_id = process_id
        self.ttl_s = ttl_s
        self.process_ttl_s = process_ttl_s
        self.scripts = LuaScripts(
            r, {"join": JOIN, "leave": LEAVE, "heartbeat": HEARTBEAT, "count": COUNT}
        )

    def _member(self, connection_id: str, viewer_id: str) -> str:
        return f"{self.process_id}|{connection_id}|{viewer_id}"

    def join(self, sid: str, connection_id: str, viewer_id: str) -> int:
        """Add a viewer's connection; return the stream's viewer count."""
        now = self.clock.now()
        return int(
            self.scripts.call(
                "join",
                _keys(sid),
                [
                    repr(now),
                    self.process_id,
                    repr(now + self.process_ttl_s),
                    repr(now + self.ttl_s),
                    self._member(connection_id, viewer_id),
                ],
            )
        )

    def leave(self, sid: str, connection_id: str, viewer_id: str) -> int:
        """Remove a viewer's connection; return the stream's viewer count."""
        return int(
            self.scripts.call(
                "leave",
                _keys(sid),
                [repr(self.clock.now()), self._member(connection_id, viewer_id)],
            )
        )

    def heartbeat(self, connections: Iterable[tuple[str, str, str]]) -> None:
        """Say this process is alive and refresh its (stream, connection, viewer) triples."""
        by_stream: dict[str, list[str]] = defaultdict(list)
        for sid, connection_id, viewer_id in connections:
            by_stream[sid].append(self._member(connection_id, viewer_id))
        if not by_stream:
            return
        now = self.clock.now()
        head = [repr(now), self.process_id, repr(now + self.process_ttl_s), repr(now + self.ttl_s)]

        def send() -> None:
            pipe = self.r.pipeline(transaction=False)
            for sid, members in by_stream.items():
                for start in range(0, len(members), HEARTBEAT_CHUNK):
                    self.scripts.queue(
                        pipe,
                        "heartbeat",
                        _keys(sid),
                        head + members[start : start + HEARTBEAT_CHUNK],
                    )
            pipe.execute()

        try:
            send()
        except redis.exceptions.NoScriptError:
            self.scripts.load()
            send()  # refreshing twice is harmless

    def count(self, sid: str) -> int:
        """Return the distinct viewers of a stream on live processes."""
        return int(self.scripts.call("count", _keys(sid), [repr(self.clock.now())]))
