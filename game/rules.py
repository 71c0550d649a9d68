"""The catch rules that run in Python, one small function each, in the order they apply.

Each rule looks at one throw (`Throw`: the shopper's fix, the spawn, what the state read
returned) and returns a `Refusal`, or None to let the throw on. A refusal may carry a strike
(the reason and a function building its evidence, called only when the strike is recorded).
The caps that must stay exact under concurrency (suspension, consent, first catch, cooldown,
daily cap) are checked again, with the attempt's record, in the CATCH script
(`game/scripts.py`); the speed arithmetic is geo's (`geo.motion`), shared with its spoof
verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from geo.engine import Fix
from geo.geometry import fast_distance_m
from geo.motion import Point, ground_speed_mps

from .spawns import Spawn

SPOOFED = ("mocked", "too_fast", "jump")


@dataclass(slots=True)
class LastCatch:
    """Where and when the shopper last caught something (impossible-travel check)."""

    at: float
    lat: float
    lon: float
    city: str | None


@dataclass(slots=True)
class Throw:
    """One catch attempt as the rules see it."""

    shopper_id: str
    spawn: Spawn
    ref: str  # the spawn's opaque reference (evidence names no place)
    fix: Fix
    now: float
    anchor: str | None  # the last trusted fix, as geo stores it
    point: Point | None  # the same, decoded
    trust: int
    last: LastCatch | None
    recent: int  # catch attempts in the rate window
    settings: Any  # GameSettings
    engine: Any  # geo.engine.LocationEngine: its spoof verdict and elapsed time
    city_of: Callable[[Spawn], str]  # the spawn's city (evidence of impossible travel)
    suspicious_fixes: Callable[[str], list]  # the shopper's untrusted fixes (evidence)


@dataclass(slots=True)
class Refusal:
    """Why a throw is refused: a stable code, a message, and the strike it costs, if any."""

    code: str
    message: str
    status: int = 409
    field: str | None = None
    details: dict[str, Any] | None = None
    strike: str | None = None  # the strike's reason
    evidence: Callable[[], dict[str, Any]] | None = None


Rule = Callable[[Throw], "Refusal | None"]


def stale_fix(t: Throw) -> Refusal | None:
    """The fix must be recent (a replayed old fix proves nothing)."""
    s = t.settings
    age = t.now - t.fix.recorded_at
    if -s.fix_max_age_s <= age <= s.fix_max_age_s:
        return None
    return Refusal(
        "STALE_FIX",
        f"the fix must be from the last {int(s.fix_max_age_s)} s",
        status=422,
        field="fix.recorded_at",
    )


def no_position(t: Throw) -> Refusal | None:
    """Without a recent trusted fix there is nothing to check this one against."""
    if t.point is not None and t.now - t.point.t <= t.settings.position_max_age_s:
        return None
    return Refusal(
        "NO_POSITION",
        "send a location fix first: a catch's fix is checked against the last trusted one",
        status=409,
        field="fix",
    )


def untrusted_fix(t: Throw) -> Refusal | None:
    """The fix passes geo's spoof verdict against the last trusted fix; a spoofed one (mocked,
    too fast, a jump) is a strike."""
    verdict = t.engine.judge(t.fix, t.anchor, t.now)
    if verdict == "ok":
        return None
    if verdict not in SPOOFED:
        return Refusal(
            "UNTRUSTED_FIX",
            f"the fix is not good enough ({verdict})",
            status=422,
            field="fix.accuracy_m",
        )
    point, fix = t.point, t.fix

    def evidence() -> dict[str, Any]:
        # Evidence without a place: reviewers see how far and how fast, not where (the spawn
        # by its opaque reference: its id names a map cell or a store).
        return {
            "verdict": verdict,
            "fix": fix_evidence(fix),
            "spawn": spawn_evidence(t.spawn, t.ref),
            "moved_m": round(point.distance_m(fix.lat, fix.lon), 1),
            "seconds_since_last_trusted": round(fix.recorded_at - point.t, 1),
        }

    return Refusal(
        "UNTRUSTED_FIX",
        f"the fix looks spoofed ({verdict})",
        status=422,
        field="fix",
        strike="spoofed_location",
        evidence=evidence,
    )


def low_trust(t: Throw) -> Refusal | None:
    """Geo's verdicts on this shopper's fixes (mocked, too fast, jumps) have cost the trust
    score: that is a strike when they come to play."""
    s = t.settings
    if t.trust >= s.min_trust:
        return None
    return Refusal(
        "UNTRUSTED",
        "recent locations of this account are not trusted",
        status=403,
        strike="spoofed_locations",
        evidence=lambda: {
            "trust": t.trust,
            "min_trust": s.min_trust,
            "suspicious_fixes": t.suspicious_fixes(t.shopper_id),
            "spawn": spawn_evidence(t.spawn, t.ref),
        },
    )


def speed_lock(t: Throw) -> Refusal | None:
    """No catching from a moving car: the faster of the phone's own speed and the speed since
    the last trusted fix (a phone that reports 0 km/h from a car is still locked). The time
    between them is bounded by when the server received each, as in geo's verdict."""
    s, fix, point = t.settings, t.fix, t.point
    speed = fix.speed_mps or 0.0
    if fix.recorded_at - point.t >= 1.0:
        elapsed = t.engine.elapsed_since(fix, t.anchor, t.now)
        if elapsed is not None:
            moved = point.distance_m(fix.lat, fix.lon)
            speed = max(speed, ground_speed_mps(moved, max(elapsed, 1.0)))
    if speed <= s.speed_lock_mps:
        return None
    return Refusal(
        "SPEED_LOCKED",
        f"catching is off while moving faster than {round(s.speed_lock_mps * 3.6)} km/h",
        details={"speed_kmh": round(speed * 3.6, 1)},
    )


