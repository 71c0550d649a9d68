"""What marketers send: campaigns, offers, caps and membership programs (validated input)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.fields import Flag, Integer, Timestamp, timestamp

from .patterns import MAX_NUMBER_LEN, MAX_PATTERN_LEN, PatternError, compile_pattern

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
CHANNELS = ("visit", "game", "live_drop", "manual")
STATUSES = ("draft", "scheduled", "live", "paused", "ended")
# Allowed manual transitions. scheduled -> live also happens by itself at the start time, and
# scheduled/live/paused -> ended at the end time.
TRANSITIONS = {
    "draft": {"scheduled", "ended"},
    "scheduled": {"draft", "live", "ended"},
    "live": {"paused", "ended"},
    "paused": {"live", "ended"},
    "ended": set(),
}
# The terms each kind of offer needs; the others must be absent.
TERMS = {
    "amount_off": ("amount_off_fen",),
    "percent_off": ("percent_off", "max_off_fen"),
    "gift": ("gift_item",),
}
MAX_FEN = 100_000_000_00  # 100 million yuan: far above any coupon or budget, below float issues


class Targets(BaseModel):
    """Where a campaign runs: any store matching one of the lists (empty lists = none)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    cities: list[str] = Field(default_factory=list, max_length=500)
    stores: list[str] = Field(default_factory=list, max_length=20_000)
    brands: list[str] = Field(default_factory=list, max_length=500)

    @field_validator("stores")
    @classmethod
    def _store_ids(cls, value: list[str]) -> list[str]:
        import re

        for sid in value:
            if not re.match(ID_PATTERN, sid):
                raise ValueError(f"not a store id: {sid[:70]!r}")
        return list(dict.fromkeys(value))

    @field_validator("cities", "brands")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not 1 <= len(name) <= 100:
                raise ValueError("names are 1-100 characters")
        return list(dict.fromkeys(value))


def _after_start(ends_at: float, info: ValidationInfo) -> float:
    starts_at = info.data.get("starts_at")
    if starts_at is not None and ends_at <= starts_at:
        raise ValueError("ends_at must be after starts_at")
    return ends_at


class Budget(BaseModel):
    """Campaign-wide caps over all its offers."""

    model_config = ConfigDict(extra="forbid")

    count: Integer | None = Field(
        default=None, ge=0, le=1_000_000_000, description="coupons issued in all"
    )
    value_fen: Integer | None = Field(
        default=None, ge=0, le=MAX_FEN, description="money value of the coupons issued, in fen"
    )


class CampaignIn(BaseModel):
    """A campaign as a marketer creates it (status starts as draft)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    starts_at: Timestamp = Field(description="unix seconds or ISO 8601 with an offset")
    ends_at: Timestamp = Field(description="unix seconds or ISO 8601 with an offset")
    timezone: str = Field(
        default="Asia/Shanghai",
        max_length=64,
        description="IANA zone for days (per-day caps) and hourly analytics",
    )
    targets: Targets = Field(default_factory=Targets)
    budget: Budget = Field(default_factory=Budget)
    min_trust: Integer = Field(
        default=50,
        ge=0,
        le=100,
        description="visit and game events below this trust score never issue (UNTRUSTED)",
    )

    _stamp = field_validator("starts_at", "ends_at", mode="before")(
        classmethod(lambda cls, v: timestamp(v))
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value[:64]!r}") from None
        return value

    @field_validator("ends_at")
    @classmethod
    def _window(cls, value: float, info: ValidationInfo) -> float:
        # On the field (not the model), so that the error names ends_at.
        return _after_start(value, info)


class CampaignPatch(BaseModel):
    """A partial update; the window and targets can change until the campaign ends."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None
    timezone: str | None = Field(default=None, max_length=64)
    targets: Targets | None = None
    budget: Budget | None = None
    min_trust: Integer | None = Field(default=None, ge=0, le=100)

    _stamp = field_validator("starts_at", "ends_at", mode="before")(
        classmethod(lambda cls, v: v if v is None else timestamp(v))
    )
    _zone = field_validator("timezone")(
        classmethod(lambda cls, v: v if v is None else CampaignIn._zone(v))
    )


class Transition(BaseModel):
    """Move a campaign to another status."""

    model_config = ConfigDict(extra="forbid")

    to: Literal["draft", "scheduled", "live", "paused", "ended"]


class Caps(BaseModel):
    """Per-offer caps; each is exact: the N-th issuance succeeds, the N+1-th is refused."""

    model_config = ConfigDict(extra="forbid")

    total: Integer | None = Field(default=None, ge=0, le=1_000_000_000)
    value_fen: Integer | None = Field(default=None, ge=0, le=MAX_FEN)
    per_shopper: Integer | None = Field(default=None, ge=0, le=1_000_000)
    per_shopper_day: Integer | None = Field(default=None, ge=0, le=1_000_000)
    per_store_day: Integer | None = Field(default=None, ge=0, le=1_000_000_000)


