"""The catch game: spawns around the shopper, catches, rewards, leaderboards, sprites, strikes."""

from __future__ import annotations

import copy
from typing import Any, ClassVar, Literal

from flask import Response, current_app, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.errors import NotFound
from game.models import SPECIES_ID, GameConfigIn
from game.sprites import SPRITE_SIZES

from .. import schemas as S
from ..api import audit, endpoint, principal
from ..auth import PUBLIC
from .campaigns import CAMPAIGN_ID
from .location import FixIn

bp = APIBlueprint(
    "game",
    __name__,
    url_prefix="/api",
    abp_tags=[Tag(name="game", description="the AR catch game")],
)

MANAGERS = ("marketer", "admin")
SPAWN_ID = r"^[ws]:[0-9]{1,12}:[A-Za-z0-9_.\-]{1,64}:[0-9]{1,12}:[0-9]{1,3}$"


class QueryModel(BaseModel):
    """A query-string model whose JSON schema is built once per process.

    flask-openapi3 asks a query model for its JSON schema on every request (to find list
    fields); pydantic builds it anew each time, which was 12 % of the spawn list's worker time
    (bench/README.md, game section). The schema of a class never changes: each caller gets a
    copy of the one built first.
    """

    _schemas: ClassVar[dict[tuple, dict[str, Any]]] = {}

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        key = (cls, args, tuple(sorted(kwargs.items())))
        schema = QueryModel._schemas.get(key)
        if schema is None:
            schema = QueryModel._schemas[key] = super().model_json_schema(*args, **kwargs)
        return copy.deepcopy(schema)


class CampaignPath(BaseModel):
    campaign_id: str = Field(pattern=CAMPAIGN_ID)


class SpritePath(BaseModel):
    campaign_id: str = Field(pattern=CAMPAIGN_ID)
    species: str = Field(pattern=SPECIES_ID)


class ShopperPath(BaseModel):
    shopper_id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")


class SpawnsQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")

    radius_m: float | None = Field(
        default=None,
        gt=0,
        le=500,
        allow_inf_nan=False,
        description="default GAME_VISIBLE_RADIUS_M (200 m)",
    )
    limit: int = Field(
        default=50,
        ge=1,
        le=100,
        description="the nearest this many; `count` says how many are in the radius",
    )


class CatchBody(BaseModel):
    """A throw: which creature, and where the phone is now."""

    model_config = ConfigDict(extra="forbid")

    spawn_id: str = Field(pattern=SPAWN_ID)
    fix: FixIn


class BoardQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")

    scope: Literal["campaign", "city"] = "campaign"
    city: str | None = Field(default=None, min_length=1, max_length=100)
    period: Literal["all", "day"] = "all"
    limit: int = Field(default=10, ge=1, le=100)


class SpriteQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")

    size: int = Field(default=256, description="128, 256 or 512 pixels")

    @field_validator("size")
    @classmethod
    def _offered(cls, value: int) -> int:
        if value not in SPRITE_SIZES:
            raise ValueError("size is 128, 256 or 512")
        return value


class RollQuery(QueryModel):
    model_config = ConfigDict(extra="forbid")

    spawn_id: str = Field(pattern=SPAWN_ID)
    shopper_id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    attempt: int = Field(ge=1, le=1_000_000)


def _game():
    return current_app.extensions["game"]


@endpoint(
    bp,
    "put",
    "/campaigns/<campaign_id>/game",
    allow=MANAGERS,
    summary="Set a campaign's game: species table, spawn densities, store-catch offer",
    responses={200: S.GameConfigOut},
)
def put_game(path: CampaignPath, body: GameConfigIn):
    try:
        before = _game().config(path.campaign_id)
    except NotFound:
        before = None
    config = _game().configure(path.campaign_id, body)
    audit("configure" if before is None else "update", "game", path.campaign_id, before, config)
    return config


@endpoint(
    bp,
    "get",
    "/campaigns/<campaign_id>/game",
    allow=MANAGERS,
    summary="A campaign's game configuration",
    responses={200: S.GameConfigOut},
)
def get_game(path: CampaignPath):
    return _game().config(path.campaign_id)


@endpoint(
    bp,
    "get",
    "/game/spawns",
    allow=["shopper"],
    summary="Creatures around the caller's last trusted fix, nearest first",
    description="Each with species, rarity, position, expiry, distance and bearing from "
    "the caller, the sprite URL and AR placement data. 409 NO_POSITION without a recent "
    "trusted fix; 403 SUSPENDED.",
    responses={200: S.SpawnsOut},
)
def spawns(query: SpawnsQuery):
    found = _game().visible(principal().user_id, query.radius_m, query.limit)
    for spawn in found["spawns"]:
        spawn["sprite_url"] = _sprite_url(spawn["campaign_id"], spawn["species"])
    return found


