"""The game's Lua scripts and their arguments, by name: a catch attempt, a reward, a strike and
the two state reads, each on one slot.

Each script has a call class whose fields are its KEYS and ARGV: `KEYS` and `ARGV` list the
field names in the script's order, and the script's source starts with locals of the same
names (`local state_key, attempts_key = KEYS[1], KEYS[2]` ...), generated from those lists. The
order is written once, here; callers fill the fields by name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, ClassVar

from geo.keys import shopper_position, shopper_state

from . import keys


def roll_for(spawn_id: str, shopper_id: str, attempt: int) -> tuple[float, float]:
    """Return the (catch, flee) rolls of one attempt, as the CATCH script computes them."""
    digest = hashlib.sha1(f"{spawn_id}|{shopper_id}|{attempt}".encode()).hexdigest()
    return int(digest[:8], 16) / 2**32, int(digest[8:16], 16) / 2**32


class ScriptCall:
    """The KEYS and ARGV of one script call, as named fields (see the module docstring)."""

    NAME: ClassVar[str]
    KEYS: ClassVar[tuple[str, ...]]
    ARGV: ClassVar[tuple[str, ...]] = ()
    BODY: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._get_keys = staticmethod(_getter(cls.KEYS))
        cls._get_args = staticmethod(_getter(cls.ARGV))

    def keys(self) -> list:
        """Return KEYS in the script's order."""
        return self._get_keys(self)

    def args(self) -> list:
        """Return ARGV in the script's order."""
        return self._get_args(self)

    def call(self, scripts) -> Any:
        """Run the script (core.scripts.LuaScripts) with these arguments."""
        return scripts.call(self.NAME, self.keys(), self.args())

    def queue(self, scripts, pipe) -> None:
        """Queue the script with these arguments on a pipeline."""
        scripts.queue(pipe, self.NAME, self.keys(), self.args())

    @classmethod
    def source(cls) -> str:
        """Return the Lua source: locals named as the fields, then the body."""
        head = []
        for table, names in (("KEYS", cls.KEYS), ("ARGV", cls.ARGV)):
            if names:
                values = ", ".join(f"{table}[{i}]" for i in range(1, len(names) + 1))
                head.append(f"local {', '.join(names)} = {values}")
        return "\n".join(head) + "\n" + cls.BODY.strip() + "\n"


def _getter(names: tuple[str, ...]):
    if not names:
        return lambda obj: []
    get = attrgetter(*names)
    if len(names) == 1:
        return lambda obj: [get(obj)]
    return lambda obj: list(get(obj))


