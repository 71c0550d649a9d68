"""Member-number patterns: regular expressions a marketer writes and shoppers' input meets.

A pattern is the marketer's, the input is the shopper's, and the match runs in a web worker:
a backtracking engine (Python's `re`) lets a pattern like `(a+)+$` take exponential time on a
few dozen characters. Patterns therefore run on RE2 (the `google-re2` package), whose matching
time is linear in the input whatever the pattern. RE2 has no backreferences or lookaround; a
pattern that uses them is refused when the program is saved, with RE2's reason. Patterns and
member numbers are length-capped, and each compiled pattern's memory is bounded.
"""

from __future__ import annotations

import re2

__all__ = ["MAX_NUMBER_LEN", "MAX_PATTERN_LEN", "PatternError", "compile_pattern", "matches"]

MAX_PATTERN_LEN = 200
MAX_NUMBER_LEN = 64
# RE2 refuses to compile a pattern whose program would need more than this (e.g. nested
# counted repetitions); 1 MiB is far above any member-number format.
_MAX_MEM = 1 << 20

_OPTIONS = re2.Options()
_OPTIONS.max_mem = _MAX_MEM
_OPTIONS.log_errors = False  # a refused pattern is the marketer's error, not a log line


class PatternError(ValueError):
    """A member-number pattern RE2 cannot run, or one that is too long."""


def compile_pattern(pattern: str):
    """Compile a member-number pattern with RE2, raising PatternError if it is refused."""
    if len(pattern) > MAX_PATTERN_LEN:
        raise PatternError(f"a pattern has at most {MAX_PATTERN_LEN} characters")
    try:
        # The re2 module keeps compiled patterns in an LRU cache: this is cheap per call.
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(f"not a supported regular expression (RE2 syntax): {reason}") from None


def matches(pattern: str, number: str) -> bool:
    """Tell whether a whole member number matches the pattern (linear time in its length)."""
    if len(number) > MAX_NUMBER_LEN:
        return False
    return compile_pattern(pattern).fullmatch(number) is not None
