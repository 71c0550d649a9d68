"""Store opening hours in the store's own time zone.

Spec (JSON)::

    {"tz": "Asia/Shanghai",
     "weekly": {"mon": [["10:00", "22:00"]], "sun": [["09:00", "12:00"], ["14:00", "02:00"]]},
     "closed_dates": ["2026-12-25"]}

A range whose end is not after its start runs past midnight into the next day; "24:00" is
allowed as an end. A missing day is closed. ``{"tz": ..., "always": true}`` and ``None``
mean open around the clock.

A range belongs to the day it starts on (its business day). A closed date cancels the
ranges that start on it, including their spill past midnight, but not the previous day's
spill into it: a bar open "Sat 22:00-02:00" with Sunday closed is still open at 01:00 on
Sunday.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ALWAYS_OPEN", "DAYS", "Hours", "HoursError", "parse_hours"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_RANGES_PER_DAY = 6
MAX_CLOSED_DATES = 1000
_WEEK_MIN = 7 * 1440
_TIME_RE = re.compile(r"^([0-9]{2}):([0-9]{2})$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# 1970-01-01 was a Thursday; with Monday = 0 that is weekday 3.
_EPOCH_WEEKDAY = 3
# Offsets are cached per UTC hour; a year of hours is ~9k entries, so clearing at this
# size bounds memory without ever thrashing on live traffic (which sits in the current hour).
_CACHE_MAX = 16384


class HoursError(ValueError):
    """An opening-hours specification was refused; `field` points at the offending input."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        """Record the human-readable reason and the field path."""
        super().__init__(f"{field}: {reason}" if field else reason)
        self.reason = reason
        self.field = field


class Hours:
    """Parsed opening hours; use parse_hours() to build one from a spec."""

    __slots__ = (
        "tz",
        "always",
        "weekly",
        "closed_dates",
        "_zone",
        "_starts",
        "_ends",
        "_spill",
        "_closed",
        "_cache",
    )

    def __init__(
        self,
        tz: str | None,
        always: bool,
        weekly: dict[str, tuple[tuple[str, str], ...]],
        closed_dates: tuple[str, ...],
        fragments: list[tuple[int, int, int]],
    ) -> None:
        """Store already-validated parts; parse_hours is the public constructor."""
        self.tz = tz
        self.always = always
        self.weekly = weekly
        self.closed_dates = closed_dates
        self._zone = ZoneInfo(tz) if tz is not None else None
        # Open intervals in minutes of the local week (Mon 00:00 = 0), sorted and disjoint.
        # _spill[i] is 1 when the fragment is the after-midnight part of the previous
        # day's range, so closed dates can be charged to the right business day.
        fragments = sorted(fragments)
        self._starts = [f[0] for f in fragments]
        self._ends = [f[1] for f in fragments]
        self._spill = [f[2] for f in fragments]
        # Local dates as days since the epoch: the hot path works in integers only.
        self._closed = frozenset(
            date.fromisoformat(d).toordinal() - _EPOCH_ORDINAL for d in closed_dates
        )
        self._cache: dict[int, int] = {}

    @property
    def always_open(self) -> bool:
        """Return True when the store never closes (24/7 without closed dates)."""
        return self.always and not self._closed

    def _utcoffset(self, sec: int) -> int:
        assert self._zone is not None
        dt = datetime.fromtimestamp(sec, self._zone)
        off = dt.utcoffset()
        return 0 if off is None else int(off.total_seconds())

    def _offset_slow(self, sec: int, hour: int) -> int:
        t0 = hour * 3600
        o0 = self._utcoffset(t0)
        if o0 == self._utcoffset(t0 + 3599):
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[hour] = o0
            return o0
        # A transition inside this hour (e.g. Lord Howe's half-hour DST, historical odd
        # instants): answer for the exact second and don't cache the hour.
        return self._utcoffset(sec)

    def is_open_ts(self, ts: float) -> bool:
        """Return True when the store is open at the unix timestamp ts (seconds, UTC)."""
        if self.always and not self._closed:
            return True
        try:
            sec = math.floor(ts)
        except (OverflowError, ValueError) as e:
            raise ValueError(f"timestamp out of range: {ts!r}") from e
        if self._zone is None:
            off = 0
        else:
            hour = sec // 3600
            off = self._cache.get(hour)
            if off is None:
                try:
                    off = self._offset_slow(sec, hour)
                except (OverflowError, OSError, ValueError) as e:
                    raise ValueError(f"timestamp out of range: {ts!r}") from e
        days, sod = divmod(sec + off, 86400)
        if self.always:
            return days not in self._closed
        mow = ((days + _EPOCH_WEEKDAY) % 7) * 1440 + sod // 60
        i = bisect_right(self._starts, mow) - 1
        if i < 0 or mow >= self._ends[i]:
            return False
        if self._closed:
            # The spill past midnight belongs to the day its range started on.
            return days - self._spill[i] not in self._closed
        return True

    def is_open(self, when_utc: datetime) -> bool:
        """Return True when the store is open at the aware datetime when_utc."""
        if when_utc.tzinfo is None or when_utc.utcoffset() is None:
            raise ValueError("is_open needs an aware datetime")
        return self.is_open_ts(when_utc.timestamp())

    def to_dict(self) -> dict[str, Any]:
        """Return the normalised JSON spec; parse_hours(h.to_dict()) == h."""
        d: dict[str, Any] = {}
        if self.tz is not None:
            d["tz"] = self.tz
        if self.always:
            d["always"] = True
        else:
            d["weekly"] = {day: [list(r) for r in ranges] for day, ranges in self.weekly.items()}
        if self.closed_dates:
            d["closed_dates"] = list(self.closed_dates)
        return d

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hours):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.tz, self.always, self.closed_dates, tuple(self.weekly.items())))

    def __repr__(self) -> str:
        return f"Hours({self.to_dict()!r})"


ALWAYS_OPEN = Hours(None, True, {}, (), [])

_TOP_KEYS = frozenset({"tz", "always", "weekly", "closed_dates"})
_F = "opening_hours"


def _minutes(v: Any, field: str, is_end: bool) -> int:
    if not isinstance(v, str):
        raise HoursError('times must be strings like "09:30"', field)
    m = _TIME_RE.match(v)
    if not m:
        raise HoursError(f"bad time {v!r}: expected HH:MM", field)
    h, mi = int(m.group(1)), int(m.group(2))
    if h == 24 and mi == 0:
        if not is_end:
            raise HoursError("24:00 is only allowed as an end time", field)
        return 1440
    if h > 23 or mi > 59:
        raise HoursError(f"bad time {v!r}", field)
    return h * 60 + mi


def _parse_weekly(
    weekly: Any,
) -> tuple[dict[str, tuple[tuple[str, str], ...]], list[tuple[int, int, int]]]:
    wf = f"{_F}.weekly"
    if not isinstance(weekly, dict):
        raise HoursError("weekly must be an object keyed by mon..sun", wf)
    for key in weekly:
        if key not in DAYS:
            raise HoursError(
                "unknown day: expected one of mon, tue, wed, thu, fri, sat, sun", f"{wf}.{key}"
            )
    normalised: dict[str, tuple[tuple[str, str], ...]] = {}
    # (start, end, spill, field) in minutes of the week, for the overlap check.
    frags: list[tuple[int, int, int, str]] = []
    for d, day in enumerate(DAYS):
        if day not in weekly:
            continue
        ranges = weekly[day]
        df = f"{wf}.{day}"
        if not isinstance(ranges, list):
            raise HoursError("a day must be an array of [start, end] ranges", df)
        if len(ranges) > MAX_RANGES_PER_DAY:
            raise HoursError(f"at most {MAX_RANGES_PER_DAY} ranges per day", df)
        kept = []
        for i, r in enumerate(ranges):
            rf = f"{df}[{i}]"
            if not isinstance(r, list | tuple) or len(r) != 2:
                raise HoursError("a range must be [start, end]", rf)
            start = _minutes(r[0], rf, is_end=False)
            end = _minutes(r[1], rf, is_end=True)
            if end <= start:
                end += 1440
            base = d * 1440
            frags.append((base + start, base + min(end, 1440), 0, rf))
            if end > 1440:
                # Sunday's spill wraps round to Monday morning.
                nxt = ((d + 1) % 7) * 1440
                frags.append((nxt, nxt + end - 1440, 1, rf))
            kept.append((r[0], r[1]))
        # An explicit [] is kept as written: it documents "closed" for that day.
        normalised[day] = tuple(kept)
    frags.sort()
    for a, b in zip(frags, frags[1:], strict=False):
        if b[0] < a[1]:
            other = a[3] if a[3] != b[3] else "itself"
            raise HoursError(f"overlaps {other.removeprefix(wf + '.')}", b[3])
    return normalised, [(s, e, sp) for s, e, sp, _ in frags]


def _parse_closed(v: Any) -> tuple[str, ...]:
    cf = f"{_F}.closed_dates"
    if not isinstance(v, list):
        raise HoursError("closed_dates must be an array of YYYY-MM-DD strings", cf)
    if len(v) > MAX_CLOSED_DATES:
        raise HoursError(f"at most {MAX_CLOSED_DATES} closed dates", cf)
    out = set()
    for i, s in enumerate(v):
        f = f"{cf}[{i}]"
        # date.fromisoformat alone would also take "20261225" and week dates.
        if not isinstance(s, str) or not _DATE_RE.match(s):
            raise HoursError("dates must be YYYY-MM-DD strings", f)
        try:
            date.fromisoformat(s)
        except ValueError as e:
            raise HoursError(f"bad date {s!r}", f) from e
        out.add(s)
    return tuple(sorted(out))


def parse_hours(spec: Any) -> Hours:
    """Validate an opening-hours spec (None = always open), raising HoursError on refusal."""
    if spec is None:
        return ALWAYS_OPEN
    if not isinstance(spec, dict):
        raise HoursError("opening_hours must be an object or null", _F)
    for key in spec:
        if key not in _TOP_KEYS:
            raise HoursError("unknown key", f"{_F}.{key}")

    always = spec.get("always", False)
    if not isinstance(always, bool):
        raise HoursError("always must be true or false", f"{_F}.always")
    if always and "weekly" in spec:
        raise HoursError("give either always or weekly, not both", f"{_F}.weekly")
    if not always and "weekly" not in spec:
        raise HoursError("weekly is required unless always is true", f"{_F}.weekly")

    tz = spec.get("tz")
    needs_tz = not always or "closed_dates" in spec
    if tz is None:
        if needs_tz:
            raise HoursError('tz is required, e.g. "Asia/Shanghai"', f"{_F}.tz")
    elif not isinstance(tz, str) or not tz:
        raise HoursError("tz must be an IANA time zone name", f"{_F}.tz")
    else:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError) as e:
            raise HoursError(f"unknown time zone {tz!r}", f"{_F}.tz") from e

    closed = _parse_closed(spec["closed_dates"]) if "closed_dates" in spec else ()
    if always:
        return Hours(tz, True, {}, closed, [])
    weekly, frags = _parse_weekly(spec["weekly"])
    return Hours(tz, False, weekly, closed, frags)
