"""Unit tests for geo.hours: opening hours in the store's time zone."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from geo.hours import ALWAYS_OPEN, DAYS, HoursError, parse_hours

EVERY_DAY_10_22 = {d: [["10:00", "22:00"]] for d in DAYS}


def local_ts(tz: str, stamp: str, fold: int = 0) -> float:
    """Return the unix timestamp of a wall-clock time ("2026-03-02T01:00") in tz."""
    return datetime.fromisoformat(stamp).replace(tzinfo=ZoneInfo(tz), fold=fold).timestamp()


def utc_ts(stamp: str) -> float:
    """Return the unix timestamp of a UTC time ("2026-03-29T08:15")."""
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()


# --------------------------------------------------------------------------- overnight


SPLIT_SUNDAY = {
    "tz": "Asia/Shanghai",
    "weekly": {"mon": [["10:00", "22:00"]], "sun": [["09:00", "12:00"], ["14:00", "02:00"]]},
}


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-03-01T08:59", False),  # Sunday before opening
        ("2026-03-01T09:00", True),
        ("2026-03-01T11:59", True),
        ("2026-03-01T12:00", False),  # lunch break
        ("2026-03-01T13:59", False),
        ("2026-03-01T14:00", True),
        ("2026-03-01T23:59", True),
        ("2026-03-02T00:00", True),  # Monday, spilled over from Sunday
        ("2026-03-02T01:00", True),
        ("2026-03-02T01:59", True),
        ("2026-03-02T02:00", False),
        ("2026-03-02T09:59", False),
        ("2026-03-02T10:00", True),
        ("2026-03-02T22:00", False),
        ("2026-03-03T01:00", False),  # Tuesday: no spill from Monday
        ("2026-02-28T12:00", False),  # Saturday: missing day is closed
    ],
)
def test_overnight_spill_wraps_sunday_into_monday(stamp: str, expected: bool) -> None:
    assert date.fromisoformat("2026-03-01").weekday() == 6
    hours = parse_hours(SPLIT_SUNDAY)
    assert hours.is_open_ts(local_ts("Asia/Shanghai", stamp)) is expected


@pytest.mark.parametrize(
    ("ranges", "stamp", "expected"),
    [
        ([["20:00", "24:00"]], "2026-03-02T23:59", True),
        ([["20:00", "24:00"]], "2026-03-03T00:00", False),
        ([["00:00", "24:00"]], "2026-03-02T00:00", True),
        ([["00:00", "24:00"]], "2026-03-02T23:59", True),
        ([["00:00", "24:00"]], "2026-03-03T00:00", False),
        # end == start: a 24-hour range running into the next day
        ([["10:00", "10:00"]], "2026-03-02T09:59", False),
        ([["10:00", "10:00"]], "2026-03-03T09:59", True),
        ([["10:00", "10:00"]], "2026-03-03T10:00", False),
        ([["22:00", "00:00"]], "2026-03-02T23:30", True),
        ([["22:00", "00:00"]], "2026-03-03T00:00", False),
    ],
)
def test_midnight_edges(ranges: list, stamp: str, expected: bool) -> None:
    hours = parse_hours({"tz": "UTC", "weekly": {"mon": ranges}})
    assert hours.is_open_ts(utc_ts(stamp)) is expected


def test_adjacent_ranges_are_allowed() -> None:
    hours = parse_hours(
        {
            "tz": "UTC",
            "weekly": {
                "mon": [["10:00", "14:00"], ["14:00", "18:00"]],
                "tue": [["00:00", "03:00"]],
                "sun": [["20:00", "00:00"]],
            },
        }
    )
    assert hours.is_open_ts(utc_ts("2026-03-02T14:00"))
    assert hours.is_open_ts(utc_ts("2026-03-01T23:59"))


# --------------------------------------------------------------------------- time zones & DST


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        # Spring forward on Sunday 2026-03-29: 10:00 local is 09:00Z before, 08:00Z after.
        ("2026-03-28T08:15", False),  # 09:15 CET
        ("2026-03-28T09:15", True),  # 10:15 CET
        ("2026-03-29T08:15", True),  # 10:15 CEST
        ("2026-03-29T19:59", True),  # 21:59 CEST
        ("2026-03-29T20:00", False),  # 22:00 CEST
        # Fall back on Sunday 2026-10-25.
        ("2026-10-24T20:30", False),  # 22:30 CEST
        ("2026-10-24T19:30", True),  # 21:30 CEST
        ("2026-10-25T20:30", True),  # 21:30 CET
        ("2026-10-25T21:15", False),  # 22:15 CET
        ("2026-10-25T08:30", False),  # 09:30 CET
    ],
)
def test_dst_berlin(utc: str, expected: bool) -> None:
    hours = parse_hours({"tz": "Europe/Berlin", "weekly": EVERY_DAY_10_22})
    assert hours.is_open_ts(utc_ts(utc)) is expected
    when = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert hours.is_open(when) is expected
    # Any aware datetime naming the same instant gives the same answer.
    assert hours.is_open(when.astimezone(ZoneInfo("America/New_York"))) is expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        ("2026-03-29T00:59", True),  # 01:59 CET
        ("2026-03-29T01:00", True),  # 03:00 CEST (02:xx never happens)
        ("2026-03-29T01:59", True),  # 03:59 CEST
        ("2026-03-29T02:00", False),  # 04:00 CEST
        ("2026-03-28T23:59", False),  # 00:59 CET
    ],
)
def test_dst_gap_inside_a_range(utc: str, expected: bool) -> None:
    hours = parse_hours({"tz": "Europe/Berlin", "weekly": {"sun": [["01:00", "04:00"]]}})
    assert hours.is_open_ts(utc_ts(utc)) is expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        ("2026-10-25T00:15", True),  # 02:15 CEST, first pass
        ("2026-10-25T01:15", True),  # 02:15 CET, second pass
        ("2026-10-25T01:29", True),  # 02:29 CET
        ("2026-10-25T01:30", False),  # 02:30 CET
        ("2026-10-25T00:45", False),  # 02:45 CEST: the wall clock is past 02:30
    ],
)
def test_dst_repeated_hour(utc: str, expected: bool) -> None:
    hours = parse_hours({"tz": "Europe/Berlin", "weekly": {"sat": [["22:00", "02:30"]]}})
    assert hours.is_open_ts(utc_ts(utc)) is expected


@pytest.mark.parametrize(
    "order",
    [
        ["15:20", "15:40", "15:29", "15:30"],
        ["15:40", "15:20", "15:30", "15:29"],
    ],
)
def test_half_hour_transition_is_not_cached_per_hour(order: list[str]) -> None:
    # Lord Howe Island moves from +10:30 to +11:00 at 15:30Z on 2026-10-03, mid-hour.
    hours = parse_hours({"tz": "Australia/Lord_Howe", "weekly": {"sun": [["02:00", "02:35"]]}})
    expected = {"15:20": False, "15:29": False, "15:30": True, "15:40": False}
    for hm in order:
        assert hours.is_open_ts(utc_ts(f"2026-10-03T{hm}")) is expected[hm], hm


def _reference_open(spec: dict, ts: float) -> bool:
    # Independent, slow model: the wall clock, today's ranges and yesterday's spill.
    local = datetime.fromtimestamp(ts, ZoneInfo(spec["tz"]))
    today = local.date()
    minute = local.hour * 60 + local.minute
    closed = {date.fromisoformat(d) for d in spec.get("closed_dates", [])}

    def minutes(s: str) -> int:
        return int(s[:2]) * 60 + int(s[3:])

    weekly = spec["weekly"]
    if today not in closed:
        for start, end in weekly.get(DAYS[today.weekday()], []):
            s, e = minutes(start), minutes(end)
            if e <= s:
                e += 1440
            if s <= minute < min(e, 1440):
                return True
    yesterday = today - timedelta(days=1)
    if yesterday not in closed:
        for start, end in weekly.get(DAYS[yesterday.weekday()], []):
            s, e = minutes(start), minutes(end)
            if e <= s and minute < e:
                return True
    return False


@pytest.mark.parametrize(
    "tz",
    [
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
        "Asia/Shanghai",
        "America/Santiago",
        "UTC",
    ],
)
def test_matches_reference_model(tz: str) -> None:
    spec = {
        "tz": tz,
        "weekly": {
            "mon": [["10:00", "22:00"]],
            "tue": [["00:00", "01:30"], ["09:45", "24:00"]],
            "wed": [["11:00", "14:00"], ["17:00", "23:00"]],
            "fri": [["18:00", "02:00"]],
            "sat": [["02:00", "03:00"], ["12:00", "04:00"]],
            "sun": [["14:00", "02:30"]],
        },
        "closed_dates": ["2026-03-08", "2026-03-29", "2026-10-03", "2026-11-01", "2026-12-25"],
    }
    hours = parse_hours(spec)
    rng = random.Random(tz)
    start = utc_ts("2026-01-01T00:00")
    stamps = [start + rng.uniform(0, 366 * 86400) for _ in range(3000)]
    # Dense sweeps across a few DST transitions (and their surroundings).
    for day in ("2026-03-08", "2026-03-29", "2026-04-05", "2026-10-04", "2026-10-25", "2026-11-01"):
        base = utc_ts(f"{day}T00:00") - 86400
        stamps += [base + k * 300 for k in range(3 * 288)]
    for ts in stamps:
        assert hours.is_open_ts(ts) is _reference_open(spec, ts), (
            tz,
            datetime.fromtimestamp(ts, ZoneInfo(tz)).isoformat(),
        )


def test_naive_datetime_is_refused() -> None:
    hours = parse_hours({"tz": "UTC", "weekly": EVERY_DAY_10_22})
    with pytest.raises(ValueError, match="aware"):
        hours.is_open(datetime(2026, 3, 2, 12, 0))


# --------------------------------------------------------------------------- closed dates


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-12-24T19:00", True),
        ("2026-12-25T01:00", True),  # Dec 24's range spilling into the closed date
        ("2026-12-25T19:00", False),  # the closed date's own range
        ("2026-12-26T01:00", False),  # ... and its spill
        ("2026-12-26T19:00", True),
    ],
)
def test_closed_dates_close_the_business_day(stamp: str, expected: bool) -> None:
    spec = {
        "tz": "Asia/Shanghai",
        "weekly": {d: [["18:00", "02:00"]] for d in DAYS},
        "closed_dates": ["2026-12-25"],
    }
    hours = parse_hours(spec)
    assert hours.is_open_ts(local_ts("Asia/Shanghai", stamp)) is expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        ("2026-12-24T15:30", True),  # 23:30 on the 24th in Shanghai
        ("2026-12-24T16:30", False),  # 00:30 on the 25th in Shanghai, still the 24th in UTC
        ("2026-12-25T15:59", False),  # 23:59 on the 25th
        ("2026-12-25T16:00", True),  # 00:00 on the 26th
    ],
)
def test_closed_dates_use_the_store_local_date(utc: str, expected: bool) -> None:
    hours = parse_hours({"tz": "Asia/Shanghai", "always": True, "closed_dates": ["2026-12-25"]})
    assert not hours.always_open
    assert hours.is_open_ts(utc_ts(utc)) is expected


# --------------------------------------------------------------------------- 24/7


@pytest.mark.parametrize("spec", [None, {"always": True}, {"tz": "Asia/Shanghai", "always": True}])
def test_always_open(spec: dict | None) -> None:
    hours = parse_hours(spec)
    assert hours.always_open
    rng = random.Random(7)
    for _ in range(200):
        assert hours.is_open_ts(rng.uniform(0, 4e9))
    assert hours.is_open(datetime(2026, 12, 25, 3, 0, tzinfo=UTC))


def test_none_is_the_shared_always_open() -> None:
    assert parse_hours(None) is ALWAYS_OPEN


def test_empty_week_is_never_open() -> None:
    hours = parse_hours({"tz": "UTC", "weekly": {}})
    assert not hours.always_open
    assert not any(hours.is_open_ts(utc_ts("2026-03-02T00:00") + h * 3600) for h in range(168))


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize(
    "spec",
    [
        None,
        {"tz": "Asia/Shanghai", "always": True},
        {"tz": "Europe/Berlin", "always": True, "closed_dates": ["2026-12-26", "2026-12-25"]},
        SPLIT_SUNDAY,
        {
            "tz": "UTC",
            "weekly": {"sun": [], "mon": [["08:00", "24:00"]]},
            "closed_dates": ["2026-01-01", "2026-01-01"],
        },
    ],
)
def test_to_dict_round_trip(spec: dict | None) -> None:
    hours = parse_hours(spec)
    d = hours.to_dict()
    again = parse_hours(d)
    assert again == hours and again.to_dict() == d and hash(again) == hash(hours)
    if spec and "closed_dates" in spec:
        assert d["closed_dates"] == sorted(set(spec["closed_dates"]))
    if spec and "weekly" in spec:
        assert list(d["weekly"]) == [day for day in DAYS if day in spec["weekly"]]


# --------------------------------------------------------------------------- refusals


def _w(**days: list) -> dict:
    return {"tz": "Asia/Shanghai", "weekly": days}


REFUSALS = [
    # (id, spec, field, words in the reason)
    ("not-object", "10:00-22:00", "opening_hours", "object"),
    ("unknown-key", {**_w(), "note": "hi"}, "opening_hours.note", "unknown"),
    ("bad-tz", {"tz": "Mars/Olympus_Mons", "weekly": {}}, "opening_hours.tz", "time zone"),
    ("tz-path", {"tz": "../../etc/passwd", "weekly": {}}, "opening_hours.tz", "time zone"),
    ("tz-number", {"tz": 8, "weekly": {}}, "opening_hours.tz", "IANA"),
    ("tz-missing", {"weekly": {}}, "opening_hours.tz", "required"),
    (
        "tz-missing-closed",
        {"always": True, "closed_dates": ["2026-12-25"]},
        "opening_hours.tz",
        "required",
    ),
    ("no-weekly", {"tz": "UTC"}, "opening_hours.weekly", "required"),
    ("always-and-weekly", {**_w(), "always": True}, "opening_hours.weekly", "either"),
    ("always-string", {"tz": "UTC", "always": "yes"}, "opening_hours.always", "true or false"),
    (
        "weekly-list",
        {"tz": "UTC", "weekly": [["10:00", "22:00"]]},
        "opening_hours.weekly",
        "object",
    ),
    ("unknown-day", _w(monday=[["10:00", "22:00"]]), "opening_hours.weekly.monday", "unknown day"),
    ("day-not-list", _w(tue="10:00-22:00"), "opening_hours.weekly.tue", "array"),
    (
        "range-shape",
        _w(mon=[["10:00", "14:00", "18:00"]]),
        "opening_hours.weekly.mon[0]",
        "[start, end]",
    ),
    ("range-string", _w(mon=["10:00-22:00"]), "opening_hours.weekly.mon[0]", "[start, end]"),
    ("hour-25", _w(mon=[["10:00", "25:00"]]), "opening_hours.weekly.mon[0]", "bad time"),
    ("minute-60", _w(wed=[["10:60", "22:00"]]), "opening_hours.weekly.wed[0]", "bad time"),
    ("one-digit-hour", _w(mon=[["9:00", "22:00"]]), "opening_hours.weekly.mon[0]", "HH:MM"),
    ("seconds", _w(mon=[["09:00:00", "22:00"]]), "opening_hours.weekly.mon[0]", "HH:MM"),
    ("int-time", _w(mon=[[900, 2200]]), "opening_hours.weekly.mon[0]", "strings"),
    ("start-24", _w(mon=[["24:00", "02:00"]]), "opening_hours.weekly.mon[0]", "end time"),
    (
        "seven-ranges",
        _w(fri=[[f"{h:02d}:00", f"{h:02d}:30"] for h in range(7)]),
        "opening_hours.weekly.fri",
        "at most 6",
    ),
    (
        "overlap-same-day",
        _w(mon=[["10:00", "14:00"], ["13:00", "18:00"]]),
        "opening_hours.weekly.mon[1]",
        "overlaps mon[0]",
    ),
    (
        "overlap-unsorted",
        _w(mon=[["13:00", "18:00"], ["10:00", "14:00"]]),
        "opening_hours.weekly.mon[0]",
        "overlaps mon[1]",
    ),
    (
        "overlap-via-spill",
        _w(mon=[["20:00", "08:00"]], tue=[["07:00", "09:00"]]),
        "opening_hours.weekly.tue[0]",
        "overlaps mon[0]",
    ),
    (
        "overlap-sunday-wrap",
        _w(sun=[["22:00", "02:00"]], mon=[["01:00", "03:00"]]),
        "opening_hours.weekly.mon[0]",
        "overlaps sun[0]",
    ),
    (
        "overlap-full-day",
        _w(sat=[["10:00", "10:00"], ["20:00", "21:00"]]),
        "opening_hours.weekly.sat[1]",
        "overlaps sat[0]",
    ),
    (
        "closed-not-list",
        {**_w(), "closed_dates": "2026-12-25"},
        "opening_hours.closed_dates",
        "array",
    ),
    (
        "closed-month-13",
        {**_w(), "closed_dates": ["2026-12-24", "2026-13-01"]},
        "opening_hours.closed_dates[1]",
        "bad date",
    ),
    (
        "closed-basic-format",
        {**_w(), "closed_dates": ["20261225"]},
        "opening_hours.closed_dates[0]",
        "YYYY-MM-DD",
    ),
    (
        "closed-int",
        {**_w(), "closed_dates": [20261225]},
        "opening_hours.closed_dates[0]",
        "YYYY-MM-DD",
    ),
]


@pytest.mark.parametrize(
    ("spec", "field", "words"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_parse_hours_refusals(spec: object, field: str, words: str) -> None:
    with pytest.raises(HoursError) as info:
        parse_hours(spec)
    assert info.value.field == field
    assert words.lower() in info.value.reason.lower()
    assert isinstance(info.value, ValueError)
