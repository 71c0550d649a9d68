"""The audit log of marketers' and admins' changes: list with filters, and CSV export."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Response, current_app
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from core.audit import CURSOR_PATTERN, AuditFilter
from core.csvfile import to_csv

from .. import schemas as S
from ..api import endpoint

bp = APIBlueprint(
    "audit",
    __name__,
    url_prefix="/api",
    abp_tags=[Tag(name="audit", description="who changed what, when")],
)

MANAGERS = ("marketer", "admin")
CSV_LIMIT = 10_000


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: str | None = Field(default=None, max_length=100, description="role:account id")
    action: str | None = Field(default=None, max_length=40)
    kind: str | None = Field(default=None, max_length=40)
    object_id: str | None = Field(default=None, max_length=200)
    since: float | None = Field(
        default=None, ge=0, le=1e11, allow_inf_nan=False, description="unix time, inclusive"
    )
    until: float | None = Field(
        default=None, ge=0, le=1e11, allow_inf_nan=False, description="unix time, exclusive"
    )
    cursor: str | None = Field(
        default=None, pattern=CURSOR_PATTERN, description="next_cursor of the previous page"
    )
    limit: int = Field(default=100, ge=1, le=500)

    def where(self) -> AuditFilter:
        return AuditFilter(
            actor=self.actor,
            action=self.action,
            kind=self.kind,
            object_id=self.object_id,
            since=self.since,
            until=self.until,
        )


class AuditCsvQuery(AuditQuery):
    limit: int = Field(default=CSV_LIMIT, ge=1, le=CSV_LIMIT)


def _log():
    return current_app.extensions["audit"]


@endpoint(
    bp,
    "get",
    "/audit",
    allow=MANAGERS,
    summary="The audit log, newest first, filtered and paged",
    description="Every change a marketer or admin made through the API (stores, fences, "
    "hours, imports, campaigns, offers, grants, game set-up, membership programs, coupon "
    "voids): who, when, what, and the changed fields before → after. A narrow filter may "
    "answer a short page with a next_cursor: follow it to read older entries.",
    responses={200: S.AuditPage},
)
def list_audit(query: AuditQuery):
    return _log().query(query.where(), cursor=query.cursor, limit=query.limit)


@endpoint(
    bp,
    "get",
    "/audit.csv",
    allow=MANAGERS,
    summary="The audit log as CSV (same filters, up to 10,000 entries per file)",
    responses={200: S.csv("Audit entries as CSV, newest first")},
)
def export_audit(query: AuditCsvQuery):
    page = _log().query(query.where(), cursor=query.cursor, limit=query.limit)
    rows = [["id", "time_utc", "actor", "action", "kind", "object_id", "before", "after"]]
    for e in page["items"]:
        rows.append(
            [
                e["id"],
                datetime.fromtimestamp(e["ts"], UTC).isoformat(timespec="milliseconds"),
                e["actor"],
                e["action"],
                e["kind"],
                e["object_id"],
                json.dumps(e["before"], ensure_ascii=False, sort_keys=True),
                json.dumps(e["after"], ensure_ascii=False, sort_keys=True),
            ]
        )
    headers = {"Content-Disposition": 'attachment; filename="audit.csv"'}
    if page["next_cursor"]:
        headers["X-Next-Cursor"] = page["next_cursor"]
    return Response(to_csv(rows), mimetype="text/csv", headers=headers)
