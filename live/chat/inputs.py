"""Checks of what callers hand the chat: texts and viewer ids."""

from __future__ import annotations

import unicodedata
from typing import Any

from .errors import ChatRefused


def clean(text: Any) -> str:
    """Return a text NFC-normalized and stripped ('' for anything but a string)."""
    if not isinstance(text, str):
        return ""
    return unicodedata.normalize("NFC", text).strip()


def check_viewer(viewer_id: Any) -> str:
    """Return a viewer id, or refuse INVALID_VIEWER."""
    if not isinstance(viewer_id, str) or not 1 <= len(viewer_id) <= 128:
        raise ChatRefused("INVALID_VIEWER", "not a viewer id", field="viewer_id")
    return viewer_id


def check_text(text: Any, kind: str, max_chars: int) -> str:
    """Return a comment's or question's cleaned text (kind COMMENT or QUESTION), or refuse
    <kind>_EMPTY / <kind>_TOO_LONG."""
    cleaned = clean(text)
    if not cleaned:
        raise ChatRefused(f"{kind}_EMPTY", f"the {kind.lower()} is empty", field="text")
    if len(cleaned) > max_chars:
        raise ChatRefused(
            f"{kind}_TOO_LONG",
            f"a {kind.lower()} has at most {max_chars} characters",
            field="text",
            details={"max_chars": max_chars, "chars": len(cleaned)},
        )
    return cleaned
