"""The promotions benchmark runs end to end (--quick) and prints its figures as JSON.

No speed is asserted; only that every part ran and that the oversell check issued exactly
the cap (quick mode: 1,000 claims against a cap of 100, over two gunicorn processes).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "GUNICORN_CMD_ARGS", "FOOTFALL_VAR_DIR"}
    }
    proc = subprocess.run(
        [sys.executable, "bench/promo_bench.py", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-4000:]
    result = json.loads(lines[-1])
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
