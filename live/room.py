"""One stream's room as a viewer sees it: the state a late joiner gets in one message, and the
recovery of what a reconnecting viewer missed."""

from __future__ import annotations

from typing import Any

from .chat import Chat
from .drops import Drops
from .history import History
from .presence import Presence
from .stage import Stage
from .streams import Streams

RECENT_COMMENTS = 50


class Room:
    """Assemble a stream's current state from its parts (every part lives in Redis)."""

    def __init__(
        self,
        streams: Streams,
        chat: Chat,
        stage: Stage,
        drops: Drops,
        history: History,
        presence: Presence,
    ) -> None:
        self.streams = streams
        self.chat = chat
        self.stage = stage
        self.drops = drops
        self.history = history
        self.presence = presence

    def state(self, sid: str, *, console: bool = False) -> dict[str, Any]:
        """Return everything a viewer joining now needs, with the offset it is current to.

        While the stream is scheduled (the hosts' rehearsal) a viewer sees no stage: no pins,
        announcement, poll or slow mode, which the rehearsal sets for the hosts only (they reach
        viewers as events when the stream goes live). A host console (`console`) sees it all.
        """
        # The offset is read first: an event appended while the rest is read is then replayed
        # by a recovery from this offset rather than lost (a client drops what it has seen).
        offset = self.history.offset(sid)
        stream = self.streams.get(sid)
        moderation = self.chat.moderation_state(sid)
        rehearsal = stream["status"] == "scheduled" and not console
        return {
            "offset": offset,
            "stream": {
                k: stream[k]
                for k in (
                    "id",
                    "title",
                    "brand",
                    "description",
                    "playback_url",
                    "status",
                    "starts_at",
                    "live_at",
                    "ended_at",
                )
            },
            "products": stream["products"],
            "pinned": [] if rehearsal else self.stage.pinned(sid),
            "announcement": None if rehearsal else self.stage.announcement(sid),
            "poll": None if rehearsal else self.chat.poll_state(sid),
            "drop": self.drops.active(sid),
            "comments": self.chat.recent_comments(sid, RECENT_COMMENTS),
            "pinned_comment": moderation["pinned"],
            "slow_mode_s": 0 if rehearsal else moderation["slow_mode_s"],
            "questions": self.chat.top_questions(sid),
            "viewers": self.presence.count(sid),
        }

    def recover(self, sid: str, offset: int) -> dict[str, Any]:
        """Return the events after `offset`, or the state when the viewer is too far behind."""
        missed = self.history.since(sid, offset)
        if missed.too_far:
            return {"recovered": False, "state": self.state(sid)}
        return {"recovered": True, "offset": missed.offset, "events": missed.events}
