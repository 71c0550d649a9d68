"""Location fixes in, geofence events out: the orchestration of one call.

One call handles any number of shoppers with a fixed number of Redis round trips per chunk of
shoppers:
1. read, only what this process does not know: the state of each shopper whose last committed
   state it does not hold (see "state cache" below), each caller's guard (e.g. the session), and,
   at most every `catalog_check_s` or right after this process changed the catalog, the
   catalog version. Nothing to read, no round trip;
2. compute in the process: each fix's fence candidates from this process's own fence index
   (geo.fence_index), its spoof verdict (geo.spoof) and the fence state machine (geo.fsm);
3. commit: one Lua script per shopper (geo.scripts.COMMIT) checks the state version the
   computation started from (compare-and-set), then writes fence states, raw fixes, position,
   trust and an outbox of events together; when the version moved (another process, the
   sweeper, a consent change) it answers the current state instead, and the shopper is
   computed again from it, without another read;
4. only when there are events: append them to the shopper's partition of the event stream,
   then empty the outbox (geo.stream).

State cache: after a commit the process keeps the state it wrote (fence states, position,
trust, version; bounded by `state_cache` shoppers and `state_cache_s` seconds). The shopper's
next fix through this process starts from it and costs one round trip (the commit), since the
commit's compare-and-set tells a stale copy from a current one and hands over the current
state. Versions are random (geo.scripts.new_version), so a state that a failover lost is never
mistaken for a later one.

Every round trip is one pipeline (or one command) on one pooled connection, given back before
the next one is taken: a call never holds a connection while it waits for another, so any
number of concurrent calls share a bounded pool without deadlocking (they queue for it).
See README "Geofencing rules" for the rules themselves.
"""

from __future__ import annotations

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

from . import keys, spoof
from .fence_index import FenceIndex, fix_candidates
from .fsm import FenceState, Transition
from .model import EngineSettings, EventSink, Fix, FixResult, decode_fix, encode_fix
from .motion import Point
from .rounds import Rounds
from .scripts import COMMIT, READ, CommitCall, ReadCall, Scripts, new_version, parse_state
from .spoof import TRUST_DELTA, TRUST_START
from .state_cache import Known, StateCache
from .stores import StoreCatalog, StoreEntry, entry_from_record
from .stream import EventStream
from .sweeper import MAX_CAS_RETRIES, Sweeper

log = logging.getLogger(__name__)

CHUNK = 250  # shoppers per read/commit batch in a call
OUTBOX_GRACE_S = 10.0


