"""Spoof verdicts: how far a fix can be trusted, and what the verdict does to the trust score.

The speed arithmetic is geo.motion's (shared with the game's speed rules); the limits are
EngineSettings'. See README "Geofencing rules", rule 2.
"""

from __future__ import annotations

from .geometry import fast_distance_m
from .model import EngineSettings, Fix
from .motion import Point, elapsed_s, ground_speed_mps

TRUST_DELTA = {"ok": 1, "inaccurate": 0, "too_fast": -15, "mocked": -25, "jump": -30}
TRUST_START = 100


def elapsed(fix: Fix, anchor: Point, received: float, settings: EngineSettings) -> float:
    """Return the seconds from an anchor to a fix as every speed rule counts them."""
    return elapsed_s(fix.recorded_at, received, anchor, settings.clock_slack_s)


def verdict(fix: Fix, anchor: Point | None, received: float, settings: EngineSettings) -> str:
    """Return the spoof verdict of a fix against the last trusted fix (None: no history)."""
    s = settings
    if fix.mock:
        return "mocked"
    if anchor is not None:
        dt = elapsed(fix, anchor, received, s)
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


def next_trust(trust: int, verdict_: str) -> int:
    """Return the trust score after a fix with this verdict (0 to 100)."""
    return max(0, min(100, trust + TRUST_DELTA[verdict_]))


__all__ = ["TRUST_DELTA", "TRUST_START", "elapsed", "next_trust", "verdict"]
