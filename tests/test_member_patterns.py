"""Member-number patterns run on RE2: a marketer's pattern cannot make a shopper's input hang."""

from __future__ import annotations

import json

import pytest

from promotions import keys
from promotions.patterns import MAX_NUMBER_LEN, PatternError, compile_pattern, matches

from .helpers import assert_error

# Under Python's backtracking `re`, fullmatch of this pattern on n "a"s and a "!" takes
# ~2**n steps: 41 characters would block a worker for days. RE2 answers in linear time.
EVIL = r"(a+)+$"
EVIL_INPUT = "a" * 40 + "!"


def test_the_classic_evil_pattern_answers_correctly_on_a_long_input():
    assert matches(EVIL, EVIL_INPUT) is False
    assert matches(EVIL, "a" * 60) is True
    assert matches(r"^(\d+)*X$", "1" * 50 + "Y") is False


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a)\1",  # backreference: Python's re accepts it, RE2 has none
        r"^(?=AC)[A-Z0-9]{8}$",  # lookahead
        r"(?<!x)y",  # lookbehind
        r"\d{6}\Z",  # Python's \Z
        r"(a{100}){100}",  # a program too big to compile within the memory bound
        "x" * 201,  # too long
    ],
)
def test_patterns_re2_cannot_run_in_linear_time_are_refused(pattern):
    with pytest.raises(PatternError):
        compile_pattern(pattern)


def test_a_number_longer_than_the_cap_never_matches():
    assert matches(r"^[0-9]+$", "1" * MAX_NUMBER_LEN)
    assert not matches(r"^[0-9]+$", "1" * (MAX_NUMBER_LEN + 1))


@pytest.mark.parametrize(
    ("pattern", "field"),
    [
        (r"^(?=AC)[A-Z0-9]{8}$", "number_pattern"),
        (r"(a)\1", "number_pattern"),
    ],
)
def test_the_api_refuses_a_pattern_re2_cannot_run(client, auth, pattern, field):
    marketer, _ = auth.headers("marketer")
    response = client.post(
        "/api/membership-programs",
        headers=marketer,
        json={"id": "club", "name": "Club", "number_pattern": pattern},
    )
    error = assert_error(response, 422, "validation_error", field)
    assert "RE2" in error["message"]


def test_linking_with_an_evil_pattern_completes_and_is_correct(client, auth):
    marketer, _ = auth.headers("marketer")
    created = client.post(
        "/api/membership-programs",
        headers=marketer,
        json={"id": "evil", "name": "Evil", "number_pattern": EVIL},
    )
    assert created.status_code == 201, created.get_json()
    shopper, _ = auth.headers("shopper")
    assert_error(
        client.put("/api/me/memberships/evil", json={"member_number": EVIL_INPUT}, headers=shopper),
        422,
        "invalid_member_number",
        "member_number",
    )
    linked = client.put(
        "/api/me/memberships/evil", json={"member_number": "a" * 40}, headers=shopper
    )
    assert linked.status_code == 200 and linked.get_json()["member_number"] == "a" * 40


def test_a_stored_pattern_re2_cannot_run_is_a_conflict_not_a_500(client, auth, redis_client):
    # A program saved before patterns were checked for RE2.
    redis_client.hset(
        keys.PROGRAMS,
        "old",
        json.dumps(
            {"id": "old", "name": "Old", "number_pattern": r"^(?=AC)AC\d{6}$", "created_at": 0}
        ),
    )
    shopper, _ = auth.headers("shopper")
    assert_error(
        client.put("/api/me/memberships/old", json={"member_number": "AC123456"}, headers=shopper),
        409,
        "program_pattern_unsupported",
        "program",
    )