def too_far(t: Throw) -> Refusal | None:
    """The creature must be within the interaction radius of the fix."""
    s, fix, spawn = t.settings, t.fix, t.spawn
    distance = fast_distance_m(fix.lat, fix.lon, spawn.lat, spawn.lon)
    if distance <= s.interaction_radius_m:
        return None
    return Refusal(
        "TOO_FAR",
        f"walk closer: catches work within {int(s.interaction_radius_m)} m",
        field="fix",
        details={"distance_m": round(distance, 1)},
    )


def impossible_travel(t: Throw) -> Refusal | None:
    """Two catches in two cities minutes apart (far, and faster than any train) are a strike."""
    s, last, fix = t.settings, t.last, t.fix
    if last is None:
        return None
    dt = max(t.now - last.at, 1.0)
    far = fast_distance_m(last.lat, last.lon, fix.lat, fix.lon)
    if far <= s.travel_min_m or ground_speed_mps(far, dt) <= s.travel_max_mps:
        return None
    return Refusal(
        "IMPOSSIBLE_TRAVEL",
        "two catches this far apart this soon are not possible",
        status=422,
        field="fix",
        strike="impossible_travel",
        evidence=lambda: {
            "from": {"city": last.city, "at": last.at},
            "to": {"city": t.city_of(t.spawn), "at": t.now},
            "km": round(far / 1000, 1),
            "minutes": round(dt / 60, 1),
        },
    )


def inhuman_rate(t: Throw) -> Refusal | None:
    """More attempts in the rate window than a person makes is a strike."""
    s = t.settings
    if t.recent < s.rate_max:
        return None
    return Refusal(
        "RATE_LIMITED",
        "too many catch attempts; slow down",
        status=429,
        strike="inhuman_rate",
        evidence=lambda: {"attempts": t.recent, "window_s": s.rate_window_s},
    )


RULES: tuple[Rule, ...] = (
    stale_fix,
    no_position,
    untrusted_fix,
    low_trust,
    speed_lock,
    too_far,
    impossible_travel,
    inhuman_rate,
)
"""The Python rules in order: the first refusal wins."""


def first_refusal(t: Throw, rules: tuple[Rule, ...] = RULES) -> Refusal | None:
    """Return the first rule's refusal of the throw, or None when every rule lets it on."""
    for rule in rules:
        refusal = rule(t)
        if refusal is not None:
            return refusal
    return None


def spawn_evidence(spawn: Spawn, ref: str) -> dict[str, Any]:
    """A spawn as strike evidence: its opaque reference, kind and rarity, not its place."""
    return {"ref": ref, "kind": "store" if spawn.store_id else "wild", "rarity": spawn.rarity}


def fix_evidence(fix: Fix) -> dict[str, Any]:
    """A fix as strike evidence: what the phone claimed, but not where (no coordinates)."""
    return {
        "accuracy_m": fix.accuracy_m,
        "recorded_at": fix.recorded_at,
        "speed_mps": fix.speed_mps,
        "mock": fix.mock,
    }