@dataclass(slots=True)
class _Work:
    """One shopper's pass through the engine."""

    shopper_id: str
    fixes: list[Fix]
    results: list[FixResult] = field(default_factory=list)
    error: DomainError | None = None
    known: Known | None = None  # the state to compute from (cache or a lost CAS); None: read
    events: list[dict[str, Any]] = field(default_factory=list)
    pending_add: dict[str, float] = field(default_factory=dict)
    call: CommitCall | None = None
    after: Known | None = None  # the state the commit writes (for the cache)
    stale_outbox: bool = False  # a crashed process left events that never reached the stream
    # A guard under the shopper's hash tag, checked by the commit script itself (no read).
    guard: tuple[str, DomainError] | None = None

    def restart(self) -> None:
        """Forget a computation whose commit lost its compare-and-set."""
        self.results, self.events = [], []
        self.pending_add, self.call, self.after = {}, None, None


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
        self._scripts = Scripts(r)
        self._stream = EventStream(r, self.settings, self.sink)
        self._sweeper = Sweeper(r, self.settings, self._scripts, self._stream)
        self._states = StateCache(
            self.settings.state_cache,
            min(self.settings.state_cache_s, self.settings.retention_s / 2),
            monotonic,
        )
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
        self._rounds = Rounds(self.record_many, CHUNK)

    # -- consent, trust, privacy -----------------------------------------------------------
    def set_consent(self, shopper_id: str, granted: bool) -> dict[str, Any]:
        """Record the shopper's consent to location use; withdrawing it erases location data."""
        now = self.clock.now()
        st = keys.shopper_state(shopper_id)
        self._states.drop(shopper_id)
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
        package's copy of their places.

        The state version moves with them (if the state exists), so that no process's cached
        copy of the erased places is written back.
        """
        self._states.drop(shopper_id)
        st = keys.shopper_state(shopper_id)
        pipe = self.r.pipeline(transaction=True)
        for key in (
            keys.shopper_fixes(shopper_id),
            keys.shopper_fences(shopper_id),
            keys.shopper_position(shopper_id),
        ):
            pipe.delete(key)  # one key per command: a cluster pipeline refuses multi-key DEL
        pipe.hset(st, "ver", new_version())
        pipe.execute()
        for erase in self._erasers:
            erase(shopper_id)

    def erase(self, shopper_id: str) -> None:
        """Delete everything personal the geo package keeps about a shopper."""
        self._states.drop(shopper_id)
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
        return [decode_fix(item) for item in raw]

    def inside(self, shopper_id: str) -> list[dict[str, Any]]:
        """Return the fences the shopper is inside now, with when they entered."""
        states = self.r.hgetall(keys.shopper_fences(shopper_id))
        out = []
        for store_id, raw in sorted(states.items()):
            state = FenceState.decode(raw)
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

    # -- spoof checks for other packages -----------------------------------------------------
    def judge(self, fix: Fix, anchor: str | None, received_at: float | None = None) -> str:
        """Return the spoof verdict of a fix against a stored anchor (the last trusted fix).

        The game checks a catch's fix with the same rules the engine applies to every fix.
        received_at: when the server received the fix (default: now).
        """
        received = self.clock.now() if received_at is None else received_at
        return spoof.verdict(fix, Point.decode(anchor), received, self.settings)

    def elapsed_since(
        self, fix: Fix, anchor: str | None, received_at: float | None = None
    ) -> float | None:
        """Return the seconds from a stored anchor to a fix as the speed checks count them
        (see geo.motion.effective_time); None without an anchor."""
        point = Point.decode(anchor)
        if point is None:
            return None
        received = self.clock.now() if received_at is None else received_at
        return spoof.elapsed(fix, point, received, self.settings)

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
        the error to raise if it does not; checked before anything is committed.
        Concurrent calls share round trips (geo.rounds).
        """
        outcome = self._rounds.submit(shopper_id, list(fixes), guard)
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
                    # Another process moved this shopper's state: start over from the state
                    # the commit answered (or a fresh read).
                    work.restart()
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
        """Read (if needed), compute and commit chunk by chunk; return the committed shoppers.

        Each round trip takes one pooled connection and gives it back before the next: a
        request that held one connection while waiting for a second could deadlock a worker
        whose concurrent requests outnumber the pool (every one holding one, waiting).
        """
        committed: set[str] = set()
        for start in range(0, len(works), CHUNK):
            chunk = works[start : start + CHUNK]
            self._read_and_compute(chunk, now, guards)
            ready = [w for w in chunk if w.error is None and w.call is not None]
            if ready:
                replies = self._execute(self._commit_commands(ready), raise_on_error=False)
                committed |= self._absorb_commit(ready, replies)
        return committed

    def _read_and_compute(
        self, works: list[_Work], now: float, guards: dict[str, tuple[str, DomainError]]
    ) -> None:
        """Round trip 1, when there is anything to read; then compute every shopper."""
        plans = [(work, self._order(work, now)) for work in works]
        for work, _ in plans:
            if work.known is None and work.error is None:
                work.known = self._states.take(work.shopper_id)
        reads = [work for work, _ in plans if work.known is None and work.error is None]
        guarded = []
        for work, _ in plans:
            guard = guards.get(work.shopper_id)
            if guard is None:
                continue
            if keys.under_shopper_tag(guard[0], work.shopper_id):
                work.guard = guard  # the commit checks it, in the same script as the write
            else:
                guarded.append(work)  # another slot: checked in this first round trip
        due = self._check_due()
        commands = [READ.command(ReadCall.of(work.shopper_id)) for work in reads]
        commands += [("EXISTS", guards[work.shopper_id][0]) for work in guarded]
        if due is not None:
            commands.append(("GET", keys.VERSION))
        if commands:
            replies = self._scripts.run(lambda: self._execute(commands))
            for work, raw in zip(reads, replies, strict=False):
                work.known = parse_state(raw)
            for work, exists in zip(guarded, replies[len(reads) :], strict=False):
                if not exists and work.error is None:
                    work.error = guards[work.shopper_id][1]
            if due is not None:
                self._refresh(int(replies[-1] or 0))
                self._checked_changes, self._checked_at = due
        index = self._index
        for work, fixes in plans:
            if work.error is not None or work.known is None:
                continue
            state, fences, position = work.known
            anchor = Point.decode(position.get("anchor"))
            self._compute(
                work, state, fences, position, fixes, fix_candidates(index, fixes, anchor), now
            )
        # A refusal before the commit (no consent, a fix from the future) must not answer a
        # caller whose guard is gone with anything but the guard's error: check it (rare).
        refused = [work for work, _ in plans if work.guard is not None and work.error is not None]
        if refused:
            gone = self._execute([("EXISTS", work.guard[0]) for work in refused])
            for work, exists in zip(refused, gone, strict=True):
                if not exists:
                    work.error = work.guard[1]

    def _execute(self, commands: list[tuple], raise_on_error: bool = True) -> list[Any]:
        """Run commands in one round trip (on one connection, given back after): one command
        on its own, more in a pipeline."""
        if len(commands) == 1:
            try:
                return [self.r.execute_command(*commands[0])]
            except redis.exceptions.ResponseError as exc:
                if raise_on_error:
                    raise
                return [exc]
        pipe = self.r.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute(raise_on_error=raise_on_error)

    def _commit_commands(self, works: list[_Work]) -> list[tuple]:
        commands = [COMMIT.command(work.call) for work in works]
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
        if state.get("consent") != "1":
            work.error = DomainError(
                "the shopper has not consented to location use",
                code="consent_required",
                field="consent",
                status=403,
            )
            return
        s = self.settings
        # The writer streams its outbox right after committing; one much older than that was
        # left by a process that died in between, and this pass streams it (ids deduplicate).
        outbox_at = state.get("ob")
        work.stale_outbox = outbox_at is not None and now - float(outbox_at) > OUTBOX_GRACE_S
        last_t = float(state.get("last_t") or 0.0)
        trust = int(state.get("trust") or TRUST_START)
        anchor = Point.decode(position.get("anchor"))
        last = Point.decode(position.get("last"))
        transition = Transition(
            work.shopper_id,
            self._entries,
            s,
            {sid: FenceState.decode(raw) for sid, raw in fences.items()},
        )
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
            verdict = spoof.verdict(fix, anchor, now, s)
            trust = spoof.next_trust(trust, verdict)
            result = FixResult(t, verdict, trust=trust)
            work.results.append(result)
            last_t = t
            last = Point(t, fix.lat, fix.lon, fix.accuracy_m, now)
            fix_rows.append(encode_fix(fix, verdict))
            if verdict != "ok":
                continue  # suspicious fixes are kept with their verdict and change nothing
            events = transition.advance(fix, anchor, found, trust)
            result.events.extend(events)
            work.events.extend(events)
            anchor = last
        changed = transition.changed()
        removed = transition.removed
        wrote = bool(fix_rows)
        new_ver = new_version()
        work.call = CommitCall.of(
            work.shopper_id,
            guard=work.guard[0] if work.guard is not None else None,
            expected_ver=state.get("ver") or "0",
            new_ver=new_ver,
            fixes_cutoff=f"{now - s.retention_s:.3f}",
            ttl=int(s.retention_s),
            last_t=f"{last_t:.3f}" if wrote else "",
            trust=str(trust),
            last=last.encode() if wrote and last is not None else "",
            anchor=anchor.encode() if anchor is not None else "",
            set_states="\n".join(f"{sid}={fstate.encode()}" for sid, fstate in changed.items()),
            del_states="\n".join(sorted(removed)),
            fix_rows="\n".join(fix_rows),
            events="\n".join(json.dumps(e, separators=(",", ":")) for e in work.events),
            outbox_at=f"{now:.3f}",
        )
        for sid, fstate in changed.items():
            if fstate.pending_since > 0:
                work.pending_add[f"{work.shopper_id}|{sid}"] = (
                    fstate.pending_since + s.exit_confirm_s
                )
        # What the commit leaves in Redis, for the next fix of this shopper in this process.
        after_state = dict(state, ver=new_ver)
        after_position = dict(position)
        if wrote:
            after_state.update(last_t=work.call.last_t, trust=work.call.trust)
            after_position.update(last=work.call.last, anchor=work.call.anchor or None)
        if work.events:
            after_state["ob"] = work.call.outbox_at
        after_fences = {sid: raw for sid, raw in fences.items() if sid not in removed}
        after_fences.update({sid: fstate.encode() for sid, fstate in changed.items()})
        work.after = (after_state, after_fences, after_position)

    def _absorb_commit(self, works: list[_Work], replies: list[Any]) -> set[str]:
        """Take a chunk's commit replies; stream and push its events; return who landed."""
        for reply in replies:
            if isinstance(reply, redis.exceptions.NoScriptError):
                self._scripts.load()  # those shoppers count as not committed and go again
            elif isinstance(reply, Exception):
                raise reply
        replies = replies[: len(works)]
        committed: list[_Work] = []
        with_events: list[_Work] = []
        stale: list[str] = []
        for work, reply in zip(works, replies, strict=True):
            if reply == 1:
                committed.append(work)
                if work.stale_outbox:
                    stale.append(work.shopper_id)
                elif work.events:
                    with_events.append(work)
            elif reply == -2 and work.guard is not None:
                work.error = work.guard[1]  # the guard key is gone: nothing was written
            elif reply == -1:
                work.error = DomainError(
                    "the shopper has not consented to location use",
                    code="consent_required",
                    field="consent",
                    status=403,
                )
            elif isinstance(reply, str):
                work.known = parse_state(reply)  # the version moved: compute again from this
            else:
                work.known = None  # the script was missing: read again
        self._stream.deliver([(work.shopper_id, work.events) for work in with_events])
        if stale:
            self._stream.flush_outboxes(stale)
        for work in committed:
            after = work.after
            if after is not None:
                if work.events or work.stale_outbox:
                    after[0]["ob"] = None  # streamed: the outbox is empty again
                self._states.put(work.shopper_id, after)
        return {work.shopper_id for work in committed} | {
            work.shopper_id for work in works if work.error is not None
        }

    def flush_outboxes(self, shopper_ids: Iterable[str]) -> int:
        """Append events a crashed process committed but never streamed; return how many."""
        return self._stream.flush_outboxes(shopper_ids)

    # -- the sweeper -----------------------------------------------------------------------
    def sweep(self, now: float | None = None, limit: int = 1_000) -> list[dict[str, Any]]:
        """Confirm exits whose outside fix was not contradicted in time; return the events
        (geo.sweeper)."""
        return self._sweeper.sweep(self.clock.now() if now is None else now, limit)


__all__ = [
    "TRUST_DELTA",
    "TRUST_START",
    "EngineSettings",
    "EventSink",
    "Fix",
    "FixResult",
    "LocationEngine",
]
