"""Viewer-written texts (comments and questions) through the gate: ban, mute, banned words,
then the script's atomic ban, mute, slow-mode and token-bucket checks."""

from __future__ import annotations

import json
from typing import Any

import redis

from core.scripts import LuaScripts

from .errors import ChatRefused, refusal
from .keys import bans_key, chat_key, mutes_key
from .scripts import AskCall, CommentCall, Gate, run
from .settings import ChatSettings
from .words import find_banned_word


class GatedWrites:
    """Post comments and questions of viewers, each in one script after the gate."""

    def __init__(self, r: redis.Redis, clock, settings: ChatSettings, scripts: LuaScripts) -> None:
        self.r = r
        self.clock = clock
        self.settings = settings
        self.scripts = scripts

    def comment(
        self, sid: str, viewer_id: str, text: str, name: str | None, now: float | None
    ) -> dict[str, Any]:
        """Store a comment (text already checked) and return it with its id."""
        gate, doc = self._prepare(sid, viewer_id, text, name, now, slow_mode_applies=True)
        return self._reply(run(self.scripts, CommentCall(gate, self.settings.history, doc)))

    def question(self, sid: str, viewer_id: str, text: str, name: str | None) -> dict[str, Any]:
        """Store a question (text already checked) and return it with its id."""
        gate, doc = self._prepare(sid, viewer_id, text, name, None, slow_mode_applies=False)
        return self._reply(run(self.scripts, AskCall(gate, doc)))

    def _prepare(
        self,
        sid: str,
        viewer_id: str,
        text: str,
        name: str | None,
        now: float | None,
        *,
        slow_mode_applies: bool,
    ) -> tuple[Gate, str]:
        at = self.clock.now() if now is None else now
        # One read for the word list; the ban and mute are read too, so that a banned or muted
        # viewer hears that rather than BANNED_WORD. The script re-checks both atomically.
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(chat_key(sid), "banned_words")
        pipe.sismember(bans_key(sid), viewer_id)
        pipe.hget(mutes_key(sid), viewer_id)
        words, banned, muted = pipe.execute()
        if banned:
            raise refusal(["BANNED"])
        if muted and float(muted) > at:
            raise refusal(["MUTED", muted])
        word = find_banned_word(text, json.loads(words)) if words else None
        if word is not None:
            raise ChatRefused(
                "BANNED_WORD",
                "the text contains a banned word",
                field="text",
                details={"word": word},
            )
        doc: dict[str, Any] = {"viewer_id": viewer_id}
        if name:
            doc["name"] = str(name)[:64]
        doc.update(text=text, at=at)
        s = self.settings
        gate = Gate(
            sid=sid,
            viewer_id=viewer_id,
            now=at,
            capacity=s.bucket_capacity,
            refill_s=s.refill_s,
            state_ttl_ms=s.state_ttl_ms,
            slow_mode_applies=slow_mode_applies,
        )
        return gate, json.dumps(doc, ensure_ascii=False)

    @staticmethod
    def _reply(reply: list) -> dict[str, Any]:
        if reply[0] != "ok":
            raise refusal(reply)
        return json.loads(reply[1])
