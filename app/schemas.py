"""What the REST API answers: response models for the OpenAPI document, and the error envelope.

These models describe responses; the views return plain dicts built by the domain packages.
Every model is open (fields may be added later, clients ignore what they do not know), so a
field listed here is a promise and a field not listed is not. tests/test_schemathesis.py checks
live answers against this document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    """Base of every response model: documented fields, more may follow."""

    model_config = ConfigDict(extra="allow")


# --- errors -------------------------------------------------------------------------------


class ErrorBody(Open):
    code: str = Field(
        description="stable machine-readable code, e.g. validation_error, "
        "not_found, CAP_TOTAL_REACHED"
    )
    message: str = Field(description="human-readable explanation")
    field: str | None = Field(
        description="the offending field ('fixes[3].lat', 'body', 'Authorization'), or null"
    )
    details: Any = Field(
        default=None,
        description="more about the error: for validation errors a list of {field, message, type}",
    )


class ErrorEnvelope(Open):
    """Every failure (4xx, 5xx) answers this envelope."""

    error: ErrorBody


def _error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }
    if retry_after:
        response["headers"] = {
            "Retry-After": {
                "description": "seconds to wait before trying again",
                "required": True,
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    return response


def error_responses() -> dict[str, dict[str, Any]]:
    """Return the error responses of every operation (new dicts: the library edits them)."""
    return {
        "400": _error("Bad request: malformed JSON, a malformed header or query"),
        "401": _error("Missing, malformed, expired or revoked bearer token"),
        "403": _error(
            "The caller's role or scope does not allow this (forbidden, "
            "not_your_store, consent_required, ...)"
        ),
        "404": _error("Not found"),
        "409": _error("Conflict with the current state (a reason code says which)"),
        "413": _error("Request body too large"),
        "422": _error(
            "Validation failed: error.field names the first offending field, "
            "error.details lists up to 20"
        ),
        "429": _error("Too many attempts; retry after Retry-After seconds", retry_after=True),
        "500": _error("Internal error (a bug: reported, never expected)"),
        "503": _error("Storage unavailable; retry after Retry-After seconds", retry_after=True),
    }


def binary(media_type: str, description: str, *, headers: dict | None = None) -> dict[str, Any]:
    """A non-JSON success response (an image, a CSV file)."""
    response: dict[str, Any] = {
        "description": description,
        "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def text(media_type: str, description: str, *, headers: dict | None = None) -> dict[str, Any]:
    """A textual non-JSON success response (CSV, Prometheus text)."""
    response = binary(media_type, description, headers=headers)
    response["content"][media_type]["schema"] = {"type": "string"}
    return response


ETAG = {
    "ETag": {
        "description": "the image's version; send it back in If-None-Match",
        "required": True,
        "schema": {"type": "string"},
    }
}
NOT_MODIFIED = {"description": "Not modified (If-None-Match matched the ETag)", "headers": ETAG}
ATTACHMENT = {
    "Content-Disposition": {
        "description": "attachment; filename=...",
        "required": True,
        "schema": {"type": "string"},
    }
}


def cached_image(media_type: str, description: str) -> dict[int, dict[str, Any]]:
    """An image answered with an ETag, and 304 when If-None-Match matches it."""
    return {200: binary(media_type, description, headers=ETAG), 304: NOT_MODIFIED}


def geojson(description: str) -> dict[str, Any]:
    """A GeoJSON document (application/geo+json)."""
    return {
        "description": description,
        "content": {
            "application/geo+json": {
                "schema": FeatureCollection.model_json_schema(mode="serialization")
            }
        },
    }


def png(description: str) -> dict[str, Any]:
    return binary("image/png", description)


def csv(description: str) -> dict[str, Any]:
    return text("text/csv", description, headers=ATTACHMENT)


# --- small answers ------------------------------------------------------------------------


class StatusOut(Open):
    """An acknowledgement, e.g. {"status": "deleted", "id": "..."}."""

    status: str


class AuditEntry(Open):
    """One change: who, when, what, and the fields that changed before → after."""

    id: str = Field(description="stream entry id; also the paging cursor")
    ts: float = Field(description="unix time of the change")
    actor: str = Field(description="role:account id of who made it")
    action: str = Field(description="create, update, replace, delete, import, transition, ...")
    kind: str = Field(description="store, campaign, offer, grant, game, program, coupon")
    object_id: str
    before: dict[str, Any] = Field(description="the changed fields' old values")
    after: dict[str, Any] = Field(description="the changed fields' new values")


class AuditPage(Open):
    items: list[AuditEntry]
    next_cursor: str | None = Field(
        description="pass as cursor= for older entries; null at the end"
    )


class Grant(Open):
    """A live stream that may drop the campaign's offers."""

    campaign_id: str
    stream_id: str
    granted_by: str = Field(description="role:account id of the marketer who granted it")
    granted_at: float


