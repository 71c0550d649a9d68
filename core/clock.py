"""Time as an injectable dependency, so dwell, expiry and windows are testable without sleeping."""

from __future__ import annotations

import time


class Clock:
    """Wall-clock time in seconds since the epoch."""

    def now(self) -> float:
        """Return the current time as a unix timestamp."""
        return time.time()


class FrozenClock(Clock):
    """A clock that moves only when told to (tests, replays)."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        """Return the frozen time."""
        return self._now

    def set(self, ts: float) -> None:
        """Jump to a timestamp."""
        self._now = float(ts)

    def advance(self, seconds: float) -> float:
        """Move forward and return the new time."""
        self._now += seconds
        return self._now
