"""Stores and fences: CRUD, paged lists, search by distance, bulk import and GeoJSON export."""

from __future__ import annotations

import json

from flask import Response, current_app, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from core.errors import DomainError, Forbidden, ValidationFailed
from geo.stores import ID_PATTERN, ImportReport, StoreIn, StorePatch, parse_csv, parse_geojson

from .. import schemas as S
from ..api import audit, endpoint, principal

bp = APIBlueprint("stores", __name__, url_prefix="/api/stores", abp_tags=[Tag(name="stores")])

MANAGERS = ("marketer", "admin")


class StorePath(BaseModel):
    store_id: str = Field(pattern=ID_PATTERN)


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    city: str | None = Field(default=None, max_length=100)
    brand: str | None = Field(default=None, max_length=100)
    cursor: str | None = Field(
        default=None, pattern=ID_PATTERN, description="next_cursor of the previous page"
    )
    limit: int = Field(default=100, ge=1, le=500)
    open_now: bool = Field(
        default=False, description="only stores open now, by their opening hours in their zone"
    )


class NearbyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-85, le=85, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    radius_m: float = Field(default=1000, gt=0, le=50_000, allow_inf_nan=False)
    limit: int = Field(default=50, ge=1, le=200)
    brand: str | None = Field(default=None, max_length=100)
    open_now: bool = False


class ImportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partial: bool = Field(
        default=False,
        description="write the good rows even when some "
        "rows are bad (default: nothing is written if any row is bad)",
    )
    format: str | None = Field(
        default=None,
        pattern="^(csv|geojson)$",
        description="csv or geojson; by default from Content-Type",
    )


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    city: str | None = Field(default=None, max_length=100)
    brand: str | None = Field(default=None, max_length=100)


def _catalog():
    return current_app.extensions["stores"]


@endpoint(
    bp,
    "post",
    "",
    allow=MANAGERS,
    summary="Create a store with its fence",
    responses={201: S.StoreOut},
)
def create_store(body: StoreIn):
    store = _catalog().create(body.model_dump(exclude_unset=True))
    audit("create", "store", store["id"], None, store)
    return store, 201


@endpoint(
    bp,
    "get",
    "",
    allow=MANAGERS,
    summary="List stores, paged, by city and/or brand and/or open now",
    description="total is null when brand is combined with city, or with open_now (the "
    "filter is applied per record); every item says whether the store is open now.",
    responses={200: S.StorePage},
)
def list_stores(query: ListQuery):
    return _catalog().list(
        city=query.city,
        brand=query.brand,
        cursor=query.cursor,
        limit=query.limit,
        open_now=query.open_now,
    )


@endpoint(
    bp,
    "get",
    "/map",
    allow=MANAGERS,
    summary="Every store for a map, in one compact answer",
    description="id, name, brand, city, lat, lon and the stored fence of every store (about "
    "200 bytes a store: 5,000 stores in one request), for drawing them all on a map.",
    responses={200: S.StoreMap},
)
def store_map():
    doc = _catalog().map_pins()
    return Response(json.dumps(doc, separators=(",", ":")), mimetype="application/json")


@endpoint(
    bp,
    "get",
    "/nearby",
    allow=("shopper", "marketer", "admin"),
    summary="Stores within a radius, nearest first, with geodesic distance and open-now",
    responses={200: S.NearbyPage},
)
def nearby(query: NearbyQuery):
    items = _catalog().nearby(
        query.lat,
        query.lon,
        query.radius_m,
        limit=query.limit,
        brand=query.brand,
        open_now=query.open_now,
    )
    return {"items": items, "count": len(items)}


