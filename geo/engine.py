"""Location fixes in, geofence events out: spoof verdicts and a per-(shopper, fence) state machine.

One call handles any number of shoppers with a fixed number of Redis round trips per chunk of
shoppers:
1. read: each shopper's state, position and fence states (and, at most every
   `catalog_check_s` or right after this process changed the catalog, the catalog version);
   the candidate fences of every fix come from this process's own fence index
   (geo.fence_index), which gives what a GEOSEARCH per fence tier gave, without Redis;
2. commit: one Lua script per shopper checks the state version it read (compare-and-set), then
   writes fence states, raw fixes, position, trust and an outbox of events together;
3. only when there are events: append them to the shopper's partition of the event stream,
   then empty the outbox.
A shopper whose state changed between 1 and 2 (another process) is read and computed again.
Every round trip is one pipeline on one pooled connection, given back before the next one is
taken: a call never holds a connection while it waits for another, so any number of concurrent
calls share a bounded pool without deadlocking (they queue for it instead).
See README "Geofencing rules" for the rules themselves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from core.clock import Clock
from core.errors import DomainError

from . import keys
from .fence_index import FenceIndex
from .geometry import fast_distance_m
from .motion import Point, elapsed_s, ground_speed_mps
from .stores import StoreCatalog, StoreEntry, entry_from_record

log = logging.getLogger(__name__)

TRUST_DELTA = {"ok": 1, "inaccurate": 0, "too_fast": -15, "mocked": -25, "jump": -30}
TRUST_START = 100
MAX_CAS_RETRIES = 20
CHUNK = 250  # shoppers per read/commit batch in a call
OUTBOX_GRACE_S = 10.0

# KEYS: state, fence states, fixes, outbox, position.
# ARGV: expected version, fixes cutoff, retention ttl, last_t, trust, last position, anchor,
#   fence states to set ("store=state" lines), fence states to delete (lines), raw fixes (lines,
#   each starting with its time before the first "|"), events (JSON lines), the time the
#   outbox was written (for crash detection). Few large arguments
#   keep the client's packing cost low.
# Returns 1 when written, 0 when the version moved (caller re-reads), -1 without consent.
COMMIT_LUA = """
local ver = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if ver ~= tonumber(ARGV[1]) then return 0 end
if redis.call('HGET', KEYS[1], 'consent') ~= '1' then return -1 end
local ttl = tonumber(ARGV[3])
for line in string.gmatch(ARGV[8], '[^\\n]+') do
  local sid, state = string.match(line, '^([^=]+)=(.*)$')
  redis.call('HSET', KEYS[2], sid, state)
end
for sid in string.gmatch(ARGV[9], '[^\\n]+') do redis.call('HDEL', KEYS[2], sid) end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ttl) end
if ARGV[10] ~= '' then
  for row in string.gmatch(ARGV[10], '[^\\n]+') do
    redis.call('ZADD', KEYS[3], string.match(row, '^[^|]+'), row)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[2])
  redis.call('EXPIRE', KEYS[3], ttl)
end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'last_t', ARGV[4], 'trust', ARGV[5]) end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[5], 'last', ARGV[6], 'anchor', ARGV[7])
  redis.call('EXPIRE', KEYS[5], ttl)
end
if ARGV[11] ~= '' then
  for event in string.gmatch(ARGV[11], '[^\\n]+') do redis.call('RPUSH', KEYS[4], event) end
  redis.call('HSET', KEYS[1], 'ob', ARGV[12])
