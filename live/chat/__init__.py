"""A stream's chat: comments, moderation, polls and questions, with Redis as the system of record.

Every rule that must hold across app processes (bans, mutes, slow mode, the per-viewer token
bucket, one vote per viewer, one upvote per viewer, one open poll) is checked and applied inside
one Lua script, with the time passed in from the injected clock. All keys of a stream share its
hash tag `{l:<sid>}`, so each script touches one slot.

One module per job: `keys` (the Redis keys), `scripts` (the Lua sources and the named
arguments of each), `errors` (codes, statuses, messages), `settings`, `inputs` (text and
viewer checks), `words` (banned words), `gate` (viewer-written texts through the gate),
`comments`, `moderation`, `polls`, `questions`. `Chat` is the one object callers hold.
"""

from __future__ import annotations

from typing import Any

import redis

from core.scripts import LuaScripts

from .comments import Comments
from .errors import FIELDS, MESSAGES, STATUS, ChatRefused, ChatThrottled
from .gate import GatedWrites
from .keys import (
    bans_key,
    chat_key,
    comments_key,
    mutes_key,
    open_questions_key,
    poll_key,
    polls_key,
    question_states_key,
    questions_key,
    upvoters_key,
    upvotes_key,
    viewer_key,
    voters_key,
)
from .moderation import Moderation
from .polls import Polls
from .questions import Questions
from .scripts import SCRIPTS
from .settings import COMMENT_ID, POLL_ID, QUESTION_ID, ChatSettings
from .words import find_banned_word


class Chat:
    """Comments, moderation, polls and questions of live streams, kept in Redis."""

    def __init__(self, r: redis.Redis, clock, settings: ChatSettings | None = None) -> None:
        self.r = r
        self.clock = clock
        self.settings = settings or ChatSettings()
        self.scripts = LuaScripts(r, SCRIPTS)
        writes = GatedWrites(r, clock, self.settings, self.scripts)
        self.comments = Comments(r, self.settings, self.scripts, writes)
        self.moderation = Moderation(r, clock, self.settings)
        self.polling = Polls(r, clock, self.settings, self.scripts)
        self.asking = Questions(r, self.settings, self.scripts, writes)

    # -- comments ------------------------------------------------------------------------------
    def comment(
        self,
        sid: str,
        viewer_id: str,
        text: str,
        *,
        name: str | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Post a viewer's comment after the length, word, ban, mute and rate rules."""
        return self.comments.comment(sid, viewer_id, text, name=name, now=now)

    def recent_comments(self, sid: str, n: int = 50) -> list[dict[str, Any]]:
        """Return the last n comments, oldest first."""
        return self.comments.recent_comments(sid, n)

    def delete_comment(self, sid: str, comment_id: str) -> dict[str, Any]:
        """Delete a comment (unpinning it if pinned) and return it."""
        return self.comments.delete_comment(sid, comment_id)

    def pin_comment(self, sid: str, comment_id: str) -> dict[str, Any]:
        """Pin one of the kept comments (replacing any pinned one) and return it."""
        return self.comments.pin_comment(sid, comment_id)

    def unpin_comment(self, sid: str) -> None:
        """Unpin the pinned comment, if any."""
        self.comments.unpin_comment(sid)

    # -- moderation ----------------------------------------------------------------------------
    def mute(self, sid: str, viewer_id: str, seconds: float) -> float:
        """Mute a viewer for some seconds and return until when."""
        return self.moderation.mute(sid, viewer_id, seconds)

    def unmute(self, sid: str, viewer_id: str) -> None:
        """Lift a viewer's mute."""
        self.moderation.unmute(sid, viewer_id)

    def ban(self, sid: str, viewer_id: str) -> None:
        """Ban a viewer from writing (their past comments stay)."""
        self.moderation.ban(sid, viewer_id)

    def unban(self, sid: str, viewer_id: str) -> None:
        """Lift a viewer's ban."""
        self.moderation.unban(sid, viewer_id)

    def set_slow_mode(self, sid: str, seconds: int) -> None:
        """Require seconds between one viewer's comments (0 turns slow mode off)."""
        self.moderation.set_slow_mode(sid, seconds)

    def set_banned_words(self, sid: str, words: list[str]) -> list[str]:
        """Replace the stream's banned-word list and return it (deduplicated)."""
        return self.moderation.set_banned_words(sid, words)

    def moderation_state(self, sid: str) -> dict[str, Any]:
        """Return slow mode, banned words, muted and banned viewers and the pinned comment."""
        return self.moderation.moderation_state(sid)

    # -- polls ---------------------------------------------------------------------------------
    def start_poll(
        self, sid: str, question: str, options: list[str], duration_s: int
    ) -> dict[str, Any]:
        """Open a poll (one open poll per stream) and return it with zero tallies."""
        return self.polling.start_poll(sid, question, options, duration_s)

    def vote(self, sid: str, poll_id: str, viewer_id: str, option_index: int) -> dict[str, Any]:
        """Count a viewer's one vote in an open poll and return the new tallies."""
        return self.polling.vote(sid, poll_id, viewer_id, option_index)

    def close_poll(self, sid: str, poll_id: str) -> dict[str, Any]:
        """Close a poll (closing it again is harmless) and return its final state."""
        return self.polling.close_poll(sid, poll_id)

    def poll_state(self, sid: str) -> dict[str, Any] | None:
        """Return the open poll, or else the last one, with tallies (None if none yet)."""
        return self.polling.poll_state(sid)

    def polls(self, sid: str) -> list[dict[str, Any]]:
        """Return every poll of the stream in order, with tallies (final once closed)."""
        return self.polling.polls(sid)

    # -- questions -----------------------------------------------------------------------------
    def ask(
        self, sid: str, viewer_id: str, text: str, *, name: str | None = None
    ) -> dict[str, Any]:
        """Post a viewer's question (the comment rules apply, except slow mode)."""
        return self.asking.ask(sid, viewer_id, text, name=name)

    def upvote(self, sid: str, question_id: str, viewer_id: str) -> int:
        """Add a viewer's one upvote to someone else's open question; return its upvotes."""
        return self.asking.upvote(sid, question_id, viewer_id)

    def top_questions(self, sid: str, n: int = 5) -> list[dict[str, Any]]:
        """Return the n open questions with most upvotes (older first among equals)."""
        return self.asking.top_questions(sid, n)

    def answer(self, sid: str, question_id: str) -> None:
        """Mark a question answered (it leaves the top list)."""
        self.asking.answer(sid, question_id)

    def dismiss(self, sid: str, question_id: str) -> None:
        """Dismiss a question (it leaves the top list)."""
        self.asking.dismiss(sid, question_id)

    def questions(self, sid: str) -> list[dict[str, Any]]:
        """Return every question with its upvotes and state, oldest first."""
        return self.asking.questions(sid)


__all__ = [
    "COMMENT_ID",
    "FIELDS",
    "MESSAGES",
    "POLL_ID",
    "QUESTION_ID",
    "STATUS",
    "Chat",
    "ChatRefused",
    "ChatSettings",
    "ChatThrottled",
    "bans_key",
    "chat_key",
    "comments_key",
    "find_banned_word",
    "mutes_key",
    "open_questions_key",
    "poll_key",
    "polls_key",
    "question_states_key",
    "questions_key",
    "upvoters_key",
    "upvotes_key",
    "viewer_key",
    "voters_key",
]
