"""The per-(shopper, fence) state machine: enter, dwell, exit (confirmed), transit.

A shopper is outside a fence (no state kept) or inside it since `entered_at`, with `dwelled`
and maybe an exit pending since the first fix beyond the exit line. `advance` moves every
relevant fence's state for one trusted fix; `timeout_exit` is the sweeper's confirmation of a
pending exit nobody contradicted. See README "Geofencing rules", rules 3-6.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .geometry import fast_distance_m
from .model import EngineSettings, Fix
from .motion import Point
from .stores import StoreEntry


@dataclass(slots=True)
class FenceState:
    """A shopper inside one fence."""

    entered_at: float
    dwelled: bool
    pending_since: float  # 0 when no exit is pending

    def encode(self) -> str:
        return f"{self.entered_at:.3f}|{int(self.dwelled)}|{self.pending_since:.3f}"

    @classmethod
    def decode(cls, raw: str) -> FenceState:
        entered, dwelled, pending = raw.split("|")
        return cls(float(entered), dwelled == "1", float(pending))


def event(
    shopper_id: str, store_id: str, kind: str, at: float, trust: int, **extra: Any
) -> dict[str, Any]:
    """Build an event; its id is deterministic so that consumers can deduplicate replays."""
    out = {
        "id": f"{shopper_id}:{store_id}:{kind}:{int(round(at * 1000))}",
        "kind": kind,
        "shopper_id": shopper_id,
        "store_id": store_id,
        "at": at,
        "trust": trust,
    }
    out.update(extra)
    return out


def _exit(shopper_id: str, sid: str, state: FenceState, trust: int, **extra: Any) -> dict:
    return event(
        shopper_id,
        sid,
        "exit",
        state.pending_since,
        trust,
        duration_s=round(state.pending_since - state.entered_at, 3),
        **extra,
    )


def timeout_exit(
    shopper_id: str, sid: str, state: FenceState, trust: int, now: float, s: EngineSettings
) -> dict[str, Any] | None:
    """Return the exit event a pending exit confirms by timeout at `now`, or None if none is
    due (no exit pending, or its deadline, pending_since + exit_confirm_s, is still ahead)."""
    if state.pending_since <= 0 or state.pending_since + s.exit_confirm_s > now:
        return None
    return _exit(shopper_id, sid, state, trust, confirmed_by="timeout")


class Transition:
    """One shopper's fence states while their fixes are applied, and what changed."""

    __slots__ = ("shopper_id", "entries", "settings", "states", "touched", "removed")

    def __init__(
        self,
        shopper_id: str,
        entries: Mapping[str, StoreEntry],
        settings: EngineSettings,
        states: dict[str, FenceState],
    ) -> None:
        self.shopper_id = shopper_id
        self.entries = entries
        self.settings = settings
        self.states = states
        self.touched: set[str] = set()
        self.removed: set[str] = set()

    def changed(self) -> dict[str, FenceState]:
        """Return the fence states to write (touched and not removed)."""
        return {sid: self.states[sid] for sid in self.touched - self.removed}

    def advance(
        self, fix: Fix, prev: Point | None, found: set[str], trust: int
    ) -> list[dict[str, Any]]:
        """Move every relevant fence's state for one trusted fix; return the events.

        found: the fence candidates of the fix (geo.fence_index); fences the shopper is inside
        are always looked at too.
        """
        s = self.settings
        shopper_id, fs, touched, removed = self.shopper_id, self.states, self.touched, self.removed
        t = fix.recorded_at
        events: list[dict[str, Any]] = []
        # The segment from the previous trusted fix can only cross fences whose edge is within
        # one step of this fix: the transit test is skipped for every other candidate.
        step = fast_distance_m(prev.lat, prev.lon, fix.lat, fix.lon) if prev is not None else 0.0
        transit_possible = step >= s.transit_min_m
        # Only "ok" fixes get here, so the accuracy is within the limit.
        for sid in sorted(found | fs.keys()):
            entry = self.entries.get(sid)
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
                    fs[sid] = FenceState(t, False, 0.0)
                    touched.add(sid)
                    removed.discard(sid)
                    events.append(event(shopper_id, sid, "enter", t, trust))
                elif (
                    transit_possible
                    and 0 < distance <= step
                    and fence.signed_distance_m(prev.lat, prev.lon) > 0
                    and fence.segment_crosses(prev.lat, prev.lon, fix.lat, fix.lon)
                ):
                    events.append(event(shopper_id, sid, "transit", t, trust, since=prev.t))
                continue
            if distance > fence.hysteresis_m:
                # Beyond the exit line: a second consecutive outside fix confirms the exit.
                if state.pending_since > 0:
                    events.append(_exit(shopper_id, sid, state, trust))
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
                    event(
                        shopper_id, sid, "dwell", t, trust, dwell_s=round(t - state.entered_at, 3)
                    )
                )
        return events


__all__ = ["FenceState", "Transition", "event", "timeout_exit"]
