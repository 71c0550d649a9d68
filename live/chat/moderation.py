"""Moderation of a stream's chat: mutes, bans, slow mode and banned words."""

from __future__ import annotations

import json
from typing import Any

import redis

from .errors import ChatRefused
from .inputs import check_viewer, clean
from .keys import bans_key, chat_key, mutes_key
from .settings import ChatSettings
from .words import normalize


class Moderation:
    """What a stream's hosts decide about who may write what (enforced by the gate)."""

    def __init__(self, r: redis.Redis, clock, settings: ChatSettings) -> None:
        self.r = r
        self.clock = clock
        self.settings = settings

    def mute(self, sid: str, viewer_id: str, seconds: float) -> float:
        """Mute a viewer for some seconds and return until when."""
        viewer_id = check_viewer(viewer_id)
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 1 <= seconds <= self.settings.max_mute_s
        ):
            raise ChatRefused(
                "INVALID_MUTE", f"mute for 1 to {self.settings.max_mute_s} seconds", field="seconds"
            )
        until = self.clock.now() + seconds
        self.r.hset(mutes_key(sid), viewer_id, repr(until))
        return until

    def unmute(self, sid: str, viewer_id: str) -> None:
        """Lift a viewer's mute."""
        self.r.hdel(mutes_key(sid), viewer_id)

    def ban(self, sid: str, viewer_id: str) -> None:
        """Ban a viewer from writing (their past comments stay)."""
        self.r.sadd(bans_key(sid), check_viewer(viewer_id))

    def unban(self, sid: str, viewer_id: str) -> None:
        """Lift a viewer's ban."""
        self.r.srem(bans_key(sid), viewer_id)

    def set_slow_mode(self, sid: str, seconds: int) -> None:
        """Require seconds between one viewer's comments (0 turns slow mode off)."""
        top = self.settings.max_slow_mode_s
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= top:
            raise ChatRefused(
                "INVALID_SLOW_MODE", f"slow mode is 0 to {top} whole seconds", field="seconds"
            )
        self.r.hset(chat_key(sid), "slow_mode", seconds)

    def set_banned_words(self, sid: str, words: list[str]) -> list[str]:
        """Replace the stream's banned-word list and return it (deduplicated)."""
        s = self.settings
        if not isinstance(words, list) or len(words) > s.max_banned_words:
            raise ChatRefused(
                "INVALID_BANNED_WORDS", f"at most {s.max_banned_words} banned words", field="words"
            )
        kept: dict[str, str] = {}
        for i, word in enumerate(words):
            cleaned = clean(word)
            if not 1 <= len(cleaned) <= s.max_word_chars:
                raise ChatRefused(
                    "INVALID_BANNED_WORDS",
                    f"a banned word has 1 to {s.max_word_chars} characters",
                    field=f"words[{i}]",
                )
            kept.setdefault(normalize(cleaned), cleaned)
        listed = list(kept.values())
        self.r.hset(chat_key(sid), "banned_words", json.dumps(listed, ensure_ascii=False))
        return listed

    def moderation_state(self, sid: str) -> dict[str, Any]:
        """Return slow mode, banned words, muted and banned viewers and the pinned comment."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(chat_key(sid), "slow_mode", "banned_words", "pinned")
        pipe.hgetall(mutes_key(sid))
        pipe.smembers(bans_key(sid))
        (slow, words, pinned), mutes, bans = pipe.execute()
        now = self.clock.now()
        muted = sorted(
            ({"viewer_id": v, "until": float(u)} for v, u in mutes.items() if float(u) > now),
            key=lambda m: (m["until"], m["viewer_id"]),
        )
        return {
            "slow_mode_s": int(slow or 0),
            "banned_words": json.loads(words or "[]"),
            "muted": muted,
            "banned": sorted(bans),
            "pinned": json.loads(pinned) if pinned else None,
        }