@dataclass(slots=True)
class CatchCall(ScriptCall):
    """A catch attempt: the caps (suspension, consent, first catch, cooldown, daily cap) checked
    and the attempt recorded in one script on the shopper's slot.

    The roll is sha1(spawn|shopper|attempt): the same attempt always rolls the same, a retry is
    a new attempt, and an auditor recomputes any roll from the three values. Nothing stored
    names the spawn (its id carries its map cell or store): attempts are kept under its opaque
    reference, and the last catch's place expires with the raw fixes.
    Returns {'no', code[, cooldown until]} or {outcome, attempt}.
    """

    NAME: ClassVar[str] = "catch"
    KEYS: ClassVar[tuple[str, ...]] = (
        "state_key",
        "attempts_key",
        "collection_key",
        "recent_key",
        "last_catch_key",
        "boards_key",
        "geo_state_key",
    )
    ARGV: ClassVar[tuple[str, ...]] = (
        "now",
        "spawn",
        "shopper",
        "day",
        "cooldown_s",
        "daily_cap",
        "catch_rate",
        "flee_rate",
        "species_field",
        "attempts_ttl_s",
        "lat",
        "lon",
        "rate_window_s",
        "city",
        "ref",
        "last_catch_ttl_s",
        "board",
    )
    BODY: ClassVar[str] = """
local t = tonumber(now)
local st = redis.call('HMGET', state_key, 'last_attempt', 'day', 'day_catches', 'suspended')
if st[4] == '1' then return {'no', 'SUSPENDED'} end
-- Consent withdrawn since it was read: write no place after geo's erasure.
if redis.call('HGET', geo_state_key, 'consent') ~= '1' then return {'no', 'CONSENT'} end
local prev = redis.call('HGET', attempts_key, ref)
if prev == 'caught' then return {'no', 'ALREADY_CAUGHT'} end
if prev == 'fled' then return {'no', 'FLED'} end
local cooldown = tonumber(cooldown_s)
if st[1] and t - tonumber(st[1]) < cooldown then
  return {'no', 'COOLDOWN', tostring(tonumber(st[1]) + cooldown)}
end
local today = 0
if st[2] == day then today = tonumber(st[3] or 0) end
if today >= tonumber(daily_cap) then return {'no', 'DAILY_CAP_REACHED'} end
local attempt = tonumber(prev or 0) + 1
local h = redis.sha1hex(spawn .. '|' .. shopper .. '|' .. attempt)
local roll = tonumber(string.sub(h, 1, 8), 16) / 4294967296
local flee = tonumber(string.sub(h, 9, 16), 16) / 4294967296
local window = tonumber(rate_window_s)
redis.call('ZADD', recent_key, t, ref .. '|' .. attempt)
redis.call('ZREMRANGEBYSCORE', recent_key, '-inf', t - window)
redis.call('EXPIRE', recent_key, window)
local outcome = 'missed'
local mark = attempt
if roll < tonumber(catch_rate) then
  outcome, mark = 'caught', 'caught'
  redis.call('HSET', state_key, 'last_attempt', now, 'day', day, 'day_catches', today + 1)
  redis.call('HSET', last_catch_key, 'at', now, 'lat', lat, 'lon', lon, 'city', city)
  redis.call('EXPIRE', last_catch_key, tonumber(last_catch_ttl_s))
  redis.call('HINCRBY', collection_key, species_field, 1)
  redis.call('SADD', boards_key, board)
else
  redis.call('HSET', state_key, 'last_attempt', now)
  if flee < tonumber(flee_rate) then outcome, mark = 'fled', 'fled' end
end
redis.call('HSET', attempts_key, ref, mark)
redis.call('EXPIRE', attempts_key, tonumber(attempts_ttl_s))
return {outcome, attempt}
"""
    state_key: str
    attempts_key: str
    collection_key: str
    recent_key: str
    last_catch_key: str
    boards_key: str
    geo_state_key: str
    now: float
    spawn: str
    shopper: str
    day: str
    cooldown_s: float
    daily_cap: int
    catch_rate: float
    flee_rate: float
    species_field: str  # '<campaign>|<species>' in the collection
    attempts_ttl_s: int
    lat: float
    lon: float
    rate_window_s: int
    city: str
    ref: str  # the spawn's opaque reference
    last_catch_ttl_s: int  # the fix retention
    board: str  # '<campaign>|<city>|<day>' in the shopper's boards set (for erasure)

    @classmethod
    def for_shopper(cls, shopper_id: str, **argv: Any) -> CatchCall:
        """Return the call with the shopper's keys (all on the shopper's slot)."""
        return cls(
            state_key=keys.state(shopper_id),
            attempts_key=keys.attempts(shopper_id),
            collection_key=keys.collection(shopper_id),
            recent_key=keys.recent(shopper_id),
            last_catch_key=keys.last_catch(shopper_id),
            boards_key=keys.boards(shopper_id),
            geo_state_key=shopper_state(shopper_id),
            shopper=shopper_id,
            **argv,
        )


@dataclass(slots=True)
class RewardCall(ScriptCall):
    """Points on the four boards of a catch, once per catch (on the campaign's slot).

    Returns {1 if first else 0, the shopper's campaign total}. The rewarded hash and a day's
    boards get their expiry when they are created (EXPIRE NX): the hash is of spawns born in
    one hour, caught within two hours of it, and a day's board is kept for a fixed time.
    """

    NAME: ClassVar[str] = "reward"
    KEYS: ClassVar[tuple[str, ...]] = (
        "rewarded_key",
        "campaign_all_key",
        "campaign_day_key",
        "city_all_key",
        "city_day_key",
    )
    ARGV: ClassVar[tuple[str, ...]] = (
        "catch_id",
        "shopper",
        "points",
        "day_board_ttl_s",
        "rewarded_ttl_s",
    )
    BODY: ClassVar[str] = """
local first = redis.call('HSETNX', rewarded_key, catch_id, points)
redis.call('EXPIRE', rewarded_key, tonumber(rewarded_ttl_s), 'NX')
local total = nil
if first == 1 then
  local n = tonumber(points)
  total = redis.call('ZINCRBY', campaign_all_key, n, shopper)
  redis.call('ZINCRBY', campaign_day_key, n, shopper)
  redis.call('ZINCRBY', city_all_key, n, shopper)
  redis.call('ZINCRBY', city_day_key, n, shopper)
  redis.call('EXPIRE', campaign_day_key, tonumber(day_board_ttl_s), 'NX')
  redis.call('EXPIRE', city_day_key, tonumber(day_board_ttl_s), 'NX')
else
  total = redis.call('ZSCORE', campaign_all_key, shopper) or '0'
end
return {first, total}
"""
    rewarded_key: str
    campaign_all_key: str
    campaign_day_key: str
    city_all_key: str
    city_day_key: str
    catch_id: str
    shopper: str
    points: int
    day_board_ttl_s: int
    rewarded_ttl_s: int


