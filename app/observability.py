"""Prometheus metrics and structured JSON logs with a request id."""

from __future__ import annotations

import json
import logging
import secrets
import sys
import time

from flask import Flask, g, has_app_context, request
from prometheus_client import CollectorRegistry, Counter, Histogram

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"  # the same header, as WSGI names it


class Metrics:
    """The app's metric families, in a registry of its own (one per app instance)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "footfall_http_requests_total",
            "HTTP requests by endpoint, method and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "footfall_http_request_duration_seconds",
            "HTTP request latency by endpoint",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.fixes = Counter(
            "footfall_location_fixes_total",
            "Location fixes by spoof verdict (and 'ignored' for stale or duplicate fixes)",
            ["verdict"],
            registry=self.registry,
        )
        self.geofence_events = Counter(
            "footfall_geofence_events_total",
            "Geofence events by kind",
            ["kind"],
            registry=self.registry,
        )

        self.webhook_deliveries = Counter(
            "footfall_webhook_deliveries_total",
            "Webhook delivery attempts by result (succeeded, retrying, failed, ...)",
            ["result"],
            registry=self.registry,
        )

    def count_fix_results(self, results) -> None:
        """Count location fix outcomes and the events they caused."""
        for result in results:
            self.fixes.labels(result.verdict if not result.ignored else "ignored").inc()
            for event in result.events:
                self.geofence_events.labels(event["kind"]).inc()


class JsonFormatter(logging.Formatter):
    """One JSON object per log line, with the request id when there is one."""

    _skip = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
    # One encoder for every line (json.dumps with `default=` builds a new one per call).
    _encoder = json.JSONEncoder(default=str)

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = g.get("request_id") if has_app_context() else None
        if rid:
            out["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in self._skip and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return self._encoder.encode(out)


def configure_logging(level: str) -> None:
    """Send JSON logs to stderr (idempotent across app instances)."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)


def register_observability(app: Flask) -> None:
    """Give every request an id, time it, count it and log it.

    Paid on every request (bench/README.md, "web layer fixed cost"), so each step reads the
    WSGI environ once rather than through several `request` attributes, and the metric
    children of an (endpoint, method, status) are looked up once per process, not per request.
    """
    metrics = Metrics()
    app.extensions["metrics"] = metrics
    access_log = logging.getLogger("footfall.access")
    log_requests = app.config.get("LOG_REQUESTS", True)
    children: dict[tuple[str, str, int], tuple] = {}
    clock = time.perf_counter

    def metric_children(endpoint: str, method: str, status: int) -> tuple:
        key = (endpoint, method, status)
        found = children.get(key)
        if found is None:
            found = children[key] = (
                metrics.requests.labels(endpoint, method, str(status)),
                metrics.latency.labels(endpoint),
            )
        return found

    @app.before_request
    def _start() -> None:
        incoming = request.environ.get(REQUEST_ID_ENVIRON)
        valid = incoming and incoming.isprintable()
        g.request_id = incoming[:64] if valid else secrets.token_hex(8)
        g.started = clock()

    @app.after_request
    def _finish(response):
        now = clock()
        elapsed = now - g.get("started", now)
        rule = request.url_rule
        endpoint = rule.rule if rule is not None else "<unmatched>"
        method = request.environ.get("REQUEST_METHOD", "GET").upper()  # as request.method
        status = response.status_code
        count, latency = metric_children(endpoint, method, status)
        count.inc()
        latency.observe(elapsed)
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        if log_requests:
            access_log.info(
                "request",
                extra={
                    "method": method,
                    "path": request.path,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                },
            )
        return response
