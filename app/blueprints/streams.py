"""Live streams over REST: schedule, change, go live and end; products with their images."""

from __future__ import annotations

from typing import Literal

from flask import Response, current_app, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from core.errors import DomainError, ValidationFailed
from live.models import ProductIn, StreamIn, StreamPatch, StreamTransition
from live.streams import Caller

from .. import schemas as S
from ..api import endpoint, principal
from ..auth import PUBLIC
from ..errors import read_streamed_body
from ..sockets.live import announce_move
from .auth import close_sockets
from .campaigns import MANAGERS, audit_grant, granted_streams

bp = APIBlueprint(
    "streams",
    __name__,
    url_prefix="/api/streams",
    abp_tags=[Tag(name="streams", description="live-stream shopping")],
)

EDITORS = ("marketer", "admin", "host")
STREAM_ID = r"^[1-9][0-9]{0,11}$"
PRODUCT_ID = r"^p[1-9][0-9]{0,8}$"


class StreamPath(BaseModel):
    stream_id: str = Field(pattern=STREAM_ID)


class ProductPath(BaseModel):
    stream_id: str = Field(pattern=STREAM_ID)
    product_id: str = Field(pattern=PRODUCT_ID)


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["scheduled", "live", "ended"] | None = None
    cursor: str | None = Field(
        default=None,
        pattern=r"^[0-9]{1,12}(\.[0-9]{1,9})?$",
        description="next_cursor of the previous page",
    )
    limit: int = Field(default=20, ge=1, le=100)


def _streams():
    return current_app.extensions["streams"]


def _caller() -> Caller:
    who = principal()
    return Caller(who.user_id, who.role)


def _public(stream: dict) -> dict:
    """What anyone may see of a stream: not the hosts' account ids."""
    who = principal()
    if who is not None and (who.role in ("marketer", "admin") or who.user_id in stream["hosts"]):
        return stream
    return {k: v for k, v in stream.items() if k not in ("hosts", "created_by")}


@endpoint(bp, "post", "", allow=EDITORS, summary="Schedule a stream", responses={201: S.StreamOut})
def create_stream(body: StreamIn):
    stream = _streams().create(body, _caller())
    if body.campaign_id is not None and principal().role in MANAGERS:
        audit_grant(body.campaign_id, stream["id"])  # a marketer attaching a campaign grants it
    return stream, 201


@endpoint(
    bp,
    "get",
    "",
    allow=[PUBLIC],
    summary="Streams by scheduled start, by status",
    responses={200: S.StreamPage},
)
def list_streams(query: ListQuery):
    page = _streams().list(status=query.status, cursor=query.cursor, limit=query.limit)
    page["items"] = [_public(s) for s in page["items"]]
    return page


@endpoint(
    bp,
    "get",
    "/<stream_id>",
    allow=[PUBLIC],
    summary="One stream with its products",
    responses={200: S.StreamOut},
)
def get_stream(path: StreamPath):
    return _public(_streams().get(path.stream_id))


@endpoint(
    bp,
    "patch",
    "/<stream_id>",
    allow=EDITORS,
    summary="Change a scheduled stream, or a live stream's hosts (its hosts, marketers, admins)",
    description="A host taken off the stream has its /host console disconnected at once, "
    "on whichever server process holds it.",
    responses={200: S.StreamOut},
)
def patch_stream(path: StreamPath, body: StreamPatch):
    cid = body.campaign_id
    granting = cid is not None and principal().role in MANAGERS
    was_granted = granting and path.stream_id in granted_streams(cid)
    stream = _streams().update(path.stream_id, body, _caller())
    if granting and not was_granted:
        audit_grant(cid, path.stream_id)
    stale = _streams().stale_consoles(path.stream_id)
    close_sockets([("/host", console) for console in stale])
    return stream


@endpoint(
    bp,
    "post",
    "/<stream_id>/transition",
    allow=EDITORS,
    summary="Go live or end: scheduled → live → ended (scheduled → ended cancels)",
    description="Viewers in the room hear `stream_status` (as after the /host events start "
    "and end); going live also sends them the stage the hosts rehearsed (pins, announcement, "
    "open poll, slow mode). Moving a stream to the status it has changes and sends nothing.",
    responses={200: S.StreamOut},
)
def transition_stream(path: StreamPath, body: StreamTransition):
    stream, changed = _streams().move(path.stream_id, body.to, _caller())
    announce_move(stream, changed)
    return stream