@dataclass(slots=True)
class StrikeCall(ScriptCall):
    """Record an incident, counted as a strike unless one of its kind counted lately.

    Three strikes: a warning, then a shadow restriction, then suspension. One incident (a burst
    of spoofed fixes, say) counts once: a strike of the same kind less than the cooldown after
    the last counted one is recorded with its evidence but not counted. Returns {count,
    counted}.
    """

    NAME: ClassVar[str] = "strike"
    KEYS: ClassVar[tuple[str, ...]] = ("state_key", "strikes_key")
    ARGV: ClassVar[tuple[str, ...]] = (
        "now",
        "counted_record",
        "cooldown_s",
        "shadow_s",
        "uncounted_record",
        "reason",
        "history_max",
    )
    BODY: ClassVar[str] = """
local t = tonumber(now)
local since = 'last_strike_at:' .. reason
local st = redis.call('HMGET', state_key, 'strikes', since, 'suspended')
local count = tonumber(st[1] or 0)
local counted = 1
if st[3] == '1' or (st[2] and t - tonumber(st[2]) < tonumber(cooldown_s)) then counted = 0 end
if counted == 1 then
  count = count + 1
  redis.call('RPUSH', strikes_key, counted_record)
  redis.call('HSET', state_key, 'strikes', count, since, now)
  if count == 2 then
    redis.call('HSET', state_key, 'restricted_until', t + tonumber(shadow_s))
  elseif count >= 3 then
    redis.call('HSET', state_key, 'suspended', '1')
  end
else
  redis.call('RPUSH', strikes_key, uncounted_record)
end
redis.call('LTRIM', strikes_key, -tonumber(history_max), -1)
return {count, counted}
"""
    state_key: str
    strikes_key: str
    now: str
    counted_record: str  # JSON
    cooldown_s: float
    shadow_s: float
    uncounted_record: str  # JSON
    reason: str
    history_max: int


@dataclass(slots=True)
class ViewStateCall(ScriptCall):
    """The spawn list's read, one command (the keys share the shopper's slot): the anchor, the
    suspension and restriction, and the attempts hash (references of the spawns tried lately
    with 'caught' / 'fled' / a count, so the list can say which are caught already).
    Returns {anchor, suspended, restricted_until, HGETALL attempts}."""

    NAME: ClassVar[str] = "view_state"
    KEYS: ClassVar[tuple[str, ...]] = ("position_key", "state_key", "attempts_key")
    BODY: ClassVar[str] = """
local s = redis.call('HMGET', state_key, 'suspended', 'restricted_until')
return {redis.call('HGET', position_key, 'anchor'), s[1], s[2], redis.call('HGETALL', attempts_key)}
"""
    position_key: str
    state_key: str
    attempts_key: str

    @classmethod
    def for_shopper(cls, shopper_id: str) -> ViewStateCall:
        return cls(shopper_position(shopper_id), keys.state(shopper_id), keys.attempts(shopper_id))


@dataclass(slots=True)
class CatchStateCall(ScriptCall):
    """What the catch rules that run in Python read, in one command on the shopper's slot.
    Returns {anchor, consent, trust, suspended, restricted_until, last catch at, lat, lon,
    city, attempts since}."""

    NAME: ClassVar[str] = "catch_state"
    KEYS: ClassVar[tuple[str, ...]] = (
        "position_key",
        "geo_state_key",
        "state_key",
        "recent_key",
        "last_catch_key",
    )
    ARGV: ClassVar[tuple[str, ...]] = ("since",)
    BODY: ClassVar[str] = """
local g = redis.call('HMGET', geo_state_key, 'consent', 'trust')
local s = redis.call('HMGET', state_key, 'suspended', 'restricted_until')
local c = redis.call('HMGET', last_catch_key, 'at', 'lat', 'lon', 'city')
return {redis.call('HGET', position_key, 'anchor'), g[1], g[2], s[1], s[2], c[1], c[2], c[3], c[4],
        redis.call('ZCOUNT', recent_key, since, '+inf')}
"""
    position_key: str
    geo_state_key: str
    state_key: str
    recent_key: str
    last_catch_key: str
    since: float

    @classmethod
    def for_shopper(cls, shopper_id: str, since: float) -> CatchStateCall:
        return cls(
            shopper_position(shopper_id),
            shopper_state(shopper_id),
            keys.state(shopper_id),
            keys.recent(shopper_id),
            keys.last_catch(shopper_id),
            since,
        )


CALLS: tuple[type[ScriptCall], ...] = (
    CatchCall,
    RewardCall,
    StrikeCall,
    ViewStateCall,
    CatchStateCall,
)
SOURCES = {call.NAME: call.source() for call in CALLS}
