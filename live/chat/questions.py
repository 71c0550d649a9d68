"""Questions to the host: ask (through the gate), upvote once, answer or dismiss."""

from __future__ import annotations

import json
from typing import Any

import redis

from core.scripts import LuaScripts

from .errors import FIELDS, MESSAGES, ChatRefused, refusal
from .gate import GatedWrites
from .inputs import check_text, check_viewer
from .keys import open_questions_key, question_states_key, questions_key, upvotes_key
from .scripts import CloseQuestionCall, UpvoteCall, run
from .settings import QUESTION_ID, ChatSettings


class Questions:
    """A stream's questions, ranked by upvotes while open."""

    def __init__(
        self, r: redis.Redis, settings: ChatSettings, scripts: LuaScripts, writes: GatedWrites
    ) -> None:
        self.r = r
        self.settings = settings
        self.scripts = scripts
        self.writes = writes

    def ask(
        self, sid: str, viewer_id: str, text: str, *, name: str | None = None
    ) -> dict[str, Any]:
        """Post a viewer's question (the comment rules apply, except slow mode)."""
        clean = check_text(text, "QUESTION", self.settings.max_text_chars)
        doc = self.writes.question(sid, check_viewer(viewer_id), clean, name)
        doc.update(upvotes=0, state="open")
        return doc

    def upvote(self, sid: str, question_id: str, viewer_id: str) -> int:
        """Add a viewer's one upvote to someone else's open question; return its upvotes."""
        viewer_id = check_viewer(viewer_id)
        member = open_member(question_id)
        reply = run(self.scripts, UpvoteCall(sid, question_id, member, viewer_id))
        if reply[0] != "ok":
            raise refusal(reply)
        return int(reply[1])

    def top_questions(self, sid: str, n: int = 5) -> list[dict[str, Any]]:
        """Return the n open questions with most upvotes (older first among equals)."""
        if n <= 0:
            return []
        # score -upvotes, member the zero-padded seq: ascending order is most upvotes, then
        # oldest, which a plain upvote score could not break ties by
        ranked = self.r.zrange(open_questions_key(sid), 0, n - 1, withscores=True)
        if not ranked:
            return []
        ids = [f"q{int(member)}" for member, _ in ranked]
        out = []
        for (_, score), raw in zip(ranked, self.r.hmget(questions_key(sid), ids), strict=True):
            if raw:
                out.append({**json.loads(raw), "upvotes": int(-score), "state": "open"})
        return out

    def answer(self, sid: str, question_id: str) -> None:
        """Mark a question answered (it leaves the top list)."""
        self._close(sid, question_id, "answered")

    def dismiss(self, sid: str, question_id: str) -> None:
        """Dismiss a question (it leaves the top list)."""
        self._close(sid, question_id, "dismissed")

    def questions(self, sid: str) -> list[dict[str, Any]]:
        """Return every question with its upvotes and state, oldest first."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(questions_key(sid))
        pipe.hgetall(upvotes_key(sid))
        pipe.hgetall(question_states_key(sid))
        docs, upvotes, states = pipe.execute()
        out = [
            {
                **json.loads(raw),
                "upvotes": int(upvotes.get(qid, 0)),
                "state": states.get(qid, "open"),
            }
            for qid, raw in docs.items()
        ]
        return sorted(out, key=lambda q: int(q["id"][1:]))

    def _close(self, sid: str, question_id: str, state: str) -> None:
        member = open_member(question_id)
        reply = run(self.scripts, CloseQuestionCall(sid, question_id, member, state))
        if reply[0] != "ok":
            raise ChatRefused(
                reply[0],
                MESSAGES[reply[0]],
                field=FIELDS.get(reply[0]),
                details={"state": reply[1]} if len(reply) > 1 else None,
            )


def open_member(question_id: str) -> str:
    """Return a question's member in the open set (its zero-padded seq), or refuse."""
    found = QUESTION_ID.match(str(question_id))
    if not found:
        raise refusal(["QUESTION_NOT_FOUND"])
    return f"{int(found.group(1)):012d}"
