"""The geo benchmark runs end to end (--quick) and prints its figures as JSON; no speed asserted."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = (
    "engine_fixes_per_s",
    "http_fixes_per_s",
    "http_ceiling_per_s",
    "ratio_to_ceiling",
    "p50_ms",
    "p99_ms",
)


def test_geo_bench_quick_prints_figures():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "GUNICORN_CMD_ARGS", "FOOTFALL_VAR_DIR"}
    }
    proc = subprocess.run(
        [sys.executable, "bench/geo_bench.py", "--quick"],
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
    assert result["bench"] == "geo"
    assert list(result)[:7] == ["bench", *REQUIRED]
    for key in REQUIRED:
        value = result[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)
    assert result["p99_ms"] >= result["p50_ms"]
    assert result["verdicts"].get("ok", 0) > 0
