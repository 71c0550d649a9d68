"""Redemption at the till: preview, redeem, and void (refund) — staff at their own store only."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import Forbidden, ValidationFailed
from core.fields import Integer
from promotions import Actor
from promotions.models import MAX_FEN

from .. import schemas as S
from ..api import audit, endpoint, principal
from .campaigns import COUPON_ID

bp = APIBlueprint(
    "redemptions",
    __name__,
    url_prefix="/api/redemptions",
    abp_tags=[Tag(name="redemption", description="coupons at the till")],
)

ORDER_REF = r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,63}$"


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(
        min_length=1,
        max_length=200,
        description="the scanned QR (signed token) or the typed short code",
    )
    basket_fen: Integer = Field(ge=0, le=MAX_FEN, description="the basket total in fen")


class RedeemBody(PreviewBody):
    order_ref: str = Field(
        pattern=ORDER_REF,
        description="the till's order reference; repeating a redemption "
        "with the same order returns the same redemption",
    )


class VoidBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    coupon_id: str | None = Field(default=None, pattern=COUPON_ID)
    code: str | None = Field(default=None, min_length=1, max_length=200)
    order_ref: str | None = Field(
        default=None, pattern=ORDER_REF, description="if given, the redemption must be for it"
    )

    @model_validator(mode="after")
    def _one(self) -> VoidBody:
        if (self.coupon_id is None) == (self.code is None):
            raise ValueError("give coupon_id or code")
        return self


class TodayQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    store_id: str | None = Field(
        default=None, max_length=64, description="required for marketer/admin; staff: own store"
    )
    day: str | None = Field(
        default=None,
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="the store-local day (default: today in the store's time zone)",
    )


DEFAULT_TZ = "Asia/Shanghai"  # a store without opening hours has no time zone of its own


def _coupons():
    return current_app.extensions["promotions"].coupons


def _till() -> Actor:
    who = principal()
    if who.role == "staff" and not who.store_id:
        raise Forbidden("this staff account has no store", code="no_store")
    return Actor(who.user_id, who.role, who.store_id)


@endpoint(
    bp,
    "post",
    "/preview",
    allow=["staff"],
    summary="Check a code against a basket at the caller's store",
    description="Answers applies, the discount in fen and the amount to pay; when it does "
    "not apply, reason is one of ALREADY_REDEEMED, COUPON_EXPIRED, COUPON_VOIDED, "
    "NOT_YET_VALID, WRONG_STORE, MIN_SPEND_NOT_MET. A code that is not a valid coupon "
    "code answers 422 INVALID_CODE; so does a typed short code of a coupon that cannot "
    "be used at this store (WRONG_STORE is only told for a scanned token); repeated "
    "invalid codes answer 429 with Retry-After.",
    responses={200: S.PreviewOut},
)
def preview(body: PreviewBody):
    return _coupons().preview(body.code, body.basket_fen, _till())


@endpoint(
    bp,
    "post",
    "",
    allow=["staff"],
    summary="Redeem a coupon for an order at the caller's store",
    description="201 with the redemption; 200 with the same redemption when this order "
    "was already recorded (a repeated scan); 409 ALREADY_REDEEMED (with where and when) "
    "for another order, 409 COUPON_EXPIRED / COUPON_VOIDED / NOT_YET_VALID / "
    "MIN_SPEND_NOT_MET, 403 WRONG_STORE.",
    responses={200: S.RedemptionOut, 201: S.RedemptionOut},
)
def redeem(body: RedeemBody):
    result = _coupons().redeem(body.code, body.basket_fen, body.order_ref, _till())
    return result, 201 if result["outcome"] == "redeemed" else 200


@endpoint(
    bp,
    "post",
    "/void",
    allow=["staff", "marketer", "admin"],
    summary="Void a redemption (refund): the coupon is usable again if still valid",
    description="Staff of the store that redeemed it, or a marketer, within the void "
    "window (COUPON_VOID_WINDOW_S). A code goes through the same throttled check as at "
    "the till: for staff, a code not redeemed at their store answers 422 INVALID_CODE "
    "like a wrong one.",
    responses={200: S.CouponOut},
)
def void(body: VoidBody):
    coupon = _coupons().void_redemption(body.coupon_id, body.order_ref, _till(), code=body.code)
    if principal().role in ("marketer", "admin"):  # the audit log is of marketers' changes
        after = {"status": coupon["status"]}
        audit("void_redemption", "coupon", coupon["id"], {"status": "redeemed"}, after)
    return coupon


@endpoint(
    bp,
    "get",
    "",
    allow=["staff", "marketer", "admin"],
    summary="A store's redemptions of one store-local day (default today), newest first",
    description="Staff see only their own store (store_id may be omitted); a marketer or "
    "admin names the store. A voided redemption stays listed with status voided.",
    responses={200: S.StoreRedemptionsOut},
)
def store_redemptions(query: TodayQuery):
    who = principal()
    store_id = query.store_id
    if who.role == "staff":
        _till()
        if store_id not in (None, who.store_id):
            raise Forbidden(
                "staff see only their own store", code="not_your_store", field="store_id"
            )
        store_id = who.store_id
    elif not store_id:
        raise ValidationFailed("name the store", code="store_id_required", field="store_id")
    store = current_app.extensions["stores"].get(store_id)  # 404 for an unknown store
    tz_name = (store.get("opening_hours") or {}).get("tz") or DEFAULT_TZ
    tz = ZoneInfo(tz_name)
    coupons = _coupons()
    if query.day:
        try:
            day = datetime.strptime(query.day, "%Y-%m-%d").date()
        except ValueError:
            raise ValidationFailed("not a date", code="invalid_day", field="day") from None
    else:
        day = datetime.fromtimestamp(coupons.clock.now(), tz).date()
    start = datetime.combine(day, time(), tz)
    end = datetime.combine(day + timedelta(days=1), time(), tz)
    items = coupons.store_redemptions(store_id, start.timestamp(), end.timestamp() - 1e-6)
    return {"store_id": store_id, "day": day.isoformat(), "timezone": tz_name, "items": items}