@endpoint(
    bp,
    "post",
    "/import",
    allow=MANAGERS,
    summary="Bulk import stores from CSV or GeoJSON",
    description="Send text/csv (columns id,name,brand,city,lat,lon,address,tz,hours,fence; "
    "hours and fence hold JSON) or an RFC 7946 FeatureCollection of Point features "
    "(application/geo+json or application/json, coordinates [lon, lat]). Every row is "
    "validated first; if any is bad nothing is written and each bad row is reported "
    "with its line or feature index, unless partial=true.",
    openapi_extensions={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/geo+json": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
    responses={201: S.ImportReportOut, 415: S.ErrorEnvelope, 422: S.ImportRejected},
)
def import_stores(query: ImportQuery):
    kind = query.format or _sniff_format()
    body = request.get_data(cache=True)
    if not body:
        raise ValidationFailed("the request body is empty", code="empty_import", field="body")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed(
            "the file is not UTF-8", code="invalid_encoding", field="body"
        ) from None
    if kind == "csv":
        rows = parse_csv(text)
    elif request.is_json:
        rows = parse_geojson(request.get_json())  # parsed once, before the view ran
    else:
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):  # a deeply nested document raises the latter
            raise DomainError(
                "the body is not valid JSON", code="malformed_json", field="body"
            ) from None
        rows = parse_geojson(doc)
    report = _catalog().import_rows(rows, partial=query.partial)
    if report.written:  # one summary entry per import, never one per store
        audit("import", "store", "", None, _import_summary(report, kind, query.partial))
    status = 201 if report.written else 422
    body = report.to_dict()
    if status == 422:
        body["error"] = {
            "code": "import_rejected",
            "message": f"{len(report.errors)} bad rows; nothing was written",
            "field": report.errors[0]["at"] if report.errors else None,
        }
    return body, status


def _import_summary(report: ImportReport, kind: str, partial: bool) -> dict:
    return {
        "format": kind,
        "partial": partial,
        "received": report.received,
        "written": report.written,
        "rejected": len(report.errors),
    }


def _sniff_format() -> str:
    mimetype = request.mimetype or ""
    if mimetype in ("text/csv", "application/csv", "text/plain"):
        return "csv"
    if mimetype in ("application/json", "application/geo+json"):
        return "geojson"
    raise DomainError(
        "send text/csv or application/geo+json, or set format=",
        code="unsupported_media_type",
        field="Content-Type",
        status=415,
    )


@endpoint(
    bp,
    "get",
    "/export.geojson",
    allow=MANAGERS,
    summary="Stores with their fences as a GeoJSON FeatureCollection",
    responses={200: S.geojson("Stores and fences as an RFC 7946 FeatureCollection")},
)
def export_geojson(query: ExportQuery):
    doc = _catalog().export_geojson(city=query.city, brand=query.brand)
    return Response(json.dumps(doc, separators=(",", ":")), mimetype="application/geo+json")


@endpoint(
    bp,
    "get",
    "/<store_id>",
    allow=(*MANAGERS, "staff"),
    summary="One store",
    responses={200: S.StoreOut},
)
def get_store(path: StorePath):
    who = principal()
    if who.role == "staff" and who.store_id != path.store_id:
        raise Forbidden("staff see only their own store", code="not_your_store", field="store_id")
    return _catalog().get(path.store_id)


@endpoint(
    bp, "put", "/<store_id>", allow=MANAGERS, summary="Replace a store", responses={200: S.StoreOut}
)
def replace_store(path: StorePath, body: StoreIn):
    before = _catalog().get(path.store_id)
    store = _catalog().replace(path.store_id, body.model_dump(exclude_unset=True))
    audit("replace", "store", path.store_id, before, store)
    return store


@endpoint(
    bp,
    "patch",
    "/<store_id>",
    allow=MANAGERS,
    summary="Change some fields of a store",
    responses={200: S.StoreOut},
)
def patch_store(path: StorePath, body: StorePatch):
    before = _catalog().get(path.store_id)
    store = _catalog().update(path.store_id, body.model_dump(exclude_unset=True))
    audit("update", "store", path.store_id, before, store)
    return store


@endpoint(
    bp,
    "delete",
    "/<store_id>",
    allow=MANAGERS,
    summary="Delete a store and its fence",
    responses={200: S.StatusOut},
)
def delete_store(path: StorePath):
    before = _catalog().get(path.store_id)
    _catalog().delete(path.store_id)
    audit("delete", "store", path.store_id, before, None)
    return {"status": "deleted", "id": path.store_id}