class GrantList(Open):
    items: list[Grant]


class GrantRevoked(Open):
    status: Literal["revoked"]
    campaign_id: str
    stream_id: str


class Health(Open):
    status: Literal["ok"]


class MapConfig(Open):
    tile_url: str = Field(description="Leaflet tile URL template; empty: no tiles")
    attribution: str = Field(description="HTML attribution of the tiles")
    max_zoom: int


class ClientConfig(Open):
    map: MapConfig


class Ready(Open):
    status: Literal["ok"]
    redis: bool


# --- accounts -----------------------------------------------------------------------------


class UserOut(Open):
    id: str
    email: str
    role: Literal["shopper", "staff", "marketer", "host", "admin", "guest"]
    display_name: str | None
    store_id: str | None = Field(description="staff only: the store they work at")


class SessionOut(Open):
    token: str = Field(description="send as Authorization: Bearer <token>")
    token_type: Literal["Bearer"]
    expires_at: float = Field(description="unix seconds")
    user: UserOut


class ConsentOut(Open):
    location: bool
    updated_at: float | None


# --- stores -------------------------------------------------------------------------------


class StoreOut(Open):
    id: str
    name: str
    brand: str
    city: str
    lat: float
    lon: float
    address: str
    opening_hours: dict[str, Any] | None = Field(
        description='{tz, weekly: {mon: [["10:00","22:00"]], ...}, closed_dates} or '
        "{tz, always: true}; null when unknown"
    )
    fence: dict[str, Any] = Field(
        description="{type: circle, center: [lat, lon], radius_m} "
        "or {type: polygon, coordinates: GeoJSON}"
    )
    updated_at: float


class StoreListItem(StoreOut):
    open_now: bool = Field(description="open now by its opening hours, in its time zone")


class StorePage(Open):
    items: list[StoreListItem]
    next_cursor: str | None
    total: int | None


class StorePin(Open):
    id: str
    name: str
    brand: str
    city: str
    lat: float
    lon: float
    fence: dict[str, Any] = Field(description="the stored fence, as in StoreOut")


class StoreMap(Open):
    version: int = Field(description="the catalog version: it changes with every write")
    items: list[StorePin]


class NearbyStore(StoreOut):
    distance_m: float
    open_now: bool


class NearbyPage(Open):
    items: list[NearbyStore]
    count: int


class ImportRowError(Open):
    at: str = Field(description="line N of the CSV or feature N of the GeoJSON")
    field: str | None
    reason: str


class ImportReportOut(Open):
    received: int
    written: int
    rejected: int
    errors: list[ImportRowError]


class ImportRejected(ErrorEnvelope):
    """422: no row was written; the report says which rows are bad (unless the body was bad)."""

    received: int | None = None
    written: int | None = None
    rejected: int | None = None
    errors: list[ImportRowError] | None = None


class FeatureCollection(Open):
    type: Literal["FeatureCollection"]
    features: list[dict[str, Any]]


