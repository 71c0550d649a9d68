"""The console benchmark runs end to end (--quick) and prints its figures as JSON.

No speed is asserted. The counts must agree with what the servers did, which no constant could
fake: both imports wrote every store the bench generated, the map and the GeoJSON export
answered every store, the funnel's snapshot counted every visit the bench sent, and the browser
saw the map hold every store and moved it through several zoom levels.
"""

from __future__ import annotations

import math

from tests.helpers import run_bench_quick

FIRST_KEYS = ["bench", "stores", "import_5000_s", "import_geojson_5000_s"]
FIGURES = (
    "import_5000_s",
    "import_geojson_5000_s",
    "map_load_ms_p50",
    "map_load_ms_p95",
    "map_bytes",
    "export_geojson_ms_p50",
    "export_geojson_bytes",
    "funnel_snapshot_ms_p50",
    "funnel_snapshot_ms_p95",
    "funnel_watch_ack_ms_p50",
    "healthz_ms_max_watched_changing",
    "map_ready_ms",
    "frame_ms_p50",
    "frame_ms_p95",
    "frame_ms_max",
    "fence_editor_ms",
)


def positive(value) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def test_console_bench_quick_prints_figures():
    result = run_bench_quick("console")
    assert list(result)[:4] == FIRST_KEYS
    assert result["bench"] == "console" and result["quick"] is True
    for key in FIGURES:
        assert positive(result[key]), (key, result[key])
    long_frames = result["long_frames"]
    assert isinstance(long_frames, int) and long_frames >= 0, long_frames

    n = result["stores"]
    assert n == 500
    for part in ("csv", "geojson_replacing_the_csv_stores"):
        report = result["import"][part]
        assert (report["received"], report["written"], report["rejected"]) == (n, n, 0), report
    assert result["map"]["answered"] == n
    assert result["export_geojson"]["answered"] == n
    assert result["map_bytes"] == result["map"]["bytes"]

    funnel = result["funnel"]
    traffic, snapshot = funnel["traffic"], funnel["snapshot"]
    assert snapshot["funnel"]["visits"] == traffic["visits"] > 0
    assert snapshot["funnel"]["coupons"] == traffic["issued"] > 0
    assert snapshot["funnel"]["redeemed"] == traffic["redeemed"] > 0
    assert snapshot["heatmap_stores"] == n  # every targeted store is on the heatmap

    browser = result["browser"]
    assert len(browser["map_ready_ms"]) >= 1
    pan = browser["pan_zoom"]
    assert pan["frames"] > 0 and pan["drags"] > 0
    assert len(pan["zooms_seen"]) >= 2, pan  # the wheel really zoomed the map
