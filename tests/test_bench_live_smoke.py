"""The live-stream benchmark runs end to end (--quick) and prints its figures as JSON.

No speed is asserted. The counts must agree, which no constant could fake: every viewer got
every announcement (delivered = viewers x announcements), the viewers measured for memory are
the viewers that listened, the server's compression policy decided the handshakes (the default
negotiates no deflate although half the viewers offer it), and the drop of 20 coupons claimed by
200 viewers over two gunicorn processes answered every claimant once, 20 won as Redis counts.
"""

from __future__ import annotations

import math

from tests.helpers import run_bench_quick

FIRST_KEYS = [
    "bench",
    "viewers",
    "delivered_per_s",
    "p50_ms",
    "p99_ms",
    "kb_per_connection",
    "kb_per_connection_no_deflate_offer",
    "drop_claimed",
    "oversell",
]


def test_live_bench_quick_prints_figures():
    result = run_bench_quick("live")
    assert list(result)[:9] == FIRST_KEYS
    assert result["bench"] == "live"
    assert result["viewers"] == 200, result["memory"]
    value = result["delivered_per_s"]
    assert isinstance(value, int | float) and math.isfinite(value) and value > 0, value
    assert result["oversell"] == 0, result["drop"]
    assert result["drop_claimed"] == "20/20", result["drop"]
    assert result["drop"]["issued_in_redis"] == 20, result["drop"]

    fan = result["fanout"]
    assert fan["announcements"] > 0
    assert fan["expected"] == result["viewers"] * fan["announcements"], fan
    assert fan["received"] == fan["expected"] and fan["lost"] == 0, fan
    assert fan["host_errors"] == {}, fan

    memory = result["memory"]
    parts = memory["parts"]
    assert [p["deflate_offered"] for p in parts] == [True, False]
    assert sum(p["connections"] for p in parts) == memory["connections"] == result["viewers"]
    assert memory["negotiated_deflate"] == 0  # offered by 100 viewers, never negotiated
    assert result["kb_per_connection"] == parts[0]["kb_per_connection"]

    # two processes, half the viewers each; the saturation ramp ran (one step in --quick)
    assert result["servers"] == 2 and result["viewers_per_process"] * 2 == result["viewers"]
    steps = result["saturation"]["steps"]
    assert len(steps) == 1 and steps[0]["rate_per_s"] == fan["rate_per_s"], steps
    ceiling = result["delivered_per_core_at_saturation"]
    assert ceiling is None or ceiling == steps[0]["delivered_per_server_core_s"], result
    assert result["max_idle_per_process"] is None  # --idle-connections not asked

    drop = result["drop"]
    assert drop["claimants"] == result["viewers"]
    assert sum(drop["outcomes"].values()) == drop["claimants"], drop
    assert drop["outcomes"].get("won") == 20 and drop["unanswered"] == 0, drop
