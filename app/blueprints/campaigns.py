"""Campaigns, offers and caps for marketers; manual issuance, the ledger and analytics."""

from __future__ import annotations

from typing import Literal

from flask import Response, current_app, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field

from core.errors import NotFound
from promotions import Actor
from promotions.cardtext import CARD_LANGUAGES, card_language, card_text, text
from promotions.images import coupon_card_png, heatmap_png
from promotions.issuance import IDEMPOTENCY_KEY, coupon_terms
from promotions.models import (
    ID_PATTERN,
    CampaignIn,
    CampaignPatch,
    OfferIn,
    OfferPatch,
    Transition,
)
from promotions.reports import GROUPS

from .. import schemas as S
from ..api import audit, endpoint, principal

bp = APIBlueprint(
    "campaigns",
    __name__,
    url_prefix="/api",
    abp_tags=[Tag(name="campaigns", description="campaigns, offers, caps")],
)

MANAGERS = ("marketer", "admin")
# What issuing and redeeming move on their own: never part of a marketer's change.
COUNTERS = frozenset({"counters"})
CAMPAIGN_ID = r"^[1-9][0-9]{0,11}$"
OFFER_ID = r"^o[1-9][0-9]{0,8}$"
COUPON_ID = r"^[1-9][0-9]{0,11}-[1-9][0-9]{0,11}$"
STREAM_ID = r"^[1-9][0-9]{0,11}$"


class CampaignPath(BaseModel):
    campaign_id: str = Field(pattern=CAMPAIGN_ID)


class OfferPath(BaseModel):
    campaign_id: str = Field(pattern=CAMPAIGN_ID)
    offer_id: str = Field(pattern=OFFER_ID)


class GrantPath(BaseModel):
    campaign_id: str = Field(pattern=CAMPAIGN_ID)
    stream_id: str = Field(pattern=STREAM_ID)


class CouponPath(BaseModel):
    coupon_id: str = Field(pattern=COUPON_ID)


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["draft", "scheduled", "live", "paused", "ended"] | None = None
    cursor: str | None = Field(
        default=None, pattern=CAMPAIGN_ID, description="next_cursor of the previous page"
    )
    limit: int = Field(default=50, ge=1, le=200)


class CardQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lang: Literal[CARD_LANGUAGES] | None = Field(  # type: ignore[valid-type]
        default=None, description="the card's language; default from Accept-Language, else en"
    )


# What a specimen card's QR holds: not a signed token (no "FF1." prefix, no signature) and
# not a short code (O and I are not in the short-code alphabet), so no till accepts it.
SPECIMEN_TOKEN = "FOOTFALL-SPECIMEN-NOT-A-COUPON/{campaign_id}/{offer_id}"


def card_language_of(lang: str | None) -> str:
    """Return the card language asked for: `lang`, else the best of Accept-Language, else en."""
    if lang:
        return lang
    for tag, _quality in request.accept_languages:  # best first
        if tag.lower().startswith(("zh", "en")):
            return card_language(tag)
    return "en"