end
redis.call('HSET', KEYS[1], 'ver', ver + 1)
return 1
"""

# KEYS: state, fence states, position of one shopper. Returns one string, fields joined by
# newlines: ver, consent, last_t, trust, ob, last position, anchor, then the fence states as
# store/state pairs (one string parses far faster than nested arrays of small ones).
READ_LUA = """
local st = redis.call('HMGET', KEYS[1], 'ver', 'consent', 'last_t', 'trust', 'ob')
local pos = redis.call('HMGET', KEYS[3], 'last', 'anchor')
local parts = {}
for i = 1, 5 do parts[#parts + 1] = st[i] or '' end
for i = 1, 2 do parts[#parts + 1] = pos[i] or '' end
for _, v in ipairs(redis.call('HGETALL', KEYS[2])) do parts[#parts + 1] = v end
return table.concat(parts, '\\n')
"""
STATE_FIELDS = ("ver", "consent", "last_t", "trust", "ob")


class _Scripts:
    """Lua scripts called by SHA inside pipelines, reloaded if the server lost them."""

    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.sources = {"read": READ_LUA, "commit": COMMIT_LUA}
        self.sha = {name: _sha1(src) for name, src in self.sources.items()}

    def load(self) -> None:
        """Load every script into the server's script cache."""
        for name, src in self.sources.items():
            self.sha[name] = self.r.script_load(src)

    def run(self, fn):
        """Run fn(), loading the scripts and retrying once if the server had lost them."""
        try:
            return fn()
        except redis.exceptions.NoScriptError:
            self.load()
            return fn()


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _pairs(flat: list) -> dict:
    return dict(zip(flat[::2], flat[1::2], strict=True))


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Tunables of the geofence rules and spoof checks."""

    dwell_s: float = 120.0
    max_accuracy_m: float = 150.0
    min_overlap: float = 0.75
    exit_confirm_s: float = 60.0
    max_speed_mps: float = 50.0
    jump_m: float = 10_000.0
    jump_window_s: float = 600.0
    retention_s: int = 24 * 3600
    max_age_s: float = 24 * 3600
    max_future_s: float = 300.0
    clock_slack_s: float = 10.0  # how far past its receive time a fix's stamp still counts
    transit_min_m: float = 20.0
    stream_maxlen: int = 1_000_000  # all partitions together (each keeps about 1/P of it)
    event_partitions: int = keys.EVENT_PARTITIONS
    catalog_check_s: float = 1.0  # how long a process trusts its fence index unchecked

    @classmethod
    def from_config(cls, config: Any) -> EngineSettings:
        """Take the GEOFENCE_/SPOOF_/FIX_ settings of an app configuration."""
        return cls(
            dwell_s=config.GEOFENCE_DWELL_S,
            max_accuracy_m=config.GEOFENCE_MAX_ACCURACY_M,
            min_overlap=config.GEOFENCE_MIN_OVERLAP,
            exit_confirm_s=config.GEOFENCE_EXIT_CONFIRM_S,
            max_speed_mps=config.SPOOF_MAX_SPEED_MPS,
            jump_m=config.SPOOF_JUMP_M,
            jump_window_s=config.SPOOF_JUMP_WINDOW_S,
            retention_s=config.FIX_RETENTION_S,
            max_age_s=config.FIX_RETENTION_S,
            max_future_s=config.FIX_MAX_FUTURE_S,
            event_partitions=config.GEO_EVENT_PARTITIONS,
            catalog_check_s=config.GEO_CATALOG_CHECK_MS / 1000.0,
        )


@dataclass(frozen=True, slots=True)
class Fix:
    """One location fix as the phone recorded it."""

    lat: float
    lon: float
    accuracy_m: float
    recorded_at: float
    speed_mps: float | None = None
    mock: bool = False


@dataclass(slots=True)
class FixResult:
    """What became of one fix."""

    recorded_at: float
    verdict: str
    ignored: bool = False
    reason: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    trust: int | None = None  # the shopper's trust score after this fix

    def to_dict(self) -> dict[str, Any]:
        """Return the result for API answers."""
        return {
            "recorded_at": self.recorded_at,
            "verdict": self.verdict,
            "ignored": self.ignored,
            "reason": self.reason,
            "trust": self.trust,
            "events": self.events,
        }


class EventSink:
    """Where committed geofence events are pushed besides the stream (e.g. socket rooms)."""

    def publish(self, shopper_id: str, events: Sequence[dict[str, Any]]) -> None:
        """Deliver a shopper's new events."""


@dataclass(slots=True)
class _FenceState:
    entered_at: float
    dwelled: bool
    pending_since: float  # 0 when no exit is pending

    def encode(self) -> str:
        return f"{self.entered_at:.3f}|{int(self.dwelled)}|{self.pending_since:.3f}"

    @classmethod
    def decode(cls, raw: str) -> _FenceState:
        entered, dwelled, pending = raw.split("|")
        return cls(float(entered), dwelled == "1", float(pending))


@dataclass(slots=True)
class _Work:
    """One shopper's pass through the engine."""

    shopper_id: str
    fixes: list[Fix]
    results: list[FixResult] = field(default_factory=list)
    error: DomainError | None = None
    version: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    pending_add: dict[str, float] = field(default_factory=dict)
    commit_args: list[Any] | None = None
    stale_outbox: bool = False  # a crashed process left events that never reached the stream


class LocationEngine:
    """Process location fixes into spoof verdicts and geofence events."""

    def __init__(
        self,
        r: redis.Redis,
        catalog: StoreCatalog,
        clock: Clock,
        settings: EngineSettings | None = None,
        sink: EventSink | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.r = r
        self.catalog = catalog
        self.clock = clock
        self.settings = settings or EngineSettings()
        self.sink = sink or EventSink()
        self._scripts = _Scripts(r)
        self._cache_version = -1
        self._entries: dict[str, StoreEntry] = {}
        self._index = FenceIndex({})
        # When the catalog version was last read (monotonic), and the count of this process's
        # catalog writes then: a write since, or catalog_check_s gone by, checks it again.
        self._monotonic = monotonic
        self._checked_at = -float("inf")
        self._checked_changes = -1
        self._refresh_lock = threading.Lock()
        self._erasers: list[Callable[[str], None]] = []

    # -- consent, trust, privacy -----------------------------------------------------------
    def set_consent(self, shopper_id: str, granted: bool) -> dict[str, Any]:
        """Record the shopper's consent to location use; withdrawing it erases location data."""
        now = self.clock.now()
        st = keys.shopper_state(shopper_id)
        if granted:
            pipe = self.r.pipeline(transaction=True)
            pipe.hset(st, mapping={"consent": "1", "consent_at": f"{now:.3f}"})
            pipe.hsetnx(st, "trust", TRUST_START)
            pipe.hincrby(st, "ver", 1)
            pipe.execute()
        else:
            # Consent goes first: a fix or catch in flight then fails its consent check
            # instead of writing a place after the erasure.
            pipe = self.r.pipeline(transaction=True)
            pipe.hset(st, mapping={"consent": "0", "consent_at": f"{now:.3f}"})
            pipe.hincrby(st, "ver", 1)
            pipe.execute()
            self.erase_location(shopper_id)
        return {"location": granted, "updated_at": now}

    def add_location_eraser(self, erase: Callable[[str], None]) -> None:
        """Have erase(shopper_id) called whenever a shopper's location data is erased.

        Packages that keep a copy of a place (the game's last catch) register here, so that
        withdrawing consent and erasing an account reach them without geo knowing them.
        """
        if erase not in self._erasers:
            self._erasers.append(erase)

    def consent(self, shopper_id: str) -> dict[str, Any]:
        """Return the shopper's consent state."""
        consent, at = self.r.hmget(keys.shopper_state(shopper_id), "consent", "consent_at")
        return {"location": consent == "1", "updated_at": float(at) if at else None}

    def trust(self, shopper_id: str) -> int:
        """Return the shopper's trust score, 0 (spoofer) to 100 (clean)."""
        raw = self.r.hget(keys.shopper_state(shopper_id), "trust")
        return int(raw) if raw is not None else TRUST_START

    def erase_location(self, shopper_id: str) -> None:
        """Delete the shopper's raw fixes, position and fence states, and every registered
        package's copy of their places."""
        self.r.delete(
            keys.shopper_fixes(shopper_id),
            keys.shopper_fences(shopper_id),
            keys.shopper_position(shopper_id),
        )
        for erase in self._erasers:
            erase(shopper_id)

    def erase(self, shopper_id: str) -> None:
        """Delete everything personal the geo package keeps about a shopper."""
        self.r.delete(
            keys.shopper_state(shopper_id),
            keys.shopper_fixes(shopper_id),
            keys.shopper_fences(shopper_id),
            keys.shopper_position(shopper_id),
            keys.shopper_outbox(shopper_id),
        )
        for erase in self._erasers:
            erase(shopper_id)

    def recent_fixes(self, shopper_id: str) -> list[dict[str, Any]]:
        """Return the shopper's raw fixes still within the retention, oldest first."""
        cutoff = self.clock.now() - self.settings.retention_s
        raw = self.r.zrangebyscore(keys.shopper_fixes(shopper_id), cutoff, "+inf")
        return [_decode_fix(item) for item in raw]

    def inside(self, shopper_id: str) -> list[dict[str, Any]]:
        """Return the fences the shopper is inside now, with when they entered."""
        states = self.r.hgetall(keys.shopper_fences(shopper_id))
        out = []
        for store_id, raw in sorted(states.items()):
            state = _FenceState.decode(raw)
            out.append(
                {
                    "store_id": store_id,
                    "entered_at": state.entered_at,
                    "dwelled": state.dwelled,
                    "exit_pending": state.pending_since > 0,
                }
            )
        return out

    # -- the fence cache ---------------------------------------------------------------------
    def warm(self) -> None:
        """Load the fence cache now (server start) instead of on the first fix."""
        changes, now = self.catalog.changes.count, self._monotonic()
        self._refresh(self.catalog.version())
        self._checked_at, self._checked_changes = now, changes

    def _check_due(self) -> tuple[int, float] | None:
        """Return (write count, time) to record if the catalog version must be read now.

        Staleness bound: a fix is judged against a fence index at most catalog_check_s older
        than the catalog (GEO_CATALOG_CHECK_MS), plus the time a reload takes; this process's
        own writes are seen by its next fix.
        """
        changes, now = self.catalog.changes.count, self._monotonic()
        if changes != self._checked_changes or now - self._checked_at >= (
            self.settings.catalog_check_s
        ):
            return changes, now
        return None

    def _refresh(self, version: int) -> None:
        if version == self._cache_version:
            return
        with self._refresh_lock:
            if version == self._cache_version:
                return  # another request of this process reloaded it meanwhile
            self._load_cache()

    def _load_cache(self) -> None:
        loaded_version, records = self.catalog.load_all()
        hours_cache: dict = {}
        entries = {sid: entry_from_record(rec, hours_cache) for sid, rec in records.items()}
        index = FenceIndex(entries)
        self._entries, self._index = entries, index
        self._cache_version = loaded_version

    # -- fixes -------------------------------------------------------------------------------
    def record_fixes(
        self,
        shopper_id: str,
        fixes: Sequence[Fix],
        *,
        guard: tuple[str, DomainError] | None = None,
    ) -> list[FixResult]:
        """Process one shopper's fixes (one or a batch); raise when the shopper may not send.

        guard: a key that must exist for the fixes to count (e.g. the caller's session), and
        the error to raise if it does not; checked within the first round trip.
        """
        guards = {shopper_id: guard} if guard is not None else None
        outcome = self.record_many([(shopper_id, list(fixes))], guards=guards)[shopper_id]
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    def record_many(
        self,
        batches: Iterable[tuple[str, list[Fix]]],
        guards: dict[str, tuple[str, DomainError]] | None = None,
    ) -> dict[str, list[FixResult] | DomainError]:
        """Process fixes of many shoppers with batched round trips; errors come back per shopper."""
        now = self.clock.now()
        guards = guards or {}
        pending: dict[str, _Work] = {}
        for shopper_id, fixes in batches:
            if shopper_id in pending:
                pending[shopper_id].fixes.extend(fixes)
            else:
                pending[shopper_id] = _Work(shopper_id, list(fixes))
        done: dict[str, list[FixResult] | DomainError] = {}
        for _ in range(MAX_CAS_RETRIES):
            if not pending:
                break
            works = list(pending.values())
            committed = self._run(works, now, guards)
            for work in works:
                if work.error is not None:
                    done[work.shopper_id] = work.error
                    del pending[work.shopper_id]
                elif work.shopper_id in committed:
                    done[work.shopper_id] = work.results
                    del pending[work.shopper_id]
                else:
                    # Another process moved this shopper's state: start over from a fresh read.
                    work.results, work.events = [], []
                    work.pending_add, work.commit_args = {}, None
        for work in pending.values():
            done[work.shopper_id] = DomainError(
                "too much concurrent activity for this shopper, retry",
                code="conflict",
                status=409,
            )
        return done

    def _run(
        self, works: list[_Work], now: float, guards: dict[str, tuple[str, DomainError]]
    ) -> set[str]:
        """Read, compute and commit chunk by chunk; return the committed shoppers.

        Each round trip takes one pooled connection and gives it back before the next: a
        request that held one connection while waiting for a second could deadlock a worker
        whose concurrent requests outnumber the pool (every one holding one, waiting).
        """
        committed: set[str] = set()
        for start in range(0, len(works), CHUNK):
            chunk = works[start : start + CHUNK]
            self._read_and_compute(chunk, now, guards)
            ready = [w for w in chunk if w.error is None and w.commit_args is not None]
            if ready:
                replies = self._execute(self._commit_commands(ready), raise_on_error=False)
                committed |= self._absorb_commit(ready, replies)
        return committed

    def _read_commands(
        self,
        plans: list[tuple[_Work, list[Fix]]],
        guards: dict[str, tuple[str, DomainError]],
        check_version: bool,
    ) -> list[tuple]:
        """Commands of round trip 1: each state, each guard, and the catalog version if due."""
        sha = self._scripts.sha["read"]
        commands = [("EVALSHA", sha, 3, *_read_keys(work.shopper_id)) for work, _ in plans]
        commands += [
            ("EXISTS", guards[work.shopper_id][0]) for work, _ in plans if work.shopper_id in guards
        ]
        if check_version:
            commands.append(("GET", keys.VERSION))
        return commands

    def _commit_commands(self, works: list[_Work]) -> list[tuple]:
        sha = self._scripts.sha["commit"]
        commands = [("EVALSHA", sha, 5, *_commit_keys(w.shopper_id), *w.commit_args) for w in works]
        # The pending-exit index is only a hint for the sweeper, which re-checks the state
        # (and repairs the index), so it rides along even if a commit loses its CAS.
        for work in works:
            if work.pending_add:
                commands.append(
                    (
                        "ZADD",
                        keys.shopper_pending_exits(work.shopper_id, self.settings.event_partitions),
                        *[x for m, d in work.pending_add.items() for x in (d, m)],
                    )
                )
        return commands

    def _read_and_compute(
        self, works: list[_Work], now: float, guards: dict[str, tuple[str, DomainError]]
    ) -> None:
        """Round trip 1: every shopper's state; then every fix's candidates from the index."""
        plans = [(work, self._order(work, now)) for work in works]
        due = self._check_due()
        commands = self._read_commands(plans, guards, due is not None)
        replies = self._scripts.run(lambda: self._execute(commands))
        if due is not None:
            self._refresh(int(replies[-1] or 0))
            self._checked_changes, self._checked_at = due
        self._stage(plans, replies, guards, now)

    def _stage(
        self,
        plans: list[tuple[_Work, list[Fix]]],
        replies: list[Any],
        guards: dict[str, tuple[str, DomainError]],
        now: float,
    ) -> None:
        """Turn a chunk's read replies into candidates and states, then compute it."""
        index = self._index
        guard_replies = iter(replies[len(plans) :])
        for work, _ in plans:
            if work.shopper_id in guards and not next(guard_replies):
                work.error = guards[work.shopper_id][1]
        staged = []
        for (work, fixes), raw in zip(plans, replies[: len(plans)], strict=True):
            candidates = [index.candidates(fix.lon, fix.lat) for fix in fixes]
            # Searches along a batch's own long segments.
            for i in _segment_indexes(fixes):
                a, b = fixes[i - 1], fixes[i]
                candidates[i] |= index.candidates(*_midpoint_search(a.lat, a.lon, b.lat, b.lon))
            parts = raw.split("\n")
            state = {
                name: value or None for name, value in zip(STATE_FIELDS, parts[:5], strict=True)
            }
            position_ = {"last": parts[5] or None, "anchor": parts[6] or None}
            staged.append((work, state, _pairs(parts[7:]), position_, fixes, candidates))
        self._add_first_segment_candidates(staged, index)
        for work, state, fences, pos, fixes, candidates in staged:
            self._compute(work, state, fences, pos, fixes, candidates, now)

    def _execute(self, commands: list[tuple], raise_on_error: bool = True) -> list[Any]:
        """Run commands in one pipeline round trip (on one connection, given back after)."""
        pipe = self.r.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute(raise_on_error=raise_on_error)

    def _order(self, work: _Work, now: float) -> list[Fix]:
        """Sort a shopper's fixes by recorded time; refuse ones from the future."""
        limit = now + self.settings.max_future_s
        for index, fix in enumerate(work.fixes):
            if fix.recorded_at > limit:
                work.error = DomainError(
                    "recorded_at is in the future",
                    code="fix_in_future",
                    field=f"fixes[{index}].recorded_at",
                    status=422,
                )
                return []
        return sorted(work.fixes, key=lambda f: f.recorded_at)

    @staticmethod
    def _add_first_segment_candidates(staged: list, index: FenceIndex) -> None:
        """Search along the segment from the stored anchor to a batch's first fix, if long."""
        for _work, _state, _fences, position, fixes, candidates in staged:
            anchor = Point.decode(position.get("anchor"))
            if anchor is None or not fixes:
                continue
            point = _midpoint_search(anchor.lat, anchor.lon, fixes[0].lat, fixes[0].lon)
            if point is not None:
                candidates[0] |= index.candidates(*point)

    def judge(self, fix: Fix, anchor: str | None, received_at: float | None = None) -> str:
        """Return the spoof verdict of a fix against a stored anchor (the last trusted fix).

        The game checks a catch's fix with the same rules the engine applies to every fix.
        received_at: when the server received the fix (default: now).
        """
        received = self.clock.now() if received_at is None else received_at
        return self._verdict(fix, Point.decode(anchor), received)

    def elapsed_since(
        self, fix: Fix, anchor: str | None, received_at: float | None = None
    ) -> float | None:
        """Return the seconds from a stored anchor to a fix as the speed checks count them
        (see effective_time); None without an anchor."""
        point = Point.decode(anchor)
        if point is None:
            return None
        received = self.clock.now() if received_at is None else received_at
        return self._elapsed(fix, point, received)

    def _elapsed(self, fix: Fix, anchor: Point, received: float) -> float:
        return elapsed_s(fix.recorded_at, received, anchor, self.settings.clock_slack_s)

    def _verdict(self, fix: Fix, anchor: Point | None, received: float) -> str:
        s = self.settings
        if fix.mock:
            return "mocked"
        if anchor is not None:
            dt = self._elapsed(fix, anchor, received)
            distance = fast_distance_m(anchor.lat, anchor.lon, fix.lat, fix.lon)
            if distance > s.jump_m and dt < s.jump_window_s:
                return "jump"
            # The accuracy circles are slack: GPS noise alone must not look like speed.
            slack = min(fix.accuracy_m, s.max_accuracy_m) + min(anchor.acc, s.max_accuracy_m)
            if dt > 0 and ground_speed_mps(distance, dt, slack) > s.max_speed_mps:
                return "too_fast"
        if fix.speed_mps is not None and fix.speed_mps > s.max_speed_mps:
            return "too_fast"
        if fix.accuracy_m > s.max_accuracy_m:
            return "inaccurate"
        return "ok"

    def _compute(
        self,
        work: _Work,
        state: dict,
        fences: dict,
        position: dict,
        fixes: list[Fix],
        candidates: list[set[str]],
        now: float,
    ) -> None:
        """Run the spoof checks and the state machine over one shopper's ordered fixes."""
        if work.error is not None:
            return
        if state.get("consent") != "1":
            work.error = DomainError(
                "the shopper has not consented to location use",
                code="consent_required",
                field="consent",
                status=403,
            )
            return
        s = self.settings
        work.version = int(state.get("ver") or 0)
        # The writer streams its outbox right after committing; one much older than that was
        # left by a process that died in between, and this pass streams it (ids deduplicate).
        outbox_at = state.get("ob")
        work.stale_outbox = outbox_at is not None and now - float(outbox_at) > OUTBOX_GRACE_S
        last_t = float(state.get("last_t") or 0.0)
        trust = int(state.get("trust") or TRUST_START)
        anchor = Point.decode(position.get("anchor"))
        last = Point.decode(position.get("last"))
        fs = {sid: _FenceState.decode(raw) for sid, raw in fences.items()}
        touched: set[str] = set()
        removed: set[str] = set()
        fix_rows: list[str] = []
        oldest = now - s.max_age_s
        for fix, found in zip(fixes, candidates, strict=True):
            t = fix.recorded_at
            if t <= last_t:
                reason = "duplicate" if t == last_t else "older_than_last"
                work.results.append(FixResult(t, "ignored", True, reason))
                continue
            if t < oldest:
                work.results.append(FixResult(t, "ignored", True, "too_old"))
                continue
            verdict = self._verdict(fix, anchor, now)
            trust = max(0, min(100, trust + TRUST_DELTA[verdict]))
            result = FixResult(t, verdict, trust=trust)
            work.results.append(result)
            last_t = t
            last = Point(t, fix.lat, fix.lon, fix.accuracy_m, now)
            fix_rows.append(_encode_fix(fix, verdict))
            if verdict != "ok":
                continue  # suspicious fixes are kept with their verdict and change nothing
            events = self._advance(work.shopper_id, fix, anchor, fs, found, touched, removed, trust)
            result.events.extend(events)
            work.events.extend(events)
            anchor = last
        work.commit_args = [
            work.version,
            f"{now - s.retention_s:.3f}",
            int(s.retention_s),
            f"{last_t:.3f}" if fix_rows else "",
            trust,
            last.encode() if fix_rows and last is not None else "",
            anchor.encode() if anchor is not None else "",
            "\n".join(f"{sid}={fs[sid].encode()}" for sid in touched - removed),
            "\n".join(sorted(removed)),
            "\n".join(fix_rows),
            "\n".join(json.dumps(e, separators=(",", ":")) for e in work.events),
            f"{now:.3f}",
        ]
        for sid in touched - removed:
            if fs[sid].pending_since > 0:
                member = f"{work.shopper_id}|{sid}"
                work.pending_add[member] = fs[sid].pending_since + s.exit_confirm_s

    def _advance(
        self,
        shopper_id: str,
        fix: Fix,
        prev: Point | None,
        fs: dict[str, _FenceState],
        found: set[str],
        touched: set[str],
        removed: set[str],
        trust: int,
    ) -> list[dict[str, Any]]:
        """Move every relevant fence's state for one trusted fix; return the events."""
        s = self.settings
        t = fix.recorded_at
        events: list[dict[str, Any]] = []
        # The segment from the previous trusted fix can only cross fences whose edge is within
        # one step of this fix: the transit test is skipped for every other candidate.
        step = fast_distance_m(prev.lat, prev.lon, fix.lat, fix.lon) if prev is not None else 0.0
        transit_possible = step >= s.transit_min_m
        # Only "ok" fixes get here, so the accuracy is within the limit.
        for sid in sorted(found | fs.keys()):
            entry = self._entries.get(sid)
            if entry is None:
                if sid in fs:  # the store was deleted: forget the state quietly
                    del fs[sid]
                    touched.add(sid)
                    removed.add(sid)
                continue
            fence = entry.fence
            state = fs.get(sid)
            distance = fence.signed_distance_m(fix.lat, fix.lon)
            if state is None:
                if (
                    distance <= 0
                    and entry.active_at(t)
                    and fence.overlap_fraction(fix.lat, fix.lon, fix.accuracy_m) >= s.min_overlap
                ):
                    fs[sid] = _FenceState(t, False, 0.0)
                    touched.add(sid)
                    removed.discard(sid)
                    events.append(_event(shopper_id, sid, "enter", t, trust))
                elif (
                    transit_possible
                    and 0 < distance <= step
                    and fence.signed_distance_m(prev.lat, prev.lon) > 0
                    and fence.segment_crosses(prev.lat, prev.lon, fix.lat, fix.lon)
                ):
                    events.append(_event(shopper_id, sid, "transit", t, trust, since=prev.t))
                continue
            if distance > fence.hysteresis_m:
                # Beyond the exit line: a second consecutive outside fix confirms the exit.
                if state.pending_since > 0:
                    events.append(
                        _event(
                            shopper_id,
                            sid,
                            "exit",
                            state.pending_since,
                            trust,
                            duration_s=round(state.pending_since - state.entered_at, 3),
                        )
                    )
                    del fs[sid]
                    removed.add(sid)
                else:
                    state.pending_since = t
                touched.add(sid)
                continue
            if state.pending_since > 0:
                state.pending_since = 0.0
                touched.add(sid)
            if not state.dwelled and t - state.entered_at >= s.dwell_s and entry.active_at(t):
                state.dwelled = True
                touched.add(sid)
                events.append(
                    _event(
                        shopper_id, sid, "dwell", t, trust, dwell_s=round(t - state.entered_at, 3)
                    )
                )
        return events

    def _absorb_commit(self, works: list[_Work], replies: list[Any]) -> set[str]:
        """Take a chunk's commit replies; stream and push its events; return who landed."""
        for reply in replies:
            if isinstance(reply, redis.exceptions.NoScriptError):
                self._scripts.load()  # those shoppers count as not committed and go again
            elif isinstance(reply, Exception):
                raise reply
        replies = replies[: len(works)]
        committed: set[str] = set()
        with_events: list[_Work] = []
        stale: list[str] = []
        for work, reply in zip(works, replies, strict=True):
            if reply == 1:
                committed.add(work.shopper_id)
                if work.stale_outbox:
                    stale.append(work.shopper_id)
                elif work.events:
                    with_events.append(work)
            elif reply == -1:
                work.error = DomainError(
                    "the shopper has not consented to location use",
                    code="consent_required",
                    field="consent",
                    status=403,
                )
                committed.add(work.shopper_id)
        if with_events:
            self._append_events([(work.shopper_id, work.events) for work in with_events])
        for work in with_events:
            self.sink.publish(work.shopper_id, work.events)
        if stale:
            self.flush_outboxes(stale)
        return committed

    def _append_events(self, batches: list[tuple[str, list[dict[str, Any]]]]) -> None:
        """Append shoppers' committed events to their stream partitions, then empty their
        outboxes.

        Two round trips: an outbox goes only once its events are in the stream. One pipeline
        would not keep that order on Redis Cluster, where the stream and a shopper's keys are
        on different nodes and a pipeline's commands to different nodes are not ordered.
        A shopper's events all go to one partition, in order.
        """
        partitions = self.settings.event_partitions
        maxlen = max(1, -(-self.settings.stream_maxlen // partitions))
        pipe = self.r.pipeline(transaction=False)
        for shopper_id, events in batches:
            stream = keys.shopper_events(shopper_id, partitions)
            for event in events:
                pipe.xadd(
                    stream,
                    {"event": json.dumps(event, separators=(",", ":"))},
                    maxlen=maxlen,
                    approximate=True,
                )
        pipe.execute()
        pipe = self.r.pipeline(transaction=False)
        for shopper_id, _events in batches:
            pipe.delete(keys.shopper_outbox(shopper_id))
            pipe.hdel(keys.shopper_state(shopper_id), "ob")
        pipe.execute()

    def flush_outboxes(self, shopper_ids: Iterable[str]) -> int:
        """Append events a crashed process committed but never streamed; return how many."""
        count = 0
        for shopper_id in shopper_ids:
            raw = self.r.lrange(keys.shopper_outbox(shopper_id), 0, -1)
            if not raw:
                continue
            events = [json.loads(item) for item in raw]
            self._append_events([(shopper_id, events)])
            self.sink.publish(shopper_id, events)
            count += len(events)
        return count

    # -- the sweeper -----------------------------------------------------------------------
    def sweep(self, now: float | None = None, limit: int = 1_000) -> list[dict[str, Any]]:
        """Confirm exits whose outside fix was not contradicted in time; return the events.

        Sweeps every partition of the pending-exit index (up to `limit` due entries each) and
        the index of releases before the partitions (keys.LEGACY_PENDING_EXITS).
        """
        now = self.clock.now() if now is None else now
        partitions = self.settings.event_partitions
        indexes = [keys.pending_exits(k, partitions) for k in range(partitions)]
        indexes.append(keys.LEGACY_PENDING_EXITS)
        pipe = self.r.pipeline(transaction=False)
        for index in indexes:
            pipe.zrangebyscore(index, "-inf", now, start=0, num=limit)
        due_per_index = dict(zip(indexes, pipe.execute(), strict=True))
        by_shopper: dict[str, set[str]] = {}
        for due in due_per_index.values():
            for member in due:
                shopper_id, _, store_id = member.rpartition("|")
                by_shopper.setdefault(shopper_id, set()).add(store_id)
        emitted: list[dict[str, Any]] = []
        not_yet: dict[str, float] = {}
        for shopper_id, store_ids in by_shopper.items():
            emitted += self._sweep_shopper(shopper_id, sorted(store_ids), now, not_yet)
        if not any(due_per_index.values()):
            return emitted
        pipe = self.r.pipeline(transaction=False)
        for index, due in due_per_index.items():
            if not due:
                continue
            # Entries are hints: drop the due ones, and put back those whose exit is still
            # pending with a later deadline than the index said (in the index they came from).
            pipe.zrem(index, *due)
            later = {m: not_yet[m] for m in due if m in not_yet}
            if later:
                pipe.zadd(index, later)
        pipe.execute()
        return emitted

    def _sweep_shopper(
        self, shopper_id: str, store_ids: list[str], now: float, not_yet: dict[str, float]
    ) -> list[dict]:
        s = self.settings
        for _ in range(MAX_CAS_RETRIES):
            pipe = self.r.pipeline(transaction=False)
            pipe.hgetall(keys.shopper_state(shopper_id))
            pipe.hgetall(keys.shopper_fences(shopper_id))
            state, fences = pipe.execute()
            if state.get("consent") != "1":
                return []
            trust = int(state.get("trust") or TRUST_START)
            events, removed = [], []
            for sid in store_ids:
                raw = fences.get(sid)
                if raw is None:
                    continue
                fstate = _FenceState.decode(raw)
                if fstate.pending_since <= 0:
                    continue
                deadline = fstate.pending_since + s.exit_confirm_s
                if deadline > now:
                    not_yet[f"{shopper_id}|{sid}"] = deadline
                    continue
                removed.append(sid)
                events.append(
                    _event(
                        shopper_id,
                        sid,
                        "exit",
                        fstate.pending_since,
                        trust,
                        duration_s=round(fstate.pending_since - fstate.entered_at, 3),
                        confirmed_by="timeout",
                    )
                )
            if not events:
                return []
            args = [
                int(state.get("ver") or 0),
                f"{now - s.retention_s:.3f}",
                int(s.retention_s),
                "",
                "",
                "",
                "",
                "",
                "\n".join(removed),
                "",
                "\n".join(json.dumps(e, separators=(",", ":")) for e in events),
                f"{now:.3f}",
            ]
            reply = self._scripts.run(
                lambda args=args: self.r.evalsha(
                    self._scripts.sha["commit"], 5, *_commit_keys(shopper_id), *args
                )
            )
            if reply == 1:
                self._append_events([(shopper_id, events)])
                self.sink.publish(shopper_id, events)
                return events
            if reply == -1:
                return []
        return []


def _encode_fix(fix: Fix, verdict: str) -> str:
    """Encode a raw fix as the sorted-set member (its time first, as the script expects)."""
    speed = "" if fix.speed_mps is None else f"{fix.speed_mps:.2f}"
    return (
        f"{fix.recorded_at:.3f}|{fix.lat:.7f}|{fix.lon:.7f}|{fix.accuracy_m:.1f}|"
        f"{speed}|{int(fix.mock)}|{verdict}"
    )


def _decode_fix(raw: str) -> dict[str, Any]:
    t, lat, lon, acc, speed, mock, verdict = raw.split("|")
    return {
        "t": float(t),
        "lat": float(lat),
        "lon": float(lon),
        "accuracy_m": float(acc),
        "speed_mps": float(speed) if speed else None,
        "mock": mock == "1",
        "verdict": verdict,
    }


def _read_keys(shopper_id: str) -> list[str]:
    return [
        keys.shopper_state(shopper_id),
        keys.shopper_fences(shopper_id),
        keys.shopper_position(shopper_id),
    ]


def _commit_keys(shopper_id: str) -> list[str]:
    return [
        keys.shopper_state(shopper_id),
        keys.shopper_fences(shopper_id),
        keys.shopper_fixes(shopper_id),
        keys.shopper_outbox(shopper_id),
        keys.shopper_position(shopper_id),
    ]


def _event(
    shopper_id: str, store_id: str, kind: str, at: float, trust: int, **extra: Any
) -> dict[str, Any]:
    """Build an event; its id is deterministic so that consumers can deduplicate replays."""
    event = {
        "id": f"{shopper_id}:{store_id}:{kind}:{int(round(at * 1000))}",
        "kind": kind,
        "shopper_id": shopper_id,
        "store_id": store_id,
        "at": at,
        "trust": trust,
    }
    event.update(extra)
    return event


SEGMENT_SEARCH_MIN_M = 50.0
SEGMENT_SEARCH_MAX_M = 200_000.0


def _midpoint_search(lat1: float, lon1: float, lat2: float, lon2: float):
    """Return (lon, lat, extra radius) of a search around a long segment's midpoint, or None."""
    length = fast_distance_m(lat1, lon1, lat2, lon2)
    if not SEGMENT_SEARCH_MIN_M < length < SEGMENT_SEARCH_MAX_M:
        return None
    return ((lon1 + lon2) / 2, (lat1 + lat2) / 2, length / 2)


def _segment_indexes(fixes: list[Fix]) -> list[int]:
    """Return the indexes of fixes whose segment from the previous fix needs its own search."""
    return [
        i
        for i in range(1, len(fixes))
        if _midpoint_search(fixes[i - 1].lat, fixes[i - 1].lon, fixes[i].lat, fixes[i].lon)
        is not None
    ]
