"""Where the live services report what integrations hear about (the app's webhooks)."""

from __future__ import annotations

from typing import Protocol


class LiveEventSink(Protocol):
    """Told when a drop starts or sells out and when a stream ends."""

    def drop_started(self, sid: str, did: str, ends_at: float) -> None: ...

    def drop_sold_out(self, sid: str, did: str) -> None: ...

    def stream_ended(self, sid: str) -> None: ...


class NoLiveEvents:
    """Report nothing (scripts, benchmarks, tests of the live services alone)."""

    def drop_started(self, sid: str, did: str, ends_at: float) -> None:
        """Do nothing."""

    def drop_sold_out(self, sid: str, did: str) -> None:
        """Do nothing."""

    def stream_ended(self, sid: str) -> None:
        """Do nothing."""
