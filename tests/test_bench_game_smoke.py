"""The game benchmark runs end to end (--quick) and prints its figures as JSON.

No speed is asserted: only that every part ran, that the figures are positive numbers, and
that the throws in process caught at least one creature.
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
    result = run_bench_quick("game")
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
