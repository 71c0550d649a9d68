"""Periodic work each server process runs: the exit sweeper, campaign clock and coupon expiry,
the promotions consumer of geofence events, the live rooms and the live funnel's pushes."""

from __future__ import annotations

import logging

import redis
from flask import Flask

log = logging.getLogger(__name__)


def start_background_tasks(app: Flask, interval_s: float = 5.0) -> None:
    """Start the sweepers and the consumer as Socket.IO background tasks (greenlets)."""
    socketio = app.extensions["socketio"]
    try:
        # Build the fence cache before the first fix, not inside it.
        app.extensions["geo"].warm()
    except redis.RedisError as exc:
        log.warning("fence cache not warmed, redis unavailable: %s", exc)

    def sweeper() -> None:
        engine = app.extensions["geo"]
        promotions = app.extensions["promotions"]
        while True:
            socketio.sleep(interval_s)
            try:
                events = engine.sweep()
                if events:
                    metrics = app.extensions["metrics"]
                    for event in events:
                        metrics.geofence_events.labels(event["kind"]).inc()
                promotions.tick()
            except redis.RedisError as exc:
                log.warning("sweeper: redis unavailable: %s", exc)
            except Exception:
                log.exception("sweeper failed")

    def consumer() -> None:
        # Each process is one consumer of the group; a dead process's pending events are
        # claimed by the survivors after PROMO_CLAIM_IDLE_MS.
        visits = app.extensions["promotions"].consumer()
        idle_ms = app.config.get("PROMO_CLAIM_IDLE_MS", 60_000)
        rounds = 0
        while True:
            try:
                if rounds % 30 == 0:
                    visits.recover(min_idle_ms=idle_ms)
                rounds += 1
                visits.run_once(block_ms=1_000)
            except redis.RedisError as exc:
                log.warning("promotions consumer: redis unavailable: %s", exc)
                socketio.sleep(1.0)
            except Exception:
                log.exception("promotions consumer failed")
                socketio.sleep(1.0)

    def live_rooms() -> None:
        from .live_ticker import tick

        while True:
            socketio.sleep(1.0)
            try:
                tick(app)
            except redis.RedisError as exc:
                log.warning("live rooms: redis unavailable: %s", exc)
            except Exception:
                log.exception("live rooms tick failed")

    def funnel() -> None:
        # The live funnel: at each period's start, one process per watched campaign computes
        # its snapshot and pushes it to the watchers on every process when it changed.
        from .sockets.marketer import tick as funnel_tick

        clock = app.extensions["clock"]
        period = app.config["FUNNEL_PUSH_S"]
        while True:
            socketio.sleep(period - clock.now() % period + 0.01)
            try:
                funnel_tick(app)
            except redis.RedisError as exc:
                log.warning("live funnel: redis unavailable: %s", exc)
            except Exception:
                log.exception("live funnel tick failed")

    def webhooks() -> None:
        # Fan events out to endpoints and deliver them; sends run on the dispatcher's pool.
        hooks = app.extensions["webhooks"]
        poll_s = app.config["WEBHOOK_POLL_MS"] / 1000
        while True:
            try:
                if not hooks.run_once(wait_s=poll_s):
                    socketio.sleep(poll_s)
            except redis.RedisError as exc:
                log.warning("webhooks: redis unavailable: %s", exc)
                socketio.sleep(1.0)
            except Exception:
                log.exception("webhooks round failed")
                socketio.sleep(1.0)

    socketio.start_background_task(sweeper)
    socketio.start_background_task(webhooks)
    socketio.start_background_task(consumer)
    socketio.start_background_task(live_rooms)
    socketio.start_background_task(funnel)