# --- location -----------------------------------------------------------------------------


class GeoEventOut(Open):
    id: str
    kind: Literal["enter", "dwell", "exit"]
    shopper_id: str
    store_id: str
    at: float
    trust: int | None = None
    dwell_s: float | None = None


class FixResultOut(Open):
    recorded_at: float
    verdict: str = Field(description="ok, low_accuracy, mocked, jumped, impossible_travel, ...")
    ignored: bool
    reason: str | None
    trust: int | None
    events: list[GeoEventOut]


class FixOutcome(Open):
    results: list[FixResultOut]
    accepted: int
    ignored: int


class InsideItem(Open):
    store_id: str
    entered_at: float
    dwelled: bool
    exit_pending: bool
    store: dict[str, Any] | None = Field(description="{id, name, brand, city}")


class InsideOut(Open):
    items: list[InsideItem]


class MyFixes(Open):
    items: list[dict[str, Any]] = Field(
        description="{t, lat, lon, accuracy_m, speed_mps, mock, verdict}"
    )
    retention_s: int


class TrustOut(Open):
    trust: int


# --- campaigns, offers, coupons -------------------------------------------------------------


class Counters(Open):
    issued: int
    value_fen: int
    redeemed: int
    discount_fen: int


class CampaignOut(Open):
    id: str
    name: str
    starts_at: float
    ends_at: float
    timezone: str
    targets: dict[str, Any]
    budget: dict[str, Any]
    min_trust: int
    created_at: float
    created_by: str
    status: Literal["draft", "scheduled", "live", "paused", "ended"]
    status_at: float
    counters: Counters


class CampaignPage(Open):
    items: list[CampaignOut]
    next_cursor: str | None


class OfferOut(Open):
    id: str
    campaign_id: str
    name: str
    kind: Literal["amount_off", "percent_off", "gift"]
    amount_off_fen: int | None
    percent_off: int | None
    max_off_fen: int | None
    gift_item: str | None
    gift_value_fen: int
    min_spend_fen: int
    validity: dict[str, Any]
    eligible: dict[str, Any]
    channels: list[str]
    visit_trigger: Literal["enter", "dwell"]
    membership_program: str | None
    caps: dict[str, Any]
    active: bool
    created_at: float
    created_by: str
    value_fen: int
    counters: Counters


class OfferList(Open):
    items: list[OfferOut]


class CouponOut(Open):
    """A coupon as its owner, the till or support sees it."""

    id: str
    campaign_id: str
    offer_id: str
    title: str
    offer_name: str
    kind: Literal["amount_off", "percent_off", "gift"]
    amount_off_fen: int | None
    percent_off: int | None
    max_off_fen: int | None
    gift_item: str | None
    min_spend_fen: int
    currency: str
    campaign_name: str
    brand: str
    issued_at: float
    store_id: str | None
    store_name: str | None = Field(
        default=None,
        description="the name of the store it was earned at (in the wallet; null if none)",
    )
    status: Literal["issued", "redeemed", "voided", "expired"]
    valid_from: float
    expires_at: float
    code: str = Field(description="the short code a till can type")
    shopper_id: str | None = None
    source: dict[str, Any] | None = Field(
        default=None, description="how it was issued: {channel, ...}"
    )
    token: str | None = Field(default=None, description="the signed token in the QR (owner only)")
    redemption: dict[str, Any] | None = None


class IssueOut(Open):
    outcome: Literal["issued", "existing"]
    coupon: CouponOut


class LedgerEntry(Open):
    id: str
    type: str
    actor: str
    at: float


class LedgerPage(Open):
    items: list[LedgerEntry]
    next_cursor: str | None


class AnalyticsOut(Open):
    campaign_id: str
    status: str
    group: str
    funnel: dict[str, Any]
    totals: dict[str, Any]
    refusals: dict[str, Any]
    groups: list[dict[str, Any]]


