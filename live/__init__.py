"""Live-stream shopping: streams and products, the room (chat, polls, questions, pins, drops),
its history for recovery, presence across processes and the host's feedback.

Plain Python on Redis (no Flask): the app builds one `Live` per process and calls it.
"""

from __future__ import annotations

from .chat import Chat
from .drops import Drops
from .events import LiveEventSink, NoLiveEvents
from .feedback import FeedbackCounters
from .history import History
from .presence import Presence
from .report import Reports
from .room import Room
from .stage import Stage
from .streams import Streams


class Live:
    """Every live service of one process, sharing one Redis client and clock."""

    def __init__(
        self,
        r,
        clock,
        promotions,
        role_of,
        process_id: str,
        presence_ttl_s: float = 30.0,
        process_ttl_s: float = 5.0,
        events: LiveEventSink | None = None,
    ) -> None:
        events = events or NoLiveEvents()
        self.streams = Streams(r, clock, promotions, role_of, events)
        self.chat = Chat(r, clock)
        self.stage = Stage(r, clock)
        self.drops = Drops(r, clock, promotions, events)
        self.history = History(r)
        self.presence = Presence(
            r, clock, process_id, ttl_s=presence_ttl_s, process_ttl_s=process_ttl_s
        )
        self.feedback = FeedbackCounters(r, clock)
        self.room = Room(
            self.streams, self.chat, self.stage, self.drops, self.history, self.presence
        )
        self.reports = Reports(r, self.streams, self.chat, self.drops, self.feedback)


__all__ = ["Live"]
