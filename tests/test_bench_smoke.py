"""The geo benchmark runs end to end (--quick) and prints its figures as JSON; no speed asserted.

Its counts must agree with each other and with Redis, which no constant could fake: every fix is
accepted, ignored or refused; the events the engine reported are the events in the stream; no
shopper leaves or dwells in more fences than they entered; one verdict per HTTP answer.
"""

from __future__ import annotations

import math

from tests.helpers import run_bench_quick

REQUIRED = (
    "engine_fixes_per_s",
    "engine_batched_fixes_per_s",
    "http_fixes_per_s",
    "http_ceiling_per_s",
    "ratio_to_ceiling",
    "p50_ms",
    "p99_ms",
)


def test_geo_bench_quick_prints_figures():
    result = run_bench_quick("geo")
    assert result["bench"] == "geo"
    assert list(result)[:8] == ["bench", *REQUIRED]
    for key in REQUIRED:
        value = result[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)
    assert result["p99_ms"] >= result["p50_ms"]
    assert result["verdicts"].get("ok", 0) > 0

    engine = result["engine"]
    single, batched, prologue = engine["single"], engine["batched"], engine["prologue"]
    assert single["concurrency"] > 1  # many callers at once, one shopper per call
    for part, verdicts in ((single, result["verdicts"]), (batched, batched["verdicts"])):
        assert part["accepted"] + part["ignored"] + part["refused"] == part["fixes"], part
        accepted = sum(n for v, n in verdicts.items() if not v.startswith("ignored:"))
        assert accepted == part["accepted"] > 0, (part, verdicts)
        assert sum(verdicts.values()) == part["accepted"] + part["ignored"], (part, verdicts)
    # Every event the engine reported went to the stream, and nothing else did.
    reported = [
        prologue["events"],
        batched["events"],
        single["first_contact"]["events"],
        result["events"],
    ]
    assert engine["stream_len_after_batched"] == sum(sum(e.values()) for e in reported[:2])
    assert engine["stream_len"] == sum(sum(e.values()) for e in reported), reported
    assert engine["stream_len"] > engine["stream_len_after_batched"]
    # The shoppers start outside every fence: exits and dwells follow entries.
    total = {kind: sum(e.get(kind, 0) for e in reported) for kind in ("enter", "exit", "dwell")}
    assert total["enter"] >= max(total["exit"], total["dwell"]) > 0, total

    fix = result["http"]["fix"]
    assert sum(fix["verdicts"].values()) == fix["statuses"].get("200", 0) > 0, fix

    # Fixes over /shopper: one verdict per answered fix, no error acks.
    sock = result["http"]["socket"]
    assert sum(sock["verdicts"].values()) == sock["fixes"] > 0 and sock["errors"] == {}, sock
    assert result["socket_fixes_per_s"] > 0
    # The check rounds: one verdict per shopper per round, some of them spoofed.
    walks = result["walk_counts"]
    assert sum(walks["check_verdicts"].values()) == walks["check_rounds"] * result["shoppers"]
    assert walks["check_verdicts"]["ok"] < walks["check_rounds"] * result["shoppers"], walks


def test_geo_bench_only_http():
    # /healthz then fixes through one gunicorn worker, nothing else: one verdict per 200 answer.
    result = run_bench_quick("geo", args=("--only", "http"))
    assert result["only"] == "http"
    assert (
        0
        < result["ratio_to_ceiling"]
        == round(result["http_fixes_per_s"] / result["http_ceiling_per_s"], 3)
    )
    assert result["statuses"]["healthz"].get("200", 0) > 0
    assert sum(result["verdicts"].values()) == result["statuses"]["fix"].get("200", 0) > 0
    cpu = result["server_cpu_ms_per_request"]
    assert cpu["healthz"] > 0 and cpu["fix"] > 0