class HeatStore(Open):
    """One store of a campaign's heatmap: foot traffic and coupons there."""

    store_id: str
    name: str
    lat: float
    lon: float
    visits: int = Field(description="foot traffic: enter and dwell visits counted at the store")
    issued: int = Field(description="coupons issued there, voids taken off")
    redeemed: int


class HeatmapOut(Open):
    campaign_id: str
    stores: list[HeatStore]
    bbox: list[float] | None = Field(
        description="[south, west, north, east] around the stores, or null when there are none"
    )


# --- wallet and memberships ----------------------------------------------------------------


class WalletPage(Open):
    items: list[CouponOut]
    next_cursor: str | None


class MembershipOut(Open):
    program: str
    program_name: str
    member_number: str


class MembershipList(Open):
    items: list[MembershipOut]


class ProgramOut(Open):
    id: str
    name: str
    number_pattern: str
    created_at: float


class ProgramList(Open):
    items: list[ProgramOut]


# --- redemption ---------------------------------------------------------------------------


class PreviewOut(Open):
    applies: bool
    reason: str | None = Field(description="why it does not apply (ALREADY_REDEEMED, ...)")
    message: str | None
    discount_fen: int
    pay_fen: int
    gift_item: str | None
    coupon: CouponOut


class StoreRedemption(Open):
    coupon_id: str
    code: str
    campaign_id: str
    title: str | None
    at: float
    order_ref: str
    basket_fen: int
    discount_fen: int
    staff_id: str
    status: Literal["redeemed", "voided"] = Field(description="voided: the redemption was undone")


class StoreRedemptionsOut(Open):
    store_id: str
    day: str = Field(description="the store-local day, e.g. 2026-11-11")
    timezone: str
    items: list[StoreRedemption]


class RedemptionOut(Open):
    outcome: Literal["redeemed", "existing"] = Field(
        description="redeemed (201), or existing (200) when this order was already recorded"
    )
    redemption: dict[str, Any] = Field(
        description="{order_ref, basket_fen, discount_fen, store_id, staff_id, at}"
    )
    discount_fen: int
    coupon: CouponOut


# --- game ---------------------------------------------------------------------------------


class GameConfigOut(Open):
    campaign_id: str
    species: list[dict[str, Any]]
    density_per_cell: float
    store_density: float
    store_rarity_boost: float
    offer_id: str | None
    seed: str
    updated_at: float


class SpawnOut(Open):
    id: str
    campaign_id: str
    species: str
    name: str
    rarity: Literal["common", "rare", "epic", "legendary"]
    points: int
    lat: float
    lon: float
    expires_at: float
    store_id: str | None
    distance_m: float
    bearing_deg: float
    ar: dict[str, Any]
    sprite_url: str


class VisibleSpawnOut(SpawnOut):
    caught: bool = Field(description="this shopper already caught this creature (no more throws)")


class SpawnsOut(Open):
    position: dict[str, Any] = Field(description="{lat, lon, at} of the fix used")
    radius_m: float
    count: int
    spawns: list[VisibleSpawnOut]


class CatchOut(Open):
    outcome: Literal["caught", "missed", "fled"]
    attempt: int
    roll: float
    catch_rate: float
    spawn: SpawnOut
    points: int
    total_points: float | None
    coupon: CouponOut | None
    coupon_refused: str | None


class GameStatusOut(Open):
    catches_today: int
    daily_cap: int
    cooldown_until: float | None
    warned: bool
    suspended: bool


class CollectionOut(Open):
    items: list[dict[str, Any]]
    species: int
    catches: int


class LeaderboardOut(Open):
    campaign_id: str
    scope: Literal["campaign", "city"]
    city: str | None
    period: Literal["all", "day"]
    day: str | None
    players: int
    entries: list[dict[str, Any]] = Field(
        description="{rank, points, name, you} (and shopper_id for marketers)"
    )
    me: dict[str, Any] | None


