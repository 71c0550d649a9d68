"""The game's refusals: a stable code per rule, and the CATCH script's refusals as errors."""

from __future__ import annotations

from typing import Any

from core.errors import DomainError


class GameRefused(DomainError):
    """A catch or query refused by a game rule; the code is the rule."""

    status = 409

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status, field=field, details=details)


def suspended() -> GameRefused:
    """The refusal of a suspended shopper (the catch's state read, its script, the list)."""
    return GameRefused("SUSPENDED", "this account is suspended from the game", status=403)


def no_consent() -> DomainError:
    """The refusal of a shopper who has not consented to location use."""
    return DomainError(
        "the shopper has not consented to location use",
        code="consent_required",
        field="consent",
        status=403,
    )


SCRIPT_MESSAGES = {
    "ALREADY_CAUGHT": "you caught this one already",
    "FLED": "this creature ran away from you",
    "DAILY_CAP_REACHED": "that's all the catches for today",
}


def script_refusal(reply: list) -> DomainError:
    """Return the error of the CATCH script's {'no', code[, until]} reply."""
    code = reply[1]
    if code == "CONSENT":
        return no_consent()
    if code == "SUSPENDED":
        return suspended()
    if code == "COOLDOWN":
        return GameRefused(
            code, "wait a moment before the next throw", details={"until": float(reply[2])}
        )
    return GameRefused(
        code,
        SCRIPT_MESSAGES.get(code, code),
        field="spawn_id" if code in ("ALREADY_CAUGHT", "FLED") else None,
    )
