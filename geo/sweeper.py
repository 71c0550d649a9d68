"""The sweeper: confirm pending exits that no fix contradicted within GEOFENCE_EXIT_CONFIRM_S.

The pending-exit index (one sorted set per event partition, "shopper|store" -> deadline) is a
hint: the sweeper re-reads each due shopper's fence states and commits the exit with the same
compare-and-set script as fixes (geo.scripts.COMMIT), so a fix that came back inside wins.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from . import keys
from .fsm import FenceState, timeout_exit
from .model import EngineSettings
from .scripts import CommitCall, Scripts, new_version
from .spoof import TRUST_START
from .stream import EventStream

MAX_CAS_RETRIES = 20


class Sweeper:
    """Confirm due exits of every partition of the pending-exit index."""

    def __init__(
        self, r: redis.Redis, settings: EngineSettings, scripts: Scripts, stream: EventStream
    ) -> None:
        self.r = r
        self.settings = settings
        self.scripts = scripts
        self.stream = stream

    def sweep(self, now: float, limit: int = 1_000) -> list[dict[str, Any]]:
        """Confirm exits whose outside fix was not contradicted in time; return the events.

        Sweeps every partition of the pending-exit index (up to `limit` due entries each) and
        the index of releases before the partitions (keys.LEGACY_PENDING_EXITS).
        """
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
                fstate = FenceState.decode(raw)
                if fstate.pending_since <= 0:
                    continue
                event = timeout_exit(shopper_id, sid, fstate, trust, now, s)
                if event is None:
                    not_yet[f"{shopper_id}|{sid}"] = fstate.pending_since + s.exit_confirm_s
                    continue
                removed.append(sid)
                events.append(event)
            if not events:
                return []
            call = CommitCall.of(
                shopper_id,
                expected_ver=state.get("ver") or "0",
                new_ver=new_version(),
                fixes_cutoff=f"{now - s.retention_s:.3f}",
                ttl=int(s.retention_s),
                last_t="",
                trust="",
                last="",
                anchor="",
                set_states="",
                del_states="\n".join(removed),
                fix_rows="",
                events="\n".join(json.dumps(e, separators=(",", ":")) for e in events),
                outbox_at=f"{now:.3f}",
            )
            reply = self.scripts.call(call)
            if reply == 1:
                self.stream.deliver([(shopper_id, events)])
                return events
            if reply == -1:
                return []
        return []
