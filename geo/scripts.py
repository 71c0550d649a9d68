"""The location engine's Lua scripts, and how they are called.

Each script's KEYS and ARGV are the fields of one dataclass, in field order: the script's
source starts with `local <field> = KEYS[i]` / `ARGV[i]` lines generated from that dataclass,
and a call's command is built from the same fields, so the order is written once. Every key of
a call is one shopper's (hash tag `{s:<id>}`, geo.keys): each script runs on one slot.
"""

from __future__ import annotations

import hashlib
import operator
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import redis

from . import keys

# Builds the shopper's state as one string, fields joined by newlines: ver, consent, last_t,
# trust, ob, last position, anchor, then the fence states as store/state pairs (one string
# parses far faster than nested arrays of small ones). Shared by both scripts.
_STATE_REPLY = """
local function state_reply()
  local st = redis.call('HMGET', state, 'ver', 'consent', 'last_t', 'trust', 'ob')
  local pos = redis.call('HMGET', position, 'last', 'anchor')
  local parts = {}
  for i = 1, 5 do parts[#parts + 1] = st[i] or '' end
  for i = 1, 2 do parts[#parts + 1] = pos[i] or '' end
  for _, v in ipairs(redis.call('HGETALL', fences)) do parts[#parts + 1] = v end
  return table.concat(parts, '\\n')
end
"""
STATE_FIELDS = ("ver", "consent", "last_t", "trust", "ob")


@dataclass(slots=True)
class ReadCall:
    """Read one shopper's state (see `parse_state`)."""

    KEYS: ClassVar[tuple[str, ...]] = ("state", "fences", "position")
    state: str
    fences: str
    position: str

    @classmethod
    def of(cls, shopper_id: str) -> ReadCall:
        return cls(
            keys.shopper_state(shopper_id),
            keys.shopper_fences(shopper_id),
            keys.shopper_position(shopper_id),
        )


READ_BODY = _STATE_REPLY + "return state_reply()\n"


@dataclass(slots=True)
class CommitCall:
    """Write one shopper's state transition if their state is still the one it was computed
    from (compare-and-set on `ver`).

    Replies 1 when written, -1 without consent, -2 when the guard key (a key under the
    shopper's hash tag that must exist for the fixes to count, e.g. the caller's session) is
    gone, and otherwise (the version moved) the current state as the read script gives it, so
    that the caller recomputes without reading again. Nothing is written unless it replies 1.
    Few large arguments keep the client's packing cost low; empty strings mean "unchanged".
    """

    KEYS: ClassVar[tuple[str, ...]] = ("state", "fences", "fixes", "outbox", "position", "guard")
    state: str
    fences: str
    fixes: str
    outbox: str
    position: str
    guard: str  # the guard key; the state key itself when unguarded (see `guarded`)
    expected_ver: str  # the version the transition was computed from
    new_ver: str  # a fresh random version (a state once lost to a failover is not reused)
    fixes_cutoff: str  # raw fixes recorded before this are dropped
    ttl: int  # retention: the expiry of fence states, raw fixes and position
    last_t: str  # the last processed fix's time ('' when no fix was processed)
    trust: str
    last: str  # last position ('' when unchanged)
    anchor: str  # last trusted fix
    set_states: str  # fence states to set: "store=state" lines
    del_states: str  # fence states to delete: store id lines
    fix_rows: str  # raw fixes: lines, each starting with its time before the first "|"
    events: str  # events for the outbox: JSON lines
    outbox_at: str  # when the outbox was written (a stale outbox is a crashed writer's)
    guarded: str = ""  # '1': refuse (-2) unless the guard key exists

    @classmethod
    def of(cls, shopper_id: str, guard: str | None = None, **argv: Any) -> CommitCall:
        """guard: a key under keys.shopper_tag(shopper_id) that must exist, or None."""
        state = keys.shopper_state(shopper_id)
        return cls(
            state,
            keys.shopper_fences(shopper_id),
            keys.shopper_fixes(shopper_id),
            keys.shopper_outbox(shopper_id),
            keys.shopper_position(shopper_id),
            guard or state,
            guarded="1" if guard else "",
            **argv,
        )