class Validity(BaseModel):
    """How long a coupon is valid: N days from issue, or a fixed window."""

    model_config = ConfigDict(extra="forbid")

    days: Integer | None = Field(default=None, ge=1, le=366)
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None

    _stamp = field_validator("starts_at", "ends_at", mode="before")(
        classmethod(lambda cls, v: v if v is None else timestamp(v))
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Validity:
        fixed = self.starts_at is not None or self.ends_at is not None
        if (self.days is not None) == fixed:
            raise ValueError("give either days, or starts_at and ends_at")
        if fixed and (self.starts_at is None or self.ends_at is None):
            raise ValueError("a fixed window needs starts_at and ends_at")
        return self

    @field_validator("ends_at")
    @classmethod
    def _window(cls, value: float | None, info: ValidationInfo) -> float | None:
        return value if value is None else _after_start(value, info)


class Eligibility(BaseModel):
    """Where a coupon of this offer can be earned and redeemed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    mode: Literal["campaign", "stores", "brand"] = "campaign"
    stores: list[str] = Field(default_factory=list, max_length=20_000)
    brand: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _consistent(self) -> Eligibility:
        if self.mode == "stores" and not self.stores:
            raise ValueError("mode 'stores' needs a non-empty stores list")
        if self.mode == "brand" and not self.brand:
            raise ValueError("mode 'brand' needs a brand")
        if self.mode != "stores" and self.stores:
            raise ValueError("stores is only for mode 'stores'")
        Targets(stores=self.stores)  # the same id rules
        return self


class OfferIn(BaseModel):
    """A coupon template inside a campaign."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)
    kind: Literal["amount_off", "percent_off", "gift"]
    # validate_default: a term the kind needs but the body lacks is named by _terms.
    amount_off_fen: Integer | None = Field(
        default=None,
        ge=1,
        le=MAX_FEN,
        validate_default=True,
        description="amount_off: the discount in fen",
    )
    percent_off: Integer | None = Field(
        default=None, ge=1, le=100, validate_default=True, description="percent_off: whole percent"
    )
    max_off_fen: Integer | None = Field(
        default=None,
        ge=1,
        le=MAX_FEN,
        validate_default=True,
        description="percent_off: the largest discount in fen",
    )
    gift_item: str | None = Field(default=None, min_length=1, max_length=120, validate_default=True)
    gift_value_fen: Integer = Field(
        default=0, ge=0, le=MAX_FEN, description="gift: what the gift costs, for the budget"
    )
    min_spend_fen: Integer = Field(default=0, ge=0, le=MAX_FEN)
    validity: Validity = Field(default_factory=lambda: Validity(days=7))
    eligible: Eligibility = Field(default_factory=Eligibility)
    channels: list[Literal["visit", "game", "live_drop", "manual"]] = Field(
        default_factory=lambda: ["manual"], min_length=1, max_length=4
    )
    visit_trigger: Literal["enter", "dwell"] = Field(
        default="dwell",
        description="for the visit channel: issue on fence enter or on dwell "
        "(once per shopper per store per campaign day)",
    )
    membership_program: str | None = Field(default=None, pattern=ID_PATTERN)
    caps: Caps = Field(default_factory=Caps)
    active: Flag = True

    @field_validator("channels")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("amount_off_fen", "percent_off", "max_off_fen", "gift_item")
    @classmethod
    def _terms(cls, value: int | str | None, info: ValidationInfo) -> int | str | None:
        # Per field (kind is declared before them), so that the error names the term.
        kind = info.data.get("kind")
        if kind is None:  # the kind itself is invalid: that error is reported
            return value
        needed = info.field_name in TERMS[kind]
        if needed and value is None:
            raise ValueError(f"{kind} needs {info.field_name}")
        if not needed and value is not None:
            raise ValueError(f"{info.field_name} does not apply to {kind}")
        return value

    def value_fen(self) -> int:
        """Return what one coupon can cost at most, for the money budget."""
        if self.kind == "amount_off":
            return self.amount_off_fen or 0
        if self.kind == "percent_off":
            return self.max_off_fen or 0
        return self.gift_value_fen


class OfferPatch(BaseModel):
    """What can change on an offer after coupons were issued: caps, channels, on/off."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=120)
    caps: Caps | None = None
    channels: list[Literal["visit", "game", "live_drop", "manual"]] | None = Field(
        default=None, min_length=1, max_length=4
    )
    visit_trigger: Literal["enter", "dwell"] | None = None
    active: Flag | None = None


class ProgramIn(BaseModel):
    """An external loyalty program shoppers can link a membership of."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=120)
    number_pattern: str = Field(
        default=r"^[A-Za-z0-9\-]{4,32}$",
        max_length=MAX_PATTERN_LEN,
        description="regular expression a member number (at most "
        f"{MAX_NUMBER_LEN} characters) must match in full, in RE2 "
        "syntax: no backreferences or lookaround",
    )

    @field_validator("number_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            compile_pattern(value)
        except PatternError as exc:
            raise ValueError(str(exc)) from None
        return value
