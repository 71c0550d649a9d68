"""The cluster benchmark runs end to end (--quick) and prints its figures as JSON.

No speed is asserted; only that both modes measured something, that the failover part lost no
acknowledged write and sold no coupon beyond its caps, and that it saw the outage end.
"""

from __future__ import annotations

import math

from tests.helpers import run_bench_quick

KEYS = [
    "bench",
    "issue_per_s_single",
    "issue_per_s_cluster",
    "cluster_ratio",
    "fixes_per_s_single",
    "fixes_per_s_cluster",
    "fix_cluster_ratio",
    "failover_unavailable_s",
    "lost_acknowledged",
    "oversell",
]


def test_cluster_bench_quick_prints_figures():
    result = run_bench_quick("cluster", timeout=400)
    assert list(result) == KEYS
    assert result["bench"] == "cluster"
    for key in KEYS[1:7]:
        value = result[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)
    ratio = result["issue_per_s_cluster"] / result["issue_per_s_single"]
    assert abs(result["cluster_ratio"] - ratio) < 0.01, result
    fix_ratio = result["fixes_per_s_cluster"] / result["fixes_per_s_single"]
    assert abs(result["fix_cluster_ratio"] - fix_ratio) < 0.01, result
    # The failover happened (a first failure, then a success) and cost nothing acknowledged.
    assert result["failover_unavailable_s"] > 0
    assert result["lost_acknowledged"] == 0
    assert result["oversell"] == 0
