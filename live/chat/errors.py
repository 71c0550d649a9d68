"""The chat's refusals: stable codes, their HTTP statuses, messages and fields."""

from __future__ import annotations

import math
from typing import Any

from core.errors import DomainError, RateLimited

STATUS = {
    "COMMENT_EMPTY": 422,
    "COMMENT_TOO_LONG": 422,
    "QUESTION_EMPTY": 422,
    "QUESTION_TOO_LONG": 422,
    "BANNED_WORD": 422,
    "INVALID_OPTION": 422,
    "INVALID_VIEWER": 422,
    "INVALID_SLOW_MODE": 422,
    "INVALID_MUTE": 422,
    "INVALID_BANNED_WORDS": 422,
    "INVALID_POLL_QUESTION": 422,
    "INVALID_POLL_OPTIONS": 422,
    "INVALID_POLL_DURATION": 422,
    "MUTED": 403,
    "BANNED": 403,
    "OWN_QUESTION": 403,
    "RATE_LIMITED": 429,
    "SLOW_MODE": 429,
    "COMMENT_NOT_FOUND": 404,
    "POLL_NOT_FOUND": 404,
    "QUESTION_NOT_FOUND": 404,
    # POLL_ALREADY_OPEN, POLL_CLOSED, ALREADY_VOTED, ALREADY_UPVOTED, QUESTION_CLOSED: 409
}

MESSAGES = {
    "BANNED": "you are banned from this stream's chat",
    "MUTED": "you are muted",
    "SLOW_MODE": "slow mode: wait before commenting again",
    "RATE_LIMITED": "too many comments: wait a moment",
    "COMMENT_NOT_FOUND": "no such comment",
    "POLL_NOT_FOUND": "no such poll",
    "POLL_ALREADY_OPEN": "a poll is already open on this stream",
    "POLL_CLOSED": "the poll is closed",
    "INVALID_OPTION": "no such option",
    "ALREADY_VOTED": "you have already voted in this poll",
    "QUESTION_NOT_FOUND": "no such question",
    "OWN_QUESTION": "you cannot upvote your own question",
    "QUESTION_CLOSED": "the question is no longer open",
    "ALREADY_UPVOTED": "you have already upvoted this question",
}
FIELDS = {
    "INVALID_OPTION": "option",
    "COMMENT_NOT_FOUND": "comment_id",
    "POLL_NOT_FOUND": "poll_id",
    "QUESTION_NOT_FOUND": "question_id",
}


class ChatRefused(DomainError):
    """A chat action refused, with a stable code (status by code: 422, 403, 404, 409 or 429)."""

    status = 409

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        # DomainError's own __init__, not super(): ChatThrottled puts RateLimited next in the MRO
        DomainError.__init__(
            self, message, code=code, field=field, status=STATUS.get(code, 409), details=details
        )


class ChatThrottled(ChatRefused, RateLimited):
    """A refusal that lifts by itself: RATE_LIMITED or SLOW_MODE, with retry_after."""

    def __init__(self, code: str, message: str, *, retry_after: float) -> None:
        wait = math.ceil(retry_after * 1000) / 1000  # ms, rounded up so a retry then succeeds
        super().__init__(code, message, details={"retry_after": wait})
        # whole seconds for the HTTP Retry-After header that app/errors.py adds for RateLimited
        self.retry_after = max(1, math.ceil(wait))


def refusal(reply: list) -> ChatRefused:
    """Return the refusal a script's reply (or a check) names: [code, detail?]."""
    code = reply[0]
    if code in ("SLOW_MODE", "RATE_LIMITED"):
        return ChatThrottled(code, MESSAGES[code], retry_after=float(reply[1]))
    details = {"until": float(reply[1])} if code == "MUTED" else None
    return ChatRefused(
        code, MESSAGES.get(code, code.lower()), field=FIELDS.get(code), details=details
    )