class StrikesOut(Open):
    shopper_id: str
    strikes: int
    level: str
    shadow_restricted_until: float | None
    history: list[dict[str, Any]]


class RollOut(Open):
    spawn_id: str
    shopper_id: str
    attempt: int
    roll: float
    flee_roll: float


# --- streams ------------------------------------------------------------------------------


class ProductOut(Open):
    id: str
    stream_id: str
    name: str
    price_fen: int
    description: str
    offer_id: str | None
    added_at: float
    image: dict[str, Any] | None = Field(
        description="{width, height, thumb_width, thumb_height, etag}, or null without an image"
    )
    sold_out: bool = Field(
        description="marked sold out by a host on the live screen (the /host event sold_out)"
    )


class StreamOut(Open):
    """A stream; hosts and created_by are shown only to its hosts, marketers and admins."""

    id: str
    title: str
    brand: str
    description: str
    playback_url: str
    starts_at: float
    campaign_id: str | None
    created_at: float
    status: Literal["scheduled", "live", "ended"]
    status_at: float
    live_at: float | None
    ended_at: float | None
    products: list[ProductOut]
    hosts: list[str] | None = None
    created_by: str | None = None


class StreamPage(Open):
    items: list[StreamOut]
    next_cursor: str | None


class StreamReportOut(Open):
    stream: dict[str, Any]
    stats: dict[str, Any]
    comments: dict[str, Any]
    polls: list[dict[str, Any]]
    questions: list[dict[str, Any]]
    drops: list[dict[str, Any]]


# -- webhooks ----------------------------------------------------------------------------------
class WebhookEndpoint(Open):
    """A registered webhook endpoint (its secrets are never shown again after they are made)."""

    id: str = Field(description="ep_<n>")
    url: str
    event_types: list[str] = Field(description="event types it receives; ['*'] = every type")
    description: str
    campaign_id: str | None = Field(description="only this campaign's events, when set")
    status: str = Field(description="active or disabled")
    disabled_code: str | None = Field(description="gone (410), failing (5 days), manual")
    disabled_reason: str | None = Field(description="why it was disabled, in words")
    disabled_at: float | None
    created_at: float
    created_by: str = Field(description="role:account id")
    updated_at: float
    secret_created_at: float
    previous_secret_expires_at: float | None = Field(
        description="until when the previous secret also signs (after a rotation)"
    )


class WebhookEndpointList(Open):
    items: list[WebhookEndpoint]


class WebhookEndpointCreated(Open):
    """The endpoint and its signing secret, shown this once."""

    endpoint: WebhookEndpoint
    secret: str = Field(description="whsec_… (base64 of 32 random bytes): store it now")


class WebhookEventTypes(Open):
    items: list[str]


class WebhookAttempt(Open):
    """One delivery attempt."""

    id: str = Field(description="log entry id; also the paging cursor")
    at: float = Field(description="unix time of the attempt")
    msg_id: str = Field(description="the webhook-id, the same on every attempt of a message")
    type: str
    attempt: int = Field(description="1 for the first attempt")
    result: str = Field(description="succeeded, retrying or failed")
    status: int | None = Field(description="HTTP status; null when no answer came")
    latency_ms: float | None
    error: str | None = Field(description="timeout, connection error, refused address, ...")
    response: str | None = Field(description="the start of the receiver's answer")
    next_at: float | None = Field(description="when the next attempt is due (retrying)")


class WebhookAttemptPage(Open):
    items: list[WebhookAttempt]
    next_cursor: str | None = Field(description="pass as cursor= for older attempts")


class WebhookFailed(Open):
    msg_id: str
    type: str
    attempts: int
    why: str = Field(description="exhausted, gone, failing or endpoint_disabled")


class WebhookFailedList(Open):
    items: list[WebhookFailed]


class WebhookQueued(Open):
    msg_id: str
    state: str = Field(description="queued (ping), scheduled (due now) or requeued")
