"""The live-stream benchmark runs end to end (--quick) and prints its figures as JSON.

No speed is asserted; only that every part ran: 200 viewers received announcements, and the
drop of 20 coupons claimed by 200 viewers (over two gunicorn processes) gave exactly 20.
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
    "viewers",
    "delivered_per_s",
    "p50_ms",
    "p99_ms",
    "kb_per_connection",
    "drop_claimed",
    "oversell",
]


def test_live_bench_quick_prints_figures():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "GUNICORN_CMD_ARGS", "FOOTFALL_VAR_DIR"}
    }
    proc = subprocess.run(
        [sys.executable, "bench/live_bench.py", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-4000:]
    result = json.loads(lines[-1])
    assert list(result)[:8] == FIRST_KEYS
    assert result["bench"] == "live"
    assert result["viewers"] == 200, result["memory"]
    value = result["delivered_per_s"]
    assert isinstance(value, int | float) and math.isfinite(value) and value > 0, value
    assert result["oversell"] == 0, result["drop"]
    assert result["drop_claimed"] == "20/20", result["drop"]
    assert result["drop"]["issued_in_redis"] == 20, result["drop"]
