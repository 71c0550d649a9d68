"""Liveness, readiness and metrics."""

from __future__ import annotations

import redis
from flask import Response, current_app, jsonify
from flask_openapi3 import APIBlueprint, Tag
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import schemas as S
from ..api import endpoint
from ..extensions import get_redis

bp = APIBlueprint("ops", __name__, abp_tags=[Tag(name="operations")])


@endpoint(
    bp,
    "get",
    "/healthz",
    allow=["public"],
    summary="The process is alive",
    responses={200: S.Health},
)
def healthz():
    return {"status": "ok"}


@endpoint(
    bp,
    "get",
    "/api/client-config",
    allow=["public"],
    summary="What the consoles need to know of this server's configuration (map tiles)",
    responses={200: S.ClientConfig},
)
def client_config():
    config = current_app.config
    return {
        "map": {
            "tile_url": config["MAP_TILE_URL"],
            "attribution": config["MAP_TILE_ATTRIBUTION"],
            "max_zoom": config["MAP_TILE_MAX_ZOOM"],
        }
    }


@endpoint(
    bp, "get", "/readyz", allow=["public"], summary="Redis is reachable", responses={200: S.Ready}
)
def readyz():
    try:
        r = get_redis()
        if isinstance(r, redis.RedisCluster):
            r.ping(target_nodes=redis.RedisCluster.PRIMARIES)  # every master, not one node
        else:
            r.ping()
    except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        response = jsonify(
            {
                "status": "unavailable",
                "redis": False,
                "error": {"code": "service_unavailable", "message": str(exc), "field": None},
            }
        )
        response.status_code = 503
        response.headers["Retry-After"] = str(current_app.config.get("RETRY_AFTER_S", 2))
        return response
    return {"status": "ok", "redis": True}


@endpoint(
    bp,
    "get",
    "/metrics",
    allow=["public"],
    summary="Prometheus metrics of this process",
    responses={200: S.text("text/plain", "Prometheus text exposition format")},
)
def metrics():
    registry = current_app.extensions["metrics"].registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