@endpoint(
    bp,
    "post",
    "/<stream_id>/products",
    allow=EDITORS,
    summary="Add a product, with an image",
    description="Send multipart/form-data with the fields name, price_fen (integer fen), "
    "description, offer_id and an `image` file (JPEG, PNG or WebP, at most 8 MB and 40 "
    "megapixels, at least 64 px a side; resized to fit 1200 px with a 240 px thumbnail, "
    "metadata removed), or JSON without an image.",
    responses={201: S.ProductOut, 415: S.ErrorEnvelope},
    openapi_extensions={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "price_fen": {"type": "integer"},
                            "description": {"type": "string"},
                            "offer_id": {"type": "string"},
                            "image": {"type": "string", "format": "binary"},
                        },
                        "required": ["name", "price_fen"],
                    }
                },
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
def add_product(path: StreamPath):
    from live.images import process_product_image

    streams = _streams()
    # Rights first, before a byte of the body is read: a caller who may not touch this
    # stream (or a stream that does not exist) must not get an upload parsed or decoded.
    streams.managed(path.stream_id, _caller())
    upload = None
    if request.mimetype == "multipart/form-data":
        read_streamed_body()  # a chunked upload: bounded before the form parser sees it
        fields = request.form.to_dict()
        upload = request.files.get("image")
        unexpected = set(request.files) - {"image"}
        if unexpected:
            raise ValidationFailed(
                "unknown file part", code="unknown_field", field=sorted(unexpected)[0]
            )
    elif request.is_json:
        fields = request.get_json()
        if not isinstance(fields, dict):
            raise ValidationFailed("send a JSON object", field="body")
    else:
        raise DomainError(
            "send multipart/form-data or application/json",
            code="unsupported_media_type",
            field="Content-Type",
            status=415,
        )
    # Cheap checks before the expensive one: the fields, then the image's decode.
    data = ProductIn.model_validate(fields)
    image = process_product_image(upload.read(), field="image") if upload is not None else None
    return streams.add_product(path.stream_id, data, _caller(), image=image), 201


@endpoint(
    bp,
    "delete",
    "/<stream_id>/products/<product_id>",
    allow=EDITORS,
    summary="Remove a product and its images",
    responses={200: S.StatusOut},
)
def remove_product(path: ProductPath):
    _streams().remove_product(path.stream_id, path.product_id, _caller())
    return {"status": "removed", "id": path.product_id}


@endpoint(
    bp,
    "get",
    "/<stream_id>/products/<product_id>/image.jpg",
    allow=[PUBLIC],
    summary="A product's image (JPEG, fits 1200 px)",
    responses=S.cached_image("image/jpeg", "Product image"),
)
def product_image(path: ProductPath):
    return _jpeg(path, "image")


@endpoint(
    bp,
    "get",
    "/<stream_id>/products/<product_id>/thumb.jpg",
    allow=[PUBLIC],
    summary="A product's thumbnail (JPEG, fits 240 px)",
    responses=S.cached_image("image/jpeg", "Product thumbnail"),
)
def product_thumb(path: ProductPath):
    return _jpeg(path, "thumb")


@endpoint(
    bp,
    "get",
    "/<stream_id>/report",
    allow=EDITORS,
    summary="After the stream: statistics, polls, questions, drops (its hosts, marketers)",
    responses={200: S.StreamReportOut},
)
def report(path: StreamPath):
    _streams().managed(path.stream_id, _caller())
    return current_app.extensions["live"].reports.report(path.stream_id)


@endpoint(
    bp,
    "get",
    "/<stream_id>/offers",
    allow=EDITORS,
    summary="The offers of the stream's campaign that a live drop may issue (its hosts, marketers)",
    description="Empty when the stream has no campaign; each offer as in the campaign's list, "
    "only those whose channels include live_drop.",
    responses={200: S.OfferList},
)
def drop_offers(path: StreamPath):
    stream = _streams().managed(path.stream_id, _caller())
    if not stream.get("campaign_id"):
        return {"items": []}
    offers = current_app.extensions["promotions"].campaigns.list_offers(stream["campaign_id"])
    return {"items": [o for o in offers if "live_drop" in o.get("channels", [])]}


class ReportPartPath(BaseModel):
    stream_id: str = Field(pattern=STREAM_ID)
    part: Literal["comments", "polls", "questions", "drops", "stats"]


@endpoint(
    bp,
    "get",
    "/<stream_id>/report/<part>.csv",
    allow=EDITORS,
    summary="After the stream: its comments, polls, questions, drops or stats as CSV",
    responses={200: S.csv("One part of the report as CSV")},
)
def report_csv(path: ReportPartPath):
    _streams().managed(path.stream_id, _caller())
    text = current_app.extensions["live"].reports.csv(path.stream_id, path.part)
    name = f"stream-{path.stream_id}-{path.part}.csv"
    return Response(
        text, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _jpeg(path: ProductPath, kind: str) -> Response:
    data, etag = _streams().image(path.stream_id, path.product_id, kind)
    if request.if_none_match.contains(etag):
        return Response(status=304, headers={"ETag": f'"{etag}"'})
    return Response(
        data,
        mimetype="image/jpeg",
        headers={"Cache-Control": "public, max-age=86400", "ETag": f'"{etag}"'},
    )
