"""What marketers send: a campaign's game configuration (species table, densities)."""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.fields import Integer, Number

RARITIES = ("common", "rare", "epic", "legendary")
SPECIES_ID = r"^[a-z0-9][a-z0-9_\-]{0,31}$"
DEFAULT_POINTS = {"common": 10, "rare": 50, "epic": 200, "legendary": 1000}
# Chance that one throw catches, and that a missed creature runs away, by rarity.
CATCH_RATE = {"common": 0.85, "rare": 0.55, "epic": 0.30, "legendary": 0.15}
FLEE_RATE = {"common": 0.05, "rare": 0.15, "epic": 0.25, "legendary": 0.40}
# AR placement: the creature's size in metres, and the scale the client applies to the sprite.
AR_ANCHOR_M = {"common": 0.35, "rare": 0.5, "epic": 0.8, "legendary": 1.4}
AR_SCALE = {"common": 1.0, "rare": 1.2, "epic": 1.5, "legendary": 2.0}


class Species(BaseModel):
    """One creature of the campaign's species table."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(pattern=SPECIES_ID)
    name: str = Field(min_length=1, max_length=60)
    rarity: Literal["common", "rare", "epic", "legendary"]
    weight: Number = Field(
        gt=0, le=1_000_000, description="relative spawn frequency within the table"
    )
    points: Integer | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="points per catch (default by rarity: 10/50/200/1000)",
    )


class GameConfigIn(BaseModel):
    """A campaign's game: species, densities, and the coupon a store catch earns."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    species: list[Species] = Field(min_length=1, max_length=100)
    density_per_cell: Number = Field(
        default=1.0,
        ge=0,
        le=20,
        description="wild spawns per map cell (~150 m square) per 15-minute slot",
    )
    store_density: Number = Field(
        default=2.0,
        ge=0,
        le=20,
        description="extra spawns inside each target store's fence per slot, in opening hours",
    )
    store_rarity_boost: Number = Field(
        default=5.0,
        ge=1,
        le=100,
        description="store spawns multiply the weight of rare, epic and legendary species by "
        "this (legendary species spawn only in stores)",
    )
    offer_id: str | None = Field(
        default=None,
        pattern=r"^o[1-9][0-9]{0,8}$",
        description="the offer a catch at a store earns (channel game)",
    )
    seed: str = Field(
        default_factory=lambda: secrets.token_hex(8),
        min_length=1,
        max_length=64,
        description="fixes where creatures spawn; change it to reshuffle the map",
    )

    @field_validator("species")
    @classmethod
    def _unique(cls, value: list[Species]) -> list[Species]:
        if len({s.id for s in value}) != len(value):
            raise ValueError("species ids must be unique")
        return value

    @model_validator(mode="after")
    def _wild(self) -> GameConfigIn:
        if self.density_per_cell > 0 and all(s.rarity == "legendary" for s in self.species):
            raise ValueError("wild spawns need at least one species that is not legendary")
        return self
