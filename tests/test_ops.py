"""Health, readiness, Prometheus metrics and JSON logs."""

from __future__ import annotations

import json
import logging

import flask
import pytest

from app.observability import JsonFormatter

from .conftest import T0


def test_metrics_count_requests_fixes_and_events(client, auth):
    marketer, _ = auth.headers("marketer")
    client.post(
        "/api/stores",
        json={
            "id": "s1",
            "name": "S",
            "brand": "B",
            "city": "Shanghai",
            "lat": 31.24,
            "lon": 121.48,
        },
        headers=marketer,
    )
    shopper, _ = auth.headers("shopper")
    fix = {"lat": 31.24, "lon": 121.48, "accuracy_m": 5, "recorded_at": T0}
    client.post("/api/location/fix", json=fix, headers=shopper)
    client.post(
        "/api/location/fix", json={**fix, "recorded_at": T0 + 1, "mock": True}, headers=shopper
    )
    client.post("/api/location/fix", json=fix, headers=shopper)  # a duplicate
    text = client.get("/metrics").get_data(as_text=True)
    assert 'footfall_location_fixes_total{verdict="ok"} 1.0' in text
    assert 'footfall_location_fixes_total{verdict="mocked"} 1.0' in text
    assert 'footfall_location_fixes_total{verdict="ignored"} 1.0' in text
    assert 'footfall_geofence_events_total{kind="enter"} 1.0' in text
    assert (
        'footfall_http_requests_total{endpoint="/api/location/fix",method="POST",status="200"} 3.0'
    ) in text
    assert 'footfall_http_request_duration_seconds_bucket{endpoint="/api/location/fix"' in text


def test_request_id_is_echoed_or_made(client):
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
        == "abc-123"
    )
    assert len(client.get("/healthz").headers["X-Request-ID"]) == 16


def test_logs_are_json_with_the_request_id(app):
    formatter = JsonFormatter()
    with app.test_request_context("/healthz", headers={"X-Request-ID": "rid-7"}):
        app.preprocess_request()
        record = logging.makeLogRecord(
            {"name": "t", "levelname": "INFO", "msg": "hello %s", "args": ("world",), "status": 200}
        )
        line = json.loads(formatter.format(record))
    assert line["msg"] == "hello world" and line["request_id"] == "rid-7"
    assert line["status"] == 200 and line["level"] == "info"


def test_no_cookie_session(app, client):
    # Callers authenticate with bearer tokens: no request opens, or answers with, a cookie.
    client.set_cookie("session", "eyJ4IjoxfQ.forged.signature")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers and "Cookie" not in response.vary
    with app.test_request_context("/healthz", headers={"Cookie": "session=abc"}):
        app.preprocess_request()
        assert dict(flask.session) == {}
        with pytest.raises(RuntimeError):
            flask.session["user"] = "someone"


def test_socketio_path_and_plain_http_are_both_served(app, client):
    # The path dispatch (app/webpath.py): Socket.IO gets its path, Flask everything else.
    assert client.get("/socket.io/?EIO=4&transport=polling").data.startswith(b"0{")
    assert client.get("/socket.io").status_code == 404  # engine.io's own prefix test, too
    assert client.get("/healthz").get_json() == {"status": "ok"}
