"""Polls: one open poll per stream, one vote per viewer, closed by the host or the clock."""

from __future__ import annotations

import json
from typing import Any

import redis

from core.scripts import LuaScripts

from .errors import MESSAGES, ChatRefused, refusal
from .inputs import check_viewer, clean
from .keys import chat_key, poll_key, polls_key
from .scripts import ClosePollCall, StartPollCall, VoteCall, run
from .settings import POLL_ID, ChatSettings
from .words import normalize


class Polls:
    """A stream's polls and their tallies."""

    def __init__(self, r: redis.Redis, clock, settings: ChatSettings, scripts: LuaScripts) -> None:
        self.r = r
        self.clock = clock
        self.settings = settings
        self.scripts = scripts

    def start_poll(
        self, sid: str, question: str, options: list[str], duration_s: int
    ) -> dict[str, Any]:
        """Open a poll (one open poll per stream) and return it with zero tallies."""
        s = self.settings
        q = clean(question)
        if not 1 <= len(q) <= s.poll_question_chars:
            raise ChatRefused(
                "INVALID_POLL_QUESTION",
                f"the question has 1 to {s.poll_question_chars} characters",
                field="question",
            )
        low, high = s.poll_options
        if not isinstance(options, list) or not low <= len(options) <= high:
            raise ChatRefused(
                "INVALID_POLL_OPTIONS", f"a poll has {low} to {high} options", field="options"
            )
        cleaned = [clean(o) for o in options]
        for i, option in enumerate(cleaned):
            if not 1 <= len(option) <= s.poll_option_chars:
                raise ChatRefused(
                    "INVALID_POLL_OPTIONS",
                    f"an option has 1 to {s.poll_option_chars} characters",
                    field=f"options[{i}]",
                )
        if len({normalize(o) for o in cleaned}) != len(cleaned):
            raise ChatRefused("INVALID_POLL_OPTIONS", "the options must differ", field="options")
        shortest, longest = s.poll_duration_s
        if (
            isinstance(duration_s, bool)
            or not isinstance(duration_s, int | float)
            or not shortest <= duration_s <= longest
        ):
            raise ChatRefused(
                "INVALID_POLL_DURATION",
                f"a poll lasts {shortest} to {longest} seconds",
                field="duration_s",
            )
        # The id is taken before the script so that the script names every key it touches
        # (Redis Cluster); a refused start leaves a gap in the numbering, which is harmless.
        seq = self.r.hincrby(chat_key(sid), "poll_seq", 1)
        poll_id = f"poll{seq}"
        now = self.clock.now()
        doc = json.dumps(
            {"question": q, "options": cleaned, "duration_s": duration_s}, ensure_ascii=False
        )
        call = StartPollCall(
            sid=sid,
            poll_id=poll_id,
            seq=seq,
            now=now,
            ends_at=now + duration_s,
            options=len(cleaned),
            doc=doc,
        )
        reply = run(self.scripts, call)
        if reply[0] != "ok":
            raise ChatRefused(
                reply[0], MESSAGES[reply[0]], field="poll", details={"poll_id": reply[1]}
            )
        return self._poll(sid, poll_id, now)

    def vote(self, sid: str, poll_id: str, viewer_id: str, option_index: int) -> dict[str, Any]:
        """Count a viewer's one vote in an open poll and return the new tallies."""
        viewer_id = check_viewer(viewer_id)
        if not POLL_ID.match(str(poll_id)):
            raise refusal(["POLL_NOT_FOUND"])
        if isinstance(option_index, bool) or not isinstance(option_index, int):
            raise refusal(["INVALID_OPTION"])
        reply = run(self.scripts, VoteCall(sid, poll_id, viewer_id, option_index, self.clock.now()))
        if reply[0] != "ok":
            raise refusal(reply)
        return {"poll_id": poll_id, "option": option_index, "tallies": [int(t) for t in reply[1]]}

    def close_poll(self, sid: str, poll_id: str) -> dict[str, Any]:
        """Close a poll (closing it again is harmless) and return its final state."""
        if not POLL_ID.match(str(poll_id)):
            raise refusal(["POLL_NOT_FOUND"])
        now = self.clock.now()
        reply = run(self.scripts, ClosePollCall(sid, poll_id, now))
        if reply[0] != "ok":
            raise refusal(reply)
        return self._poll(sid, poll_id, now)

    def poll_state(self, sid: str) -> dict[str, Any] | None:
        """Return the open poll, or else the last one, with tallies (None if none yet)."""
        poll_id = self.r.hget(chat_key(sid), "poll")
        return self._poll(sid, poll_id, self.clock.now()) if poll_id else None

    def polls(self, sid: str) -> list[dict[str, Any]]:
        """Return every poll of the stream in order, with tallies (final once closed)."""
        ids = self.r.zrange(polls_key(sid), 0, -1)
        pipe = self.r.pipeline(transaction=False)
        for poll_id in ids:
            pipe.hgetall(poll_key(sid, poll_id))
        now = self.clock.now()
        return [poll_dict(pid, raw, now) for pid, raw in zip(ids, pipe.execute(), strict=True)]

    def _poll(self, sid: str, poll_id: str, now: float) -> dict[str, Any]:
        raw = self.r.hgetall(poll_key(sid, poll_id))
        if not raw:
            raise refusal(["POLL_NOT_FOUND"])
        return poll_dict(poll_id, raw, now)


def poll_dict(poll_id: str, raw: dict[str, str], now: float) -> dict[str, Any]:
    """Return a poll as callers see it from its stored hash, at `now`."""
    doc = json.loads(raw["doc"])
    ends_at = float(raw["ends_at"])
    closed_at = float(raw["closed_at"]) if "closed_at" in raw else None
    is_open = closed_at is None and now < ends_at
    if closed_at is None and not is_open:
        closed_at = ends_at  # ran out by the clock; nobody had to close it
    tallies = [int(raw.get(f"t{i}", 0)) for i in range(int(raw["n"]))]
    return {
        "id": poll_id,
        "question": doc["question"],
        "options": doc["options"],
        "tallies": tallies,
        "total": sum(tallies),
        "duration_s": doc["duration_s"],
        "started_at": float(raw["started_at"]),
        "ends_at": ends_at,
        "closed_at": closed_at,
        "open": is_open,
        "remaining_s": max(0.0, ends_at - now) if is_open else 0.0,
    }
