"""Comments: post (through the gate), read the last ones, delete and pin."""

from __future__ import annotations

import json
from typing import Any

import redis

from core.scripts import LuaScripts

from .errors import refusal
from .gate import GatedWrites
from .inputs import check_text, check_viewer
from .keys import chat_key, comments_key
from .scripts import CommentMove, run
from .settings import COMMENT_ID, ChatSettings


class Comments:
    """A stream's comments, the last `settings.history` of them kept."""

    def __init__(
        self, r: redis.Redis, settings: ChatSettings, scripts: LuaScripts, writes: GatedWrites
    ) -> None:
        self.r = r
        self.settings = settings
        self.scripts = scripts
        self.writes = writes

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
        clean = check_text(text, "COMMENT", self.settings.max_text_chars)
        return self.writes.comment(sid, check_viewer(viewer_id), clean, name, now)

    def recent_comments(self, sid: str, n: int = 50) -> list[dict[str, Any]]:
        """Return the last n comments, oldest first."""
        if n <= 0:
            return []
        return [json.loads(c) for c in self.r.zrange(comments_key(sid), -n, -1)]

    def delete_comment(self, sid: str, comment_id: str) -> dict[str, Any]:
        """Delete a comment (unpinning it if pinned) and return it."""
        return self._move("delete_comment", sid, comment_id)

    def pin_comment(self, sid: str, comment_id: str) -> dict[str, Any]:
        """Pin one of the kept comments (replacing any pinned one) and return it."""
        return self._move("pin_comment", sid, comment_id)

    def unpin_comment(self, sid: str) -> None:
        """Unpin the pinned comment, if any."""
        self.r.hdel(chat_key(sid), "pinned", "pinned_id")

    def _move(self, script: str, sid: str, comment_id: str) -> dict[str, Any]:
        found = COMMENT_ID.match(str(comment_id))
        if not found:
            raise refusal(["COMMENT_NOT_FOUND"])
        reply = run(self.scripts, CommentMove(script, sid, found.group(1), comment_id))
        if reply[0] != "ok":
            raise refusal(reply)
        return json.loads(reply[1])