COMMIT_BODY = (
    _STATE_REPLY
    + """
if guarded == '1' and redis.call('EXISTS', guard) == 0 then return -2 end
if (redis.call('HGET', state, 'ver') or '0') ~= expected_ver then return state_reply() end
if redis.call('HGET', state, 'consent') ~= '1' then return -1 end
ttl = tonumber(ttl)
for line in string.gmatch(set_states, '[^\\n]+') do
  local sid, fstate = string.match(line, '^([^=]+)=(.*)$')
  redis.call('HSET', fences, sid, fstate)
end
for sid in string.gmatch(del_states, '[^\\n]+') do redis.call('HDEL', fences, sid) end
if redis.call('EXISTS', fences) == 1 then redis.call('EXPIRE', fences, ttl) end
if fix_rows ~= '' then
  for row in string.gmatch(fix_rows, '[^\\n]+') do
    redis.call('ZADD', fixes, string.match(row, '^[^|]+'), row)
  end
  redis.call('ZREMRANGEBYSCORE', fixes, '-inf', '(' .. fixes_cutoff)
  redis.call('EXPIRE', fixes, ttl)
end
if last_t ~= '' then redis.call('HSET', state, 'last_t', last_t, 'trust', trust) end
if last ~= '' then
  redis.call('HSET', position, 'last', last, 'anchor', anchor)
  redis.call('EXPIRE', position, ttl)
end
if events ~= '' then
  for line in string.gmatch(events, '[^\\n]+') do redis.call('RPUSH', outbox, line) end
  redis.call('HSET', state, 'ob', outbox_at)
end
redis.call('HSET', state, 'ver', new_ver)
return 1
"""
)


def new_version() -> str:
    """Return a fresh state version: random, so that no two writes give the same one."""
    return str(secrets.randbits(52) | 1 << 52)


def parse_state(raw: str) -> tuple[dict[str, str | None], dict[str, str], dict[str, str | None]]:
    """Split a state reply into (state fields, fence states, position)."""
    parts = raw.split("\n")
    state = {name: value or None for name, value in zip(STATE_FIELDS, parts[:5], strict=True)}
    flat = parts[7:]
    fences = dict(zip(flat[::2], flat[1::2], strict=True))
    return state, fences, {"last": parts[5] or None, "anchor": parts[6] or None}


class Script:
    """One Lua script: its source (KEYS/ARGV bound to the call type's field names) and SHA."""

    def __init__(self, name: str, call_type: type, body: str) -> None:
        names = [f.name for f in fields(call_type)]
        self.name = name
        self.key_names: tuple[str, ...] = call_type.KEYS
        self.arg_names = tuple(n for n in names if n not in self.key_names)
        assert names[: len(self.key_names)] == list(self.key_names), "keys come first"
        prologue = [f"local {k} = KEYS[{i}]" for i, k in enumerate(self.key_names, 1)]
        prologue += [f"local {a} = ARGV[{i}]" for i, a in enumerate(self.arg_names, 1)]
        self.source = "\n".join(prologue) + "\n" + body
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()
        self._values = operator.attrgetter(*self.key_names, *self.arg_names)

    def command(self, call: Any) -> tuple:
        """Return the EVALSHA command of a call (for a pipeline or execute_command)."""
        return ("EVALSHA", self.sha, len(self.key_names), *self._values(call))


READ = Script("read", ReadCall, READ_BODY)
COMMIT = Script("commit", CommitCall, COMMIT_BODY)


class Scripts:
    """The scripts, called by SHA (in pipelines too), reloaded if the server lost them."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.all = (READ, COMMIT)

    def load(self) -> None:
        """Load every script into the server's script cache."""
        for script in self.all:
            loaded = self.r.script_load(script.source)
            assert loaded == script.sha, (script.name, loaded)

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run fn(), loading the scripts and retrying once if the server had lost them."""
        try:
            return fn()
        except redis.exceptions.NoScriptError:
            self.load()
            return fn()

    def call(self, call: ReadCall | CommitCall) -> Any:
        """Run one script call on its own (one round trip)."""
        script = READ if isinstance(call, ReadCall) else COMMIT
        return self.run(lambda: self.r.execute_command(*script.command(call)))


__all__ = [
    "COMMIT",
    "READ",
    "CommitCall",
    "ReadCall",
    "Script",
    "Scripts",
    "new_version",
    "parse_state",
]
