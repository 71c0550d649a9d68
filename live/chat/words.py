"""Banned words: a text contains one case-insensitively, with full-width forms folded, and
spelled out with separators ('b a d', 'b.a.d') too."""

from __future__ import annotations

import re
import unicodedata

SEPARATORS = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """Fold a text for comparison: NFKC (full-width letters like ｂａｄ and compatibility forms
    onto the plain ones), then casefold."""
    return unicodedata.normalize("NFKC", text).casefold()


def spelled_out(text: str) -> list[str]:
    """Return runs of single characters split by separators, joined ('b a d' -> 'bad')."""
    # Only runs of single characters are joined: stripping every space would also match
    # across real words ("this cam" would contain "scam").
    runs: list[str] = []
    current: list[str] = []
    for part in SEPARATORS.split(text) + [""]:
        if len(part) == 1:
            current.append(part)
            continue
        if len(current) > 1:
            runs.append("".join(current))
        current = []
    return runs


def find_banned_word(text: str, words: list[str]) -> str | None:
    """Return the first banned word the text contains (case-insensitive, spelled out or not)."""
    norm = normalize(text)
    spaced = " " + SEPARATORS.sub(" ", norm) + " "
    runs = spelled_out(norm)
    for word in words:
        w = normalize(word)
        if w in norm:
            return word
        w_spaced = SEPARATORS.sub(" ", w).strip()
        if w_spaced and w_spaced in spaced:
            return word
        w_bare = SEPARATORS.sub("", w)
        if w_bare and any(w_bare in run for run in runs):
            return word
    return None
