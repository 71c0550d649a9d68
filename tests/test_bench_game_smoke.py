"""The game benchmark runs end to end (--quick) and prints its figures as JSON.

No speed is asserted: only that every part ran, that the figures are positive numbers, that
the throws in process caught at least one creature, and that with two caller processes every
throw is accounted for and the books agree with what the callers were told.
"""

from __future__ import annotations

import math

from tests.helpers import run_bench_quick

FIRST_KEYS = ["bench", "spawn_queries_per_s", "catches_per_s", "p99_ms"]
FIGURES = (
    "spawn_queries_per_s",
    "catches_per_s",
    "p99_ms",
    "spawn_p50_ms",
    "catch_p50_ms",
    "spawns_per_query",
    "http_spawn_queries_per_s",
    "http_catches_per_s",
)


def test_game_bench_quick_prints_figures():
    # Two caller processes after the one caller: the headline catch figures are theirs.
    result = run_bench_quick("game", args=("--catch-processes", "2"))
    assert list(result)[:4] == FIRST_KEYS
    assert result["bench"] == "game"
    for key in FIGURES:
        value = result[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)
    assert result["outcomes"].get("caught", 0) >= 1, result["outcomes"]
    # One outcome or one refusal per timed catch call; the rate counts catches that caught.
    answered = sum(result["outcomes"].values()) + sum(result["refusals"].values())
    assert answered == result["catch"]["calls"], (result["outcomes"], result["catch"])
    caught_rate = result["outcomes"]["caught"] / result["catch"]["in_call_s"]
    assert math.isclose(result["caught_per_s"], caught_rate, rel_tol=0.01), result["caught_per_s"]
    assert result["p99_ms"] == max(result["spawn_p99_ms"], result["catch_p99_ms"])
    # The two callers: their throws add up, and the coupons and points they were told of are
    # exactly those in the campaign's book and on its board.
    assert result["catch_processes"] == 2
    per_process = result["catch_per_process"]
    assert len(per_process) == 2
    assert sum(p["calls"] for p in per_process) == result["catch"]["calls"]
    ledger = result["catch_ledger"]
    assert ledger["coupons_in_book"] == ledger["coupons_told"] == result["coupons_issued"]
    assert ledger["points_on_board"] == ledger["points_told"] and ledger["agree"] is True
    # The one caller before them, in the same run.
    one = result["catch_one_caller"]
    answered = sum(one["outcomes"].values()) + sum(one["refusals"].values())
    assert answered == one["calls"] >= 1, one
    assert math.isclose(
        result["catches_per_s_one_caller"], one["calls"] / one["in_call_s"], rel_tol=0.01
    )
