"""The promotions benchmark runs end to end (--quick) and prints its figures as JSON.

No speed is asserted; only that every part ran and that the oversell check issued exactly
the cap (quick mode: 1,000 claims against a cap of 100, over two gunicorn processes).
"""

from __future__ import annotations

import math

from tests.helpers import run_bench_quick

FIRST_KEYS = [
    "bench",
    "issue_per_s",
    "raw_script_per_s",
    "ratio_to_raw",
    "oversell",
    "issued_of_cap",
]
RATES = ("issue_per_s", "raw_script_per_s", "ratio_to_raw", "http_issue_per_s")


def test_promo_bench_quick_prints_figures():
    result = run_bench_quick("promo", timeout=180)
    assert list(result)[:6] == FIRST_KEYS
    assert result["bench"] == "promo"
    for key in RATES:
        value = result[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)
    assert result["oversell"] == 0, result["oversell_check"]
    assert result["issued_of_cap"] == "100/100", result["oversell_check"]
    assert result["oversell_counts_agree"] is True, result["oversell_check"]["counts"]
    check = result["oversell_check"]
    assert check["statuses"] == {"201": 100, "409:CAP_TOTAL_REACHED": 900}
    assert check["duplicate_201_keys"] == 0