@endpoint(
    bp,
    "post",
    "/game/catches",
    allow=["shopper"],
    summary="Throw at a creature from the caller's current fix",
    description="Refusals: SPAWN_NOT_FOUND (404), SPAWN_EXPIRED (410), STALE_FIX, "
    "UNTRUSTED_FIX, IMPOSSIBLE_TRAVEL (422), UNTRUSTED, SUSPENDED (403), SPEED_LOCKED, "
    "TOO_FAR, ALREADY_CAUGHT, FLED, COOLDOWN, DAILY_CAP_REACHED (409), RATE_LIMITED "
    "(429). A throw answers caught, missed or fled, with the attempt number and the roll.",
    responses={200: S.CatchOut, 410: S.ErrorEnvelope},
)
def catch(body: CatchBody):
    result = _game().catch(principal().user_id, body.spawn_id, body.fix.to_fix())
    result["spawn"]["sprite_url"] = _sprite_url(
        result["spawn"]["campaign_id"], result["spawn"]["species"]
    )
    return result


@endpoint(
    bp,
    "get",
    "/game/me",
    allow=["shopper"],
    summary="The caller's catches today, cooldown, warning and suspension",
    responses={200: S.GameStatusOut},
)
def my_status():
    return _game().status(principal().user_id)


@endpoint(
    bp,
    "get",
    "/game/collection",
    allow=["shopper"],
    summary="Which species the caller has caught, and how many",
    responses={200: S.CollectionOut},
)
def collection():
    return _game().collection(principal().user_id)


@endpoint(
    bp,
    "get",
    "/game/leaderboards/<campaign_id>",
    allow=("shopper", *MANAGERS),
    summary="A campaign's (or one city's) leaderboard, overall or today, and your rank",
    responses={200: S.LeaderboardOut},
)
def leaderboard(path: CampaignPath, query: BoardQuery):
    who = principal()
    board = _game().leaderboard(
        path.campaign_id,
        scope=query.scope,
        city=query.city,
        period=query.period,
        limit=query.limit,
        shopper_id=who.user_id if who.role == "shopper" else None,
    )
    names = current_app.extensions["accounts"].display_names(
        [e["shopper_id"] for e in board["entries"]]
    )
    for entry in board["entries"]:
        entry["name"] = names.get(entry["shopper_id"]) or f"Player {entry['shopper_id'][:4]}"
        entry["you"] = entry["shopper_id"] == who.user_id
        if who.role == "shopper":
            del entry["shopper_id"]  # other shoppers' account ids are not for shoppers
    return board


@endpoint(
    bp,
    "get",
    "/game/sprites/<campaign_id>/<species>.png",
    allow=[PUBLIC],
    summary="A species' sprite (PNG with transparency), cached by clients and proxies",
    description="Public, so that an AR view can load it as a plain image.",
    responses=S.cached_image("image/png", "Sprite with transparency"),
)
def sprite(path: SpritePath, query: SpriteQuery):
    png, etag = _game().sprite(path.campaign_id, path.species, query.size)
    if request.if_none_match.contains(etag):
        return Response(status=304, headers={"ETag": f'"{etag}"'})
    return Response(
        png,
        mimetype="image/png",
        headers={"Cache-Control": "public, max-age=86400, immutable", "ETag": f'"{etag}"'},
    )


@endpoint(
    bp,
    "get",
    "/game/shoppers/<shopper_id>/strikes",
    allow=MANAGERS,
    summary="A shopper's anti-cheat strikes with their evidence",
    responses={200: S.StrikesOut},
)
def strikes(path: ShopperPath):
    _shopper(path.shopper_id)
    return _game().strikes(path.shopper_id)


@endpoint(
    bp,
    "delete",
    "/game/shoppers/<shopper_id>/strikes",
    allow=MANAGERS,
    summary="Clear a shopper's strikes and restrictions (the history keeps the clearing)",
    responses={200: S.StrikesOut},
)
def clear_strikes(path: ShopperPath):
    _shopper(path.shopper_id)
    who = principal()
    return _game().clear_strikes(path.shopper_id, f"{who.role}:{who.user_id}")


@endpoint(
    bp,
    "get",
    "/game/rolls",
    allow=MANAGERS,
    summary="Audit: recompute the roll of one catch attempt",
    responses={200: S.RollOut},
)
def roll(query: RollQuery):
    from game import roll_for

    catch_roll, flee_roll = roll_for(query.spawn_id, query.shopper_id, query.attempt)
    return {
        "spawn_id": query.spawn_id,
        "shopper_id": query.shopper_id,
        "attempt": query.attempt,
        "roll": round(catch_roll, 6),
        "flee_roll": round(flee_roll, 6),
    }


def _shopper(shopper_id: str) -> None:
    if current_app.extensions["accounts"].role_of(shopper_id) != "shopper":
        raise NotFound("no such shopper", code="shopper_not_found", field="shopper_id")


def _sprite_url(campaign_id: str, species: str) -> str:
    return f"/api/game/sprites/{campaign_id}/{species}.png"
