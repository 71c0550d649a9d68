"""/marketer: the console's live funnel. A marketer watches a campaign and gets its snapshot
(funnel, per day, per store, cap/budget usage, heatmap stores) pushed when it changes.

Pushes cost one snapshot per watched campaign and period across all server processes:

- Each process says which campaigns its connections watch: `funnel:watched`, a sorted set of
  campaign id -> the time until which it counts as watched (refreshed every period by every
  process with a watcher; a campaign nobody refreshes drops out, and then nothing is computed).
- Every period (FUNNEL_PUSH_S), each process tries to claim each watched campaign's period
  (`SET promo:{c:<id>}:funnel:tick:<period number> NX PX`); the one that wins computes the
  snapshot, compares its digest with the last one sent (`…:funnel:sent`) and, when it changed,
  emits `funnel` to the campaign's room through the Redis message queue, so the watchers on
  every process get it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request
from flask_socketio import join_room, leave_room
from pydantic import BaseModel, ConfigDict, Field

from core.errors import DomainError, NotFound

from ..auth import roles
from .base import SecureNamespace

log = logging.getLogger(__name__)

NAMESPACE = "/marketer"
CAMPAIGN_ID = r"^[1-9][0-9]{0,11}$"
WATCHED = "funnel:watched"
# A watched campaign counts this many periods (at least MIN_WATCH_TTL_S) after its last refresh.
WATCH_PERIODS = 5
MIN_WATCH_TTL_S = 10.0
SENT_TTL_S = 86_400
# A snapshot that took longer than period / COST_FACTOR holds its campaign's next one back for
# COST_FACTOR times its cost: a campaign with months of traffic at thousands of stores takes at
# most about 1/COST_FACTOR of one process, whatever FUNNEL_PUSH_S says.
COST_FACTOR = 10


def funnel_room(cid: str) -> str:
    """Return the room of a campaign's watchers on /marketer."""
    return f"funnel:{cid}"


def _key(cid: str, name: str) -> str:
    return f"promo:{{c:{cid}}}:funnel:{name}"


class WatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: str = Field(pattern=CAMPAIGN_ID)


def _parse(payload: Any) -> WatchIn:
    if not isinstance(payload, dict):
        raise DomainError("payload must be an object", code="invalid_payload", field="payload")
    return WatchIn.model_validate(payload)


def watch_ttl(period_s: float) -> float:
    """Return how long a campaign counts as watched after a process last said so."""
    return max(period_s * WATCH_PERIODS, MIN_WATCH_TTL_S)


class MarketerNamespace(SecureNamespace):
    """Marketers and admins watch campaigns; each watcher is in the campaign's room."""

    connect_roles = ("marketer", "admin")

    def __init__(self, namespace: str = NAMESPACE) -> None:
        super().__init__(namespace)
        self.watching: dict[str, str] = {}  # connection -> campaign (connections are local)

    def watched(self) -> set[str]:
        """Return the campaigns this process's connections watch."""
        return set(self.watching.values())

    @roles("marketer", "admin")
    def on_watch(self, payload: Any) -> dict[str, Any]:
        """Watch a campaign: the ack carries its snapshot; `funnel` follows when it changes."""
        body = _parse(payload)
        app = current_app
        snapshot = app.extensions["promotions"].reports.snapshot(
            body.campaign_id, top_stores=app.config["FUNNEL_TOP_STORES"]
        )
        previous = self.watching.get(request.sid)
        if previous and previous != body.campaign_id:
            leave_room(funnel_room(previous))
        join_room(funnel_room(body.campaign_id))
        self.watching[request.sid] = body.campaign_id
        period = app.config["FUNNEL_PUSH_S"]
        now = app.extensions["clock"].now()
        app.extensions["redis"].zadd(WATCHED, {body.campaign_id: now + watch_ttl(period)})
        return {"campaign_id": body.campaign_id, "push_s": period, "at": now, "snapshot": snapshot}

    @roles("marketer", "admin")
    def on_unwatch(self, payload: Any = None) -> dict[str, Any]:
        """Stop watching the campaign this connection watches."""
        cid = self.watching.pop(request.sid, None)
        if cid is None:
            raise DomainError("watch a campaign first", code="not_watching", field="campaign_id")
        leave_room(funnel_room(cid))
        return {"unwatched": cid}

    def on_disconnect(self, reason: Any = None) -> None:
        self.watching.pop(request.sid, None)
        super().on_disconnect(reason)


def _digest(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def tick(
    app: Flask, now: float | None = None, timer: Callable[[], float] = time.perf_counter
) -> dict[str, list[str]]:
    """Do one period's work in this process; return the campaigns it computed and pushed."""
    r = app.extensions["redis"]
    socketio = app.extensions["socketio"]
    reports = app.extensions["promotions"].reports
    campaigns = app.extensions["promotions"].campaigns
    now = app.extensions["clock"].now() if now is None else now
    period = app.config["FUNNEL_PUSH_S"]
    namespace = app.extensions.get("marketer_namespace")
    local = namespace.watched() if namespace is not None else set()
    pipe = r.pipeline(transaction=False)
    if local:
        pipe.zadd(WATCHED, dict.fromkeys(local, now + watch_ttl(period)))
    pipe.zremrangebyscore(WATCHED, "-inf", now)
    pipe.zrange(WATCHED, 0, -1)
    watched = pipe.execute()[-1]
    done: dict[str, list[str]] = {"computed": [], "pushed": []}
    if not watched:
        return done  # nobody watches anything: no work
    slot = int(now // period)
    for cid in sorted(watched, key=int):
        # A campaign whose last snapshot was costly rests (see COST_FACTOR).
        if float(r.get(_key(cid, "rest")) or 0) > now:
            continue
        # One process per campaign and period goes on (the claim expires by itself).
        if not r.set(_key(cid, f"tick:{slot}"), "1", nx=True, px=max(int(period * 2000), 1000)):
            continue
        try:
            # What the snapshot is made of, cheaply: the statistics' version (bumped by every
            # counting script), the campaign (status, targets, counters) and cap usage (today's
            # per-store caps, the day). The same as last time: nothing to compute or push.
            signature = _digest([reports.version(cid), campaigns.get(cid), reports.usage(cid)])
            if r.set(_key(cid, "seen"), signature, ex=SENT_TTL_S, get=True) == signature:
                continue
        except NotFound:
            r.zrem(WATCHED, cid)  # the campaign is gone
            continue
        started = timer()
        try:
            snapshot = reports.snapshot(cid, top_stores=app.config["FUNNEL_TOP_STORES"])
        except BaseException:
            r.delete(_key(cid, "seen"))  # not pushed: the next period tries again
            raise
        cost = timer() - started
        done["computed"].append(cid)
        log.info(
            "funnel snapshot computed",
            extra={"campaign_id": cid, "funnel_slot": slot, "ms": round(cost * 1000, 1)},
        )
        if cost * COST_FACTOR > period:
            r.set(_key(cid, "rest"), now + cost * COST_FACTOR, ex=SENT_TTL_S)
        digest = _digest(snapshot)
        if r.set(_key(cid, "sent"), digest, ex=SENT_TTL_S, get=True) == digest:
            continue  # nothing changed since the last push
        socketio.emit("funnel", {**snapshot, "at": now}, to=funnel_room(cid), namespace=NAMESPACE)
        done["pushed"].append(cid)
    return done
