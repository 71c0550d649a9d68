"""CSV for people's spreadsheets: every export goes through `to_csv`, which defuses formulas.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula (and some strip a
leading tab, carriage return or space first), so a viewer's comment `=HYPERLINK("http://x","?")`
in an exported report would become a live link or worse (CSV injection, CWE-1236). Following
OWASP, such text cells are written with a leading single quote, which spreadsheets show as
text. Numbers the server writes as numbers (int, float) stay numbers, negative ones included:
only text can carry a formula. RFC 4180 quoting alone does not help (a quoted "=1+1" still runs).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

# ASCII triggers, and the full-width forms that East Asian spreadsheets read as the same.
FORMULA_STARTS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
# What spreadsheets skip before looking for a formula (space, no-break space, line breaks).
_LEADING = " \u00a0\u3000\n"


def safe_cell(value: Any) -> Any:
    """Return a cell as written: numbers as they are, None as '', text defused if needed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    text = str(value)
    stripped = text.lstrip(_LEADING)
    if text[:1] in FORMULA_STARTS or stripped[:1] in FORMULA_STARTS:
        return "'" + text
    return text


class SafeWriter:
    """Write CSV rows to an open text file (CRLF line ends, quoted where needed, formulas
    defused), one at a time: for exports streamed to a file."""

    def __init__(self, fh: Any) -> None:
        self._writer = csv.writer(fh, lineterminator="\r\n")

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row."""
        self._writer.writerow([safe_cell(cell) for cell in row])


def to_csv(rows: Iterable[Iterable[Any]]) -> str:
    """Return rows as CSV text (CRLF line ends, quoted where needed, formulas defused)."""
    out = io.StringIO()
    writer = SafeWriter(out)
    for row in rows:
        writer.writerow(row)
    return out.getvalue()
