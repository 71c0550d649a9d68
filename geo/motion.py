"""How fast a shopper moved between two places: the one copy of the speed rules' arithmetic.

Three rules judge speed: geo's spoof verdict (a fix too fast after the last trusted one), the
game's speed lock (no catching from a moving car) and its impossible-travel check (two catches
in two cities minutes apart). They differ in their limits and in what they do about a breach;
they share how a move is measured, which lives here:
- `Point`: a trusted fix as the engine keeps it (the anchor), with when the server received it;
- `elapsed_s`: the seconds between an anchor and a newer fix, bounded by receive times so a
  fix stamped in the future cannot stretch them;
- `ground_speed_mps`: metres over seconds, less the slack both accuracy circles allow.
"""

from __future__ import annotations

from dataclasses import dataclass

from .geometry import fast_distance_m


@dataclass(slots=True)
class Point:
    """A fix as the engine stores it as a shopper's anchor or last position."""

    t: float  # recorded (the phone's clock)
    lat: float
    lon: float
    acc: float
    received: float  # when the server received it (the server's clock)

    def encode(self) -> str:
        return f"{self.t:.3f},{self.lat:.7f},{self.lon:.7f},{self.acc:.1f},{self.received:.3f}"

    @classmethod
    def decode(cls, raw: str | None) -> Point | None:
        if not raw:
            return None
        t, lat, lon, acc, *received = raw.split(",")
        # Anchors written before the receive time was kept count as received when recorded.
        return cls(
            float(t),
            float(lat),
            float(lon),
            float(acc),
            float(received[0]) if received else float(t),
        )

    def distance_m(self, lat: float, lon: float) -> float:
        """Return the metres from this point to (lat, lon)."""
        return fast_distance_m(self.lat, self.lon, lat, lon)


def effective_time(recorded_at: float, received_at: float, slack_s: float) -> float:
    """Return the time a fix counts as taken at when judging speed: its recorded time, but
    never later than the server received it (plus a little clock slack).

    Fixes may be stamped up to FIX_MAX_FUTURE_S ahead (phone clocks run fast); a fix cannot
    have been taken after it arrived, so a future stamp must not stretch the time between two
    fixes and hide a fast move. Buffered (past) fixes keep their recorded times.
    """
    return min(recorded_at, received_at + slack_s)


def elapsed_s(recorded_at: float, received_at: float, anchor: Point, clock_slack_s: float) -> float:
    """Return the seconds from an anchor to a fix recorded at `recorded_at` and received at
    `received_at`, as every speed rule counts them.

    Not after the anchor (a catch's older fix): the raw difference, zero or negative, which
    means there is no speed to judge. Otherwise the recorded difference, shortened to the
    difference of effective times, but never below a second: two fixes both stamped beyond
    their receive times still count as up to a second apart, so a fast phone clock's buffered
    batch is not all "too fast".
    """
    recorded = recorded_at - anchor.t
    if recorded <= 0:
        return recorded
    bounded = effective_time(recorded_at, received_at, clock_slack_s) - effective_time(
        anchor.t, anchor.received, clock_slack_s
    )
    return max(min(recorded, bounded), min(recorded, 1.0))


def ground_speed_mps(distance_m: float, seconds: float, slack_m: float = 0.0) -> float:
    """Return the speed of a move of `distance_m` in `seconds` (> 0), counting only the part
    of the distance beyond `slack_m` (the accuracy circles: GPS noise alone is not speed)."""
    return max(0.0, distance_m - slack_m) / seconds


__all__ = ["Point", "effective_time", "elapsed_s", "ground_speed_mps"]
