"""The location engine's value types: its settings, a fix, what became of it, an event sink."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import keys


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
    # Shoppers whose last committed state this process keeps (geo.engine: the commit checks
    # it is still current), and for how long at most.
    state_cache: int = 20_000
    state_cache_s: float = 300.0

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


def encode_fix(fix: Fix, verdict: str) -> str:
    """Encode a raw fix as the sorted-set member (its time first, as the commit script expects)."""
    speed = "" if fix.speed_mps is None else f"{fix.speed_mps:.2f}"
    return (
        f"{fix.recorded_at:.3f}|{fix.lat:.7f}|{fix.lon:.7f}|{fix.accuracy_m:.1f}|"
        f"{speed}|{int(fix.mock)}|{verdict}"
    )


def decode_fix(raw: str) -> dict[str, Any]:
    """Decode a stored raw fix for the shopper's own listing."""
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