class IssueBody(BaseModel):
    """A manual issuance; retrying with the same idempotency_key returns the same coupon."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    shopper_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    idempotency_key: str = Field(
        pattern=IDEMPOTENCY_KEY,
        description="client-chosen; the same key returns the coupon it issued the first time",
    )
    store_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="the store it is issued for (checked against the "
        "offer's eligibility and per-store caps)",
    )


class LedgerQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: str | None = Field(default=None, description="next_cursor of the previous page")
    limit: int = Field(default=100, ge=1, le=1000)
    type: (
        Literal["issue", "redeem", "void_redemption", "void", "expire", "status", "grant", "revoke"]
        | None
    ) = None


class AnalyticsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group: Literal[GROUPS] = "campaign"  # type: ignore[valid-type]


class CsvQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group: Literal[GROUPS] | None = Field(  # type: ignore[valid-type]
        default=None,
        description="one row per group as the analytics show it; none: one row per hour, "
        "offer, store and channel",
    )


class VoidBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, title="CouponVoidBody")

    reason: str = Field(default="", max_length=200)


def _promotions():
    return current_app.extensions["promotions"]


def _live_streams():
    return current_app.extensions["streams"]


def _offer_ref(campaign_id: str, offer_id: str) -> str:
    return f"{campaign_id}/{offer_id}"


def granted_streams(campaign_id: str) -> set[str]:
    """Return the ids of the streams granted the campaign (none if it does not exist)."""
    try:
        return {g["stream_id"] for g in _promotions().campaigns.grants(campaign_id)}
    except NotFound:  # the grant itself answers which of stream and campaign is missing
        return set()


def audit_grant(campaign_id: str, stream_id: str) -> None:
    """Record that the caller granted a stream the campaign (one mechanism for every path)."""
    audit("grant", "grant", f"{campaign_id}/{stream_id}", None, {"granted": True})


def _actor() -> str:
    who = principal()
    return f"{who.role}:{who.user_id}"


@endpoint(
    bp,
    "post",
    "/campaigns",
    allow=MANAGERS,
    summary="Create a campaign (as a draft)",
    responses={201: S.CampaignOut},
)
def create_campaign(body: CampaignIn):
    campaign = _promotions().campaigns.create(body, _actor())
    audit("create", "campaign", campaign["id"], None, campaign, ignore=COUNTERS)
    return campaign, 201


@endpoint(
    bp,
    "get",
    "/campaigns",
    allow=MANAGERS,
    summary="List campaigns, newest first",
    responses={200: S.CampaignPage},
)
def list_campaigns(query: ListQuery):
    return _promotions().campaigns.list(cursor=query.cursor, limit=query.limit, status=query.status)


@endpoint(
    bp,
    "get",
    "/campaigns/<campaign_id>",
    allow=MANAGERS,
    summary="A campaign with its status and counters",
    responses={200: S.CampaignOut},
)
def get_campaign(path: CampaignPath):
    return _promotions().campaigns.get(path.campaign_id)


@endpoint(
    bp,
    "patch",
    "/campaigns/<campaign_id>",
    allow=MANAGERS,
    summary="Change a campaign's name, window, zone, targets, budget or trust floor",
    responses={200: S.CampaignOut},
)
def patch_campaign(path: CampaignPath, body: CampaignPatch):
    before = _promotions().campaigns.get(path.campaign_id)
    campaign = _promotions().campaigns.update(path.campaign_id, body)
    audit("update", "campaign", path.campaign_id, before, campaign, ignore=COUNTERS)
    return campaign


@endpoint(
    bp,
    "post",
    "/campaigns/<campaign_id>/transition",
    allow=MANAGERS,
    summary="Move a campaign to another status",
    description="draft → scheduled → live → paused → live … → ended; scheduled → draft. "
    "A scheduled campaign goes live by itself at its start and every campaign ends by "
    "itself at its end. Refused moves answer 409 INVALID_TRANSITION or OUTSIDE_WINDOW.",
    responses={200: S.CampaignOut},
)
def transition_campaign(path: CampaignPath, body: Transition):
    before = _promotions().campaigns.get(path.campaign_id)
    campaign = _promotions().campaigns.transition(path.campaign_id, body.to, _actor())
    audit("transition", "campaign", path.campaign_id, before, campaign, ignore=COUNTERS)
    return campaign


@endpoint(
    bp,
    "post",
    "/campaigns/<campaign_id>/offers",
    allow=MANAGERS,
    summary="Add an offer (coupon template) with its caps",
    responses={201: S.OfferOut},
)
def create_offer(path: CampaignPath, body: OfferIn):
    offer = _promotions().campaigns.create_offer(path.campaign_id, body, _actor())
    audit(
        "create", "offer", _offer_ref(path.campaign_id, offer["id"]), None, offer, ignore=COUNTERS
    )
    return offer, 201


@endpoint(
    bp,
    "get",
    "/campaigns/<campaign_id>/offers",
    allow=MANAGERS,
    summary="The offers of a campaign with their counters",
    responses={200: S.OfferList},
)
def list_offers(path: CampaignPath):
    return {"items": _promotions().campaigns.list_offers(path.campaign_id)}


@endpoint(
    bp,
    "get",
    "/campaigns/<campaign_id>/offers/<offer_id>",
    allow=MANAGERS,
    summary="One offer with its counters",
    responses={200: S.OfferOut},
)
def get_offer(path: OfferPath):
    _promotions().campaigns.get(path.campaign_id)
    return _promotions().campaigns.get_offer(path.campaign_id, path.offer_id)


@endpoint(
    bp,
    "patch",
    "/campaigns/<campaign_id>/offers/<offer_id>",
    allow=MANAGERS,
    summary="Change an offer's caps, channels, visit trigger or on/off switch",
    description="The terms (discount, minimum spend, validity, eligibility) are fixed "
    "once the offer exists, so every coupon of an offer means the same thing.",
    responses={200: S.OfferOut},
)
def patch_offer(path: OfferPath, body: OfferPatch):
    _promotions().campaigns.get(path.campaign_id)
    before = _promotions().campaigns.get_offer(path.campaign_id, path.offer_id)
    offer = _promotions().campaigns.update_offer(path.campaign_id, path.offer_id, body)
    ref = _offer_ref(path.campaign_id, path.offer_id)
    audit("update", "offer", ref, before, offer, ignore=COUNTERS)
    return offer


@endpoint(
    bp,
    "get",
    "/campaigns/<campaign_id>/offers/<offer_id>/card.png",
    allow=MANAGERS,
    summary="A specimen of the coupon card a shopper gets for this offer",
    description="The offer's headline, brand, terms and validity as a shopper's card shows "
    "them, in `lang` (en or zh-CN; default from Accept-Language, else en), under a "
    "'specimen' banner. Its QR and code are not a coupon: no till accepts them.",
    responses={200: S.png("Specimen coupon card image")},
)
def offer_card(path: OfferPath, query: CardQuery):
    campaigns = _promotions().campaigns
    campaigns.get(path.campaign_id)
    campaigns.get_offer(path.campaign_id, path.offer_id)
    view = campaigns.view(path.campaign_id)
    if path.offer_id not in view.offers:  # created a moment ago, maybe by another process
        view = campaigns.view(path.campaign_id, fresh=True)
    offer = view.offers[path.offer_id]
    terms = coupon_terms(view, path.offer_id, "", now=0, store_id=None, source={})
    lang = card_language_of(query.lang)
    validity = offer["validity"]
    words = card_text(
        terms,
        lang,
        timezone=view.doc["timezone"],
        expires_at=validity["ends_at"],
        valid_days=validity["days"],
        status="specimen",
    )
    png = coupon_card_png(
        token=SPECIMEN_TOKEN.format(campaign_id=path.campaign_id, offer_id=path.offer_id),
        title=words.title,
        brand=terms["brand"],
        terms=words.terms,
        short_code=text(lang, "specimen_code"),
        expires_label=words.validity,
        status="specimen",
        status_label=words.status_label,
    )
    headers = {"Cache-Control": "private, no-cache", "Vary": "Accept-Language"}
    return Response(png, mimetype="image/png", headers=headers)


@endpoint(
    bp,
    "post",
    "/campaigns/<campaign_id>/offers/<offer_id>/issue",
    allow=MANAGERS,
    summary="Issue a coupon to a shopper by hand (channel manual)",
    description="201 with the new coupon; 200 with the original coupon when the "
    "idempotency key was used before; 409 with a reason code (CAMPAIGN_NOT_LIVE, "
    "OUTSIDE_WINDOW, CAP_TOTAL_REACHED, CAP_BUDGET_REACHED, CAP_PER_SHOPPER_REACHED, "
    "CAP_PER_SHOPPER_DAY_REACHED, CAP_PER_STORE_REACHED, NOT_ELIGIBLE, "
    "MEMBERSHIP_REQUIRED, CHANNEL_NOT_ALLOWED, OFFER_INACTIVE) when refused.",
    responses={200: S.IssueOut, 201: S.IssueOut},
)
def issue_coupon(path: OfferPath, body: IssueBody):
    from promotions import Refused

    promos = _promotions()
    if current_app.extensions["accounts"].role_of(body.shopper_id) != "shopper":
        raise Refused("NOT_ELIGIBLE", "no shopper with this id", status=422, field="shopper_id")
    result = promos.issue(
        path.campaign_id,
        path.offer_id,
        body.shopper_id,
        channel="manual",
        idempotency_key=body.idempotency_key,
        store_id=body.store_id,
        actor=_actor(),
        source={"idempotency_key": body.idempotency_key},
    )
    if not result.ok:
        raise Refused(result.reason, field="offer_id")
    coupon = promos.coupons.present(result.coupon, owner=False)
    return {"outcome": result.outcome, "coupon": coupon}, 201 if result.outcome == "issued" else 200


@endpoint(
    bp,
    "get",
    "/campaigns/<campaign_id>/grants",
    allow=MANAGERS,
    summary="The live streams that may drop this campaign's offers",
    responses={200: S.GrantList},
)
def list_grants(path: CampaignPath):
    return {"items": _promotions().campaigns.grants(path.campaign_id)}


@endpoint(
    bp,
    "put",
    "/campaigns/<campaign_id>/grants/<stream_id>",
    allow=MANAGERS,
    summary="Let a live stream attach this campaign and drop its offers",
    description="Without a grant, a host attaching the campaign to a stream and every "
    "drop of its offers answer 403 CAMPAIGN_NOT_GRANTED (a marketer scheduling a stream "
    "with the campaign grants it). Granting again changes nothing; the ledger records "
    "`grant` and `revoke` entries.",
    responses={200: S.Grant},
)
def grant_stream(path: GrantPath):
    granted = granted_streams(path.campaign_id)
    grant = _live_streams().grant(path.stream_id, path.campaign_id, _actor())
    if path.stream_id not in granted:  # granting again changes nothing, so records nothing
        audit_grant(path.campaign_id, path.stream_id)
    return grant


@endpoint(
    bp,
    "delete",
    "/campaigns/<campaign_id>/grants/<stream_id>",
    allow=MANAGERS,
    summary="Take a grant back: no drop of this campaign starts or is claimed there",
    responses={200: S.GrantRevoked},
)
def revoke_stream(path: GrantPath):
    granted = granted_streams(path.campaign_id)
    _live_streams().revoke(path.stream_id, path.campaign_id, _actor())
    if path.stream_id in granted:
        ref = f"{path.campaign_id}/{path.stream_id}"
        audit("revoke", "grant", ref, {"granted": True}, {"granted": False})
    return {"status": "revoked", "campaign_id": path.campaign_id, "stream_id": path.stream_id}


@endpoint(
    bp,
    "get",
    "/campaigns/<campaign_id>/ledger",
    allow=MANAGERS,
    summary="Page through a campaign's ledger (issue, redeem, void, expiry, status)",
    responses={200: S.LedgerPage},
)
def ledger(path: CampaignPath, query: LedgerQuery):
    return _promotions().reports.ledger(
        path.campaign_id, after=query.after, limit=query.limit, kind=query.type
    )


@endpoint(
    bp,
    "get",
    "/campaigns/<campaign_id>/analytics",
    allow=MANAGERS,
    summary="Funnel (visit → coupon → redemption) and totals by day, offer, store, hour",
    responses={200: S.AnalyticsOut},
)
def analytics(path: CampaignPath, query: AnalyticsQuery):
    return _promotions().reports.analytics(path.campaign_id, group=query.group)


@endpoint(
    bp,
    "get",
    "/campaigns/<campaign_id>/analytics.csv",
    allow=MANAGERS,
    summary="Statistics as CSV: hourly per offer, store and channel, or one row per group",
    responses={200: S.csv("Statistics as CSV")},
)
def analytics_csv(path: CampaignPath, query: CsvQuery):
    text = _promotions().reports.csv(path.campaign_id, group=query.group)
    name = f"campaign-{path.campaign_id}" + (f"-by-{query.group}" if query.group else "")
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@endpoint(
    bp,
    "get",
    "/campaigns/<campaign_id>/heatmap",
    allow=MANAGERS,
    summary="Foot traffic, coupons issued and redeemed per store, with positions (for a map)",
    responses={200: S.HeatmapOut},
)
def heatmap_points(path: CampaignPath):
    return _promotions().reports.heatmap(path.campaign_id)


@endpoint(
    bp,
    "get",
    "/campaigns/<campaign_id>/heatmap.png",
    allow=MANAGERS,
    summary="Heatmap of where coupons were issued (blue) and redeemed (red)",
    responses={200: S.png("Heatmap image")},
)
def heatmap(path: CampaignPath):
    points, bbox, title = _promotions().reports.heat_points(path.campaign_id)
    return Response(
        heatmap_png(points, bbox, title=title),
        mimetype="image/png",
        headers={"Cache-Control": "private, max-age=60"},
    )


@endpoint(
    bp,
    "get",
    "/coupons/<coupon_id>",
    allow=MANAGERS,
    summary="Look up one coupon (support)",
    responses={200: S.CouponOut},
)
def get_coupon(path: CouponPath):
    promos = _promotions()
    return promos.coupons.present(promos.coupons.get(path.coupon_id), owner=False)


@endpoint(
    bp,
    "post",
    "/coupons/<coupon_id>/void",
    allow=MANAGERS,
    summary="Void an unredeemed coupon; its caps and budget are released",
    responses={200: S.CouponOut},
)
def void_coupon(path: CouponPath, body: VoidBody):
    who = principal()
    promos = _promotions()
    before = promos.coupons.present(promos.coupons.get(path.coupon_id), owner=False)
    coupon = promos.coupons.void(path.coupon_id, Actor(who.user_id, who.role), reason=body.reason)
    audit("void", "coupon", path.coupon_id, before, coupon)
    return coupon
