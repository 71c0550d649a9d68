"""Location fixes from the shopper's phone, and what the server concluded from them."""

from __future__ import annotations

from flask import current_app
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.fields import Flag, Number, Timestamp, timestamp
from geo.engine import Fix

from .. import schemas as S
from ..api import endpoint, principal
from ..auth import defer_session_check

bp = APIBlueprint("location", __name__, url_prefix="/api/location", abp_tags=[Tag(name="location")])


class FixIn(BaseModel):
    """One fix: recorded_at is an ISO 8601 time with offset, or unix seconds."""

    model_config = ConfigDict(extra="forbid")

    lat: Number = Field(ge=-90, le=90)
    lon: Number = Field(ge=-180, le=180)
    accuracy_m: Number = Field(
        gt=0, le=100_000, description="horizontal accuracy radius (68 %) in metres"
    )
    recorded_at: Timestamp = Field(
        description="when the phone recorded the fix: unix seconds, or an ISO 8601 string "
        "with an offset (e.g. 2026-11-11T20:00:05+08:00), answered as unix seconds",
    )
    speed_mps: Number | None = Field(default=None, ge=0, le=1_000)
    mock: Flag = Field(default=False, description="the OS reported a mock location provider")

    _timestamp = field_validator("recorded_at", mode="before")(
        classmethod(lambda cls, v: timestamp(v))
    )

    def to_fix(self) -> Fix:
        """Convert to the engine's Fix."""
        return Fix(self.lat, self.lon, self.accuracy_m, self.recorded_at, self.speed_mps, self.mock)


class FixBatch(BaseModel):
    """Up to 100 fixes buffered by the phone; processed in recorded order."""

    model_config = ConfigDict(extra="forbid")

    fixes: list[FixIn] = Field(min_length=1, max_length=100)


def record(fixes: list[Fix]) -> dict:
    """Run fixes through the engine for the caller and count the outcome."""
    engine = current_app.extensions["geo"]
    who = principal()
    # The session check rides in the engine's first round trip (see defer_session_check).
    guard = current_app.extensions["accounts"].session_guard(who)
    results = engine.record_fixes(who.user_id, fixes, guard=guard)
    current_app.extensions["metrics"].count_fix_results(results)
    return {
        "results": [r.to_dict() for r in results],
        "accepted": sum(1 for r in results if not r.ignored),
        "ignored": sum(1 for r in results if r.ignored),
    }


@endpoint(
    bp,
    "post",
    "/fix",
    allow=["shopper"],
    summary="Send one location fix",
    description="Refused with consent_required (403) before the shopper consented. "
    "Answers the spoof verdict and any geofence events the fix caused.",
    responses={200: S.FixOutcome},
)
@defer_session_check
def post_fix(body: FixIn):
    return record([body.to_fix()])


@endpoint(
    bp,
    "post",
    "/fixes",
    allow=["shopper"],
    summary="Send a batch of up to 100 fixes",
    description="Fixes are processed in recorded order; duplicates and fixes older than "
    "the last processed one are ignored (idempotent retries).",
    responses={200: S.FixOutcome},
)
@defer_session_check
def post_fixes(body: FixBatch):
    return record([f.to_fix() for f in body.fixes])


@endpoint(
    bp,
    "get",
    "/inside",
    allow=["shopper"],
    summary="The fences the caller is inside now",
    responses={200: S.InsideOut},
)
def inside():
    engine = current_app.extensions["geo"]
    stores = current_app.extensions["stores"]
    items = engine.inside(principal().user_id)
    records = stores.get_many([i["store_id"] for i in items])
    for item, record in zip(items, records, strict=True):
        item["store"] = {k: record[k] for k in ("id", "name", "brand", "city")} if record else None
    return {"items": items}


@endpoint(
    bp,
    "get",
    "/fixes",
    allow=["shopper"],
    summary="The caller's own raw fixes still kept (at most 24 h)",
    responses={200: S.MyFixes},
)
def my_fixes():
    engine = current_app.extensions["geo"]
    return {
        "items": engine.recent_fixes(principal().user_id),
        "retention_s": engine.settings.retention_s,
    }


@endpoint(
    bp,
    "get",
    "/trust",
    allow=["shopper"],
    summary="The caller's location trust score",
    responses={200: S.TrustOut},
)
def my_trust():
    return {"trust": current_app.extensions["geo"].trust(principal().user_id)}
