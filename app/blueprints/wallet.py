"""The shopper's coupon wallet (list, open, QR and card images) and loyalty memberships."""

from __future__ import annotations

from typing import Literal

from flask import Response, current_app
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from promotions.cardtext import card_text
from promotions.images import coupon_card_png, qr_png, qr_svg
from promotions.models import ID_PATTERN, ProgramIn

from .. import schemas as S
from ..api import audit, endpoint, principal
from .campaigns import COUPON_ID, CardQuery, card_language_of

bp = APIBlueprint(
    "wallet",
    __name__,
    url_prefix="/api",
    abp_tags=[Tag(name="wallet", description="coupons and memberships")],
)


class CouponPath(BaseModel):
    coupon_id: str = Field(pattern=COUPON_ID)


class ProgramPath(BaseModel):
    program: str = Field(pattern=ID_PATTERN)


class WalletQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["issued", "redeemed", "voided", "expired"] | None = None
    cursor: str | None = Field(
        default=None, max_length=80, description="next_cursor of the previous page"
    )
    limit: int = Field(default=20, ge=1, le=100)


class MembershipBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    member_number: str = Field(min_length=1, max_length=64)


def _promotions():
    return current_app.extensions["promotions"]


def _own(coupon_id: str) -> dict:
    return _promotions().coupons.owned(principal().user_id, coupon_id)


def _with_store_names(coupons: list[dict]) -> list[dict]:
    """Add each coupon's store_name (one HMGET for the page): a wallet shows where a coupon
    was earned by name, and a shopper may not read the store catalogue itself."""
    ids = sorted({c["store_id"] for c in coupons if c.get("store_id")})
    records = current_app.extensions["stores"].get_many(ids)
    names = {sid: r["name"] for sid, r in zip(ids, records, strict=True) if r}
    for c in coupons:
        c["store_name"] = names.get(c.get("store_id"))
    return coupons


@endpoint(
    bp,
    "get",
    "/wallet",
    allow=["shopper"],
    summary="The caller's coupons, newest first, by status, paged",
    responses={200: S.WalletPage},
)
def wallet(query: WalletQuery):
    page = _promotions().coupons.wallet(
        principal().user_id, status=query.status, cursor=query.cursor, limit=query.limit
    )
    _with_store_names(page["items"])
    return page


@endpoint(
    bp,
    "get",
    "/wallet/<coupon_id>",
    allow=["shopper"],
    summary="One of the caller's coupons, with its signed token and short code",
    responses={200: S.CouponOut},
)
def coupon(path: CouponPath):
    [view] = _with_store_names([_promotions().coupons.present(_own(path.coupon_id), owner=True)])
    return view


@endpoint(
    bp,
    "get",
    "/wallet/<coupon_id>/qr.png",
    allow=["shopper"],
    summary="The coupon's QR code (the signed token) as PNG",
    responses={200: S.png("QR code image")},
)
def coupon_qr_png(path: CouponPath):
    token = _promotions().codec.token(_own(path.coupon_id)["id"])
    return Response(
        qr_png(token), mimetype="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )


@endpoint(
    bp,
    "get",
    "/wallet/<coupon_id>/qr.svg",
    allow=["shopper"],
    summary="The coupon's QR code (the signed token) as SVG",
    responses={200: S.binary("image/svg+xml", "QR code as SVG")},
)
def coupon_qr_svg(path: CouponPath):
    token = _promotions().codec.token(_own(path.coupon_id)["id"])
    return Response(
        qr_svg(token), mimetype="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"}
    )


@endpoint(
    bp,
    "get",
    "/wallet/<coupon_id>/card.png",
    allow=["shopper"],
    summary="A coupon card image: QR, offer, brand, short code, expiry and status",
    description="The card's words are in `lang` (en or zh-CN); without it, in the "
    "language of Accept-Language (any zh* is zh-CN), else English.",
    responses={200: S.png("Coupon card image")},
)
def coupon_card(path: CouponPath, query: CardQuery):
    promos = _promotions()
    c = _own(path.coupon_id)
    view = promos.campaigns.view(c["campaign_id"])
    words = card_text(
        c,
        card_language_of(query.lang),
        timezone=view.doc["timezone"],
        expires_at=c["expires_at"],
        status=c["status"],
    )
    png = coupon_card_png(
        token=promos.codec.token(c["id"]),
        title=words.title,
        brand=c["brand"],
        terms=words.terms,
        short_code=promos.codec.short_code(c["id"]),
        expires_label=words.validity,
        status=c["status"],
        status_label=words.status_label,
    )
    headers = {"Cache-Control": "private, no-cache", "Vary": "Accept-Language"}
    return Response(png, mimetype="image/png", headers=headers)


@endpoint(
    bp,
    "get",
    "/me/memberships",
    allow=["shopper"],
    summary="The caller's linked loyalty memberships",
    responses={200: S.MembershipList},
)
def memberships():
    return {"items": _promotions().memberships.list(principal().user_id)}


@endpoint(
    bp,
    "put",
    "/me/memberships/<program>",
    allow=["shopper"],
    summary="Link (or change) the caller's member number of a program",
    description="A member number belongs to one shopper per program: another account's "
    "number answers 409 member_number_taken.",
    responses={200: S.MembershipOut},
)
def link_membership(path: ProgramPath, body: MembershipBody):
    return _promotions().memberships.link(principal().user_id, path.program, body.member_number)


@endpoint(
    bp,
    "delete",
    "/me/memberships/<program>",
    allow=["shopper"],
    summary="Unlink the caller's membership of a program",
    responses={200: S.StatusOut},
)
def unlink_membership(path: ProgramPath):
    _promotions().memberships.unlink(principal().user_id, path.program)
    return {"status": "unlinked", "program": path.program}


@endpoint(
    bp,
    "get",
    "/membership-programs",
    allow=["shopper", "marketer", "admin"],
    summary="Loyalty programs a shopper can link",
    responses={200: S.ProgramList},
)
def programs():
    return {"items": _promotions().memberships.programs()}


@endpoint(
    bp,
    "post",
    "/membership-programs",
    allow=["marketer", "admin"],
    summary="Add a loyalty program",
    responses={201: S.ProgramOut},
)
def create_program(body: ProgramIn):
    program = _promotions().memberships.create_program(body)
    audit("create", "program", program["id"], None, program)
    return program, 201
