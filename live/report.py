"""After a stream: its comments, polls, questions, drops and statistics, as JSON and CSV."""

from __future__ import annotations

import json
from typing import Any

import redis

from core.csvfile import to_csv
from core.errors import Conflict

from . import keys

COMMENT_LOG_MAX = 200_000
COMMENT_COLUMNS = ("id", "at", "viewer_id", "text")


def comment_log_key(sid: str) -> str:
    """Stream: every comment of a stream, for the report (the chat keeps only the last 500)."""
    return f"{keys.stream(sid)}:comment_log"


class Reports:
    """Record what a report needs while the stream runs; read it back once it has ended."""

    def __init__(self, r: redis.Redis, streams, chat, drops, feedback) -> None:
        self.r = r
        self.streams = streams
        self.chat = chat
        self.drops = drops
        self.feedback = feedback

    def log_comment(self, sid: str, comment: dict[str, Any]) -> None:
        """Append a posted comment to the stream's comment log."""
        self.r.xadd(
            comment_log_key(sid),
            {"c": json.dumps(comment, ensure_ascii=False)},
            maxlen=COMMENT_LOG_MAX,
            approximate=True,
        )

    def comments(self, sid: str) -> list[dict[str, Any]]:
        """Return every logged comment, oldest first."""
        return [
            json.loads(fields["c"]) for _, fields in self.r.xrange(comment_log_key(sid), "-", "+")
        ]

    def report(self, sid: str) -> dict[str, Any]:
        """Return the report of an ended stream (Conflict while it has not ended)."""
        stream = self.streams.get(sid)
        if stream["status"] != "ended":
            raise Conflict(
                "the report is ready once the stream has ended",
                code="STREAM_NOT_ENDED",
                field="stream_id",
            )
        comments = self.comments(sid)
        return {
            "stream": {
                k: stream[k] for k in ("id", "title", "brand", "starts_at", "live_at", "ended_at")
            },
            "stats": self.feedback.totals(sid),
            "comments": {"count": len(comments), "csv": f"/api/streams/{sid}/report/comments.csv"},
            "polls": self.chat.polls(sid),
            "questions": self.chat.questions(sid),
            "drops": self.drops.report(sid),
        }

    def summary(self, sid: str) -> dict[str, Any]:
        """Return an ended stream's report in brief (for integrations: counts, not contents)."""
        report = self.report(sid)
        stream = report["stream"]
        return {
            "stream_id": stream["id"],
            "title": stream["title"],
            "brand": stream.get("brand"),
            "live_at": stream.get("live_at"),
            "ended_at": stream.get("ended_at"),
            "stats": report["stats"],
            "comments": report["comments"]["count"],
            "polls": [
                {"id": poll["id"], "question": poll["question"][:200], "votes": poll["total"]}
                for poll in report["polls"][:20]
            ],
            "questions": len(report["questions"]),
            "drops": [
                {
                    "drop_id": drop["id"],
                    "offer_id": drop["offer_id"],
                    "quantity": drop["quantity"],
                    "claimed": drop["claimed"],
                }
                for drop in report["drops"][:50]
            ],
        }

    def csv(self, sid: str, part: str) -> str:
        """Return one part of an ended stream's report as CSV.

        comments: id, at, viewer_id, text; polls: one row per option with its votes;
        questions: id, at, viewer_id, text, upvotes, state; drops: id, offer, quantity,
        claimed, status, window; stats: name, value.
        """
        report = self.report(sid)  # the same rule: after the stream
        rows: list[list[Any]]
        if part == "comments":
            rows = [list(COMMENT_COLUMNS)]
            rows += [[c.get(k, "") for k in COMMENT_COLUMNS] for c in self.comments(sid)]
        elif part == "polls":
            rows = [["poll_id", "question", "option", "votes", "started_at", "closed_at"]]
            for poll in report["polls"]:
                for option, votes in zip(poll["options"], poll["tallies"], strict=True):
                    rows.append(
                        [
                            poll["id"],
                            poll["question"],
                            option,
                            votes,
                            poll["started_at"],
                            poll["closed_at"],
                        ]
                    )
        elif part == "questions":
            rows = [["id", "at", "viewer_id", "text", "upvotes", "state"]]
            rows += [
                [
                    q.get("id"),
                    q.get("at"),
                    q.get("viewer_id"),
                    q.get("text"),
                    q.get("upvotes"),
                    q.get("state"),
                ]
                for q in report["questions"]
            ]
        elif part == "drops":
            rows = [
                ["id", "offer_id", "title", "quantity", "claimed", "status", "starts_at", "ends_at"]
            ]
            rows += [
                [
                    d["id"],
                    d["offer_id"],
                    d["title"],
                    d["quantity"],
                    d["claimed"],
                    d["status"],
                    d["starts_at"],
                    d["ends_at"],
                ]
                for d in report["drops"]
            ]
        else:  # stats
            rows = [["name", "value"]]
            rows += [[k, "" if v is None else v] for k, v in report["stats"].items()]
        return to_csv(rows)
