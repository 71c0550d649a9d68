"""Small assertions shared by the API tests, and the benchmarks' smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    """Check the status and the JSON error envelope, and return the error body."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert {"code", "message", "field"} <= set(error)
    assert error["code"] == code, error
    assert error["field"] == field, error
    assert isinstance(error["message"], str) and error["message"]
    return error


def bearer(token: str) -> dict:
    """Return the Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


def run_bench_quick(name: str, timeout: float = 120, args: tuple[str, ...] = ()) -> dict:
    """Run `bench/<name>_bench.py --quick` (plus args) as the README says (no REDIS_URL: it
    starts its own servers) and return the JSON object of its last line."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REDIS_URL", "GUNICORN_CMD_ARGS", "FOOTFALL_VAR_DIR"}
    }
    proc = subprocess.run(
        [sys.executable, f"bench/{name}_bench.py", "--quick", *args],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-4000:]
    return json.loads(lines[-1])
