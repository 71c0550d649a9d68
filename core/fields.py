"""Field types shared by the request models: numbers that are numbers, times in a sane range.

pydantic's default (lax) mode turns JSON `true` into 1 or 1.0 and "12" into 12. A request body
is JSON, where a number has one spelling: `Number` and `Integer` take only JSON numbers (an
integer is a fine `Number`; `Integer` refuses 1.5 and 1.0), and `Flag` only true or false.
Query strings and form fields arrive as text and keep pydantic's lax parsing. Models that accept
ISO 8601 strings for times convert them before validation (see `timestamp`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field

__all__ = [
    "TIMESTAMP_MAX",
    "TIMESTAMP_MIN",
    "Flag",
    "Integer",
    "Number",
    "Timestamp",
    "timestamp",
]

# Every time a client sends is in this range: 2000-01-01 to 2100-01-01 (UTC), in unix seconds.
TIMESTAMP_MIN = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
TIMESTAMP_MAX = datetime(2100, 1, 1, tzinfo=UTC).timestamp()

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Integer = Annotated[int, Field(strict=True)]
Flag = Annotated[bool, Field(strict=True)]  # true or false; not 1, "yes" or "on"
Timestamp = Annotated[
    float, Field(strict=True, ge=TIMESTAMP_MIN, le=TIMESTAMP_MAX, allow_inf_nan=False)
]


def timestamp(value: Any) -> Any:
    """Accept unix seconds or an ISO 8601 time with an offset; answer unix seconds."""
    if isinstance(value, bool):
        raise ValueError("must be unix seconds or an ISO 8601 time with an offset")
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be unix seconds or an ISO 8601 time with an offset") from None
        if at.tzinfo is None:
            raise ValueError("an ISO 8601 time needs an offset, e.g. +08:00 or Z")
        try:
            return at.timestamp()
        except (OverflowError, ValueError):  # year 1 or 9999 at an extreme offset
            raise ValueError("the time is out of range") from None
    return value
