"""Periodic work each server process runs: confirming geofence exits whose deadline passed."""

from __future__ import annotations

import logging

import redis
from flask import Flask

log = logging.getLogger(__name__)


def start_background_tasks(app: Flask, interval_s: float = 5.0) -> None:
    """Start the exit sweeper as a Socket.IO background task (a greenlet under gevent)."""
    socketio = app.extensions["socketio"]
    try:
        # Build the fence cache before the first fix, not inside it.
        app.extensions["geo"].warm()
    except redis.RedisError as exc:
        log.warning("fence cache not warmed, redis unavailable: %s", exc)

    def sweeper() -> None:
        engine = app.extensions["geo"]
        while True:
            socketio.sleep(interval_s)
            try:
                events = engine.sweep()
                if events:
                    metrics = app.extensions["metrics"]
                    for event in events:
                        metrics.geofence_events.labels(event["kind"]).inc()
            except redis.RedisError as exc:
                log.warning("sweeper: redis unavailable: %s", exc)
            except Exception:
                log.exception("sweeper failed")

    socketio.start_background_task(sweeper)
