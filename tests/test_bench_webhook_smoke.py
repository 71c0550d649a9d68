"""The webhook benchmark runs end to end (--quick) and prints its figures as JSON.

No speed is asserted; only that deliveries were measured, that every delivery the campaigns'
ledgers call for reached the receiver across the kill -9 of a server (nothing lost, nothing
unexpected), that the counts agree with each other, and that the sampled signatures verify
with the reference verifier.
"""

from __future__ import annotations

import math

from tests.helpers import run_bench_quick

FIRST_KEYS = [
    "bench",
    "deliveries_per_s",
    "p99_event_to_delivery_ms",
    "lost",
    "duplicates_after_kill",
]


def test_webhook_bench_quick_prints_figures():
    result = run_bench_quick("webhook", timeout=300)
    assert list(result)[:5] == FIRST_KEYS
    assert result["bench"] == "webhooks"
    for key in ("deliveries_per_s", "p99_event_to_delivery_ms"):
        value = result[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)
    assert result["processes"] == 2 and result["endpoints"] == 10
    # Every ledger event goes to each of the ten endpoints, and all of them arrived.
    assert result["events"] > 0
    assert result["deliveries_expected"] == 10 * result["events"]
    assert result["lost"] == 0, result["kill"]
    assert result["unexpected"] == 0
    received = result["deliveries_received"]
    assert received == result["deliveries_expected"] + result["duplicates_after_kill"]
    # The issuance went on through the kill, and the campaign was paused and resumed.
    kill = result["kill"]
    assert kill["undelivered"] == 0 and kill["expected"] == result["deliveries_expected"]
    assert sum(kill["issued"]["statuses"].values()) == kill["issued"]["requests"]
    assert result["steady"]["campaign_moves"] > 0
    assert result["signatures"]["verified"] > 0 and result["signatures"]["failed"] == 0
    assert result["server_warnings"].get("tracebacks", 0) == 0
