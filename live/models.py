"""What marketers and hosts send: streams and their products (validated input)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.fields import Integer, Timestamp, timestamp
from promotions.models import MAX_FEN

USER_ID = r"^[A-Za-z0-9_\-]{1,64}$"
OFFER_ID = r"^o[1-9][0-9]{0,8}$"
CAMPAIGN_ID = r"^[1-9][0-9]{0,11}$"


def _https(value: str) -> str:
    if not re.match(r"^https://[^\s/$.?#][^\s]*$", value):
        raise ValueError("must be an https:// URL")
    return value


class StreamIn(BaseModel):
    """A stream as a marketer or host schedules it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=120)
    brand: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=2000)
    playback_url: str = Field(max_length=500, description="the video provider's https URL")
    hosts: list[str] = Field(
        min_length=1, max_length=5, description="account ids of the hosts (role host)"
    )
    starts_at: Timestamp = Field(description="unix seconds or ISO 8601 with an offset")
    campaign_id: str | None = Field(
        default=None,
        pattern=CAMPAIGN_ID,
        description="the promotions campaign whose offers the "
        "products link and the host drops; only marketers and "
        "admins attach one when scheduling (which grants it)",
    )

    _stamp = field_validator("starts_at", mode="before")(classmethod(lambda cls, v: timestamp(v)))
    _url = field_validator("playback_url")(classmethod(lambda cls, v: _https(v)))

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for uid in value:
            if not re.match(USER_ID, uid):
                raise ValueError(f"not an account id: {uid[:70]!r}")
        return list(dict.fromkeys(value))


class StreamPatch(BaseModel):
    """A partial update of a scheduled stream (null leaves a field as is)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(default=None, min_length=1, max_length=120)
    brand: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    playback_url: str | None = Field(default=None, max_length=500)
    hosts: list[str] | None = Field(default=None, min_length=1, max_length=5)
    starts_at: Timestamp | None = None
    campaign_id: str | None = Field(
        default=None,
        pattern=CAMPAIGN_ID,
        description="attach a campaign: a marketer's change grants "
        "it to the stream; a host needs the campaign's grant",
    )

    _stamp = field_validator("starts_at", mode="before")(
        classmethod(lambda cls, v: v if v is None else timestamp(v))
    )
    _url = field_validator("playback_url")(
        classmethod(lambda cls, v: v if v is None else _https(v))
    )
    _hosts = field_validator("hosts")(
        classmethod(lambda cls, v: v if v is None else StreamIn._hosts(v))
    )


class StreamTransition(BaseModel):
    """Move a stream: scheduled → live → ended."""

    model_config = ConfigDict(extra="forbid")

    to: Literal["live", "ended"]


class ProductIn(BaseModel):
    """A product shown in a stream (the image comes as a separate file part)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)
    price_fen: Integer = Field(ge=0, le=MAX_FEN)
    description: str = Field(default="", max_length=1000)
    offer_id: str | None = Field(
        default=None, pattern=OFFER_ID, description="an offer of the stream's campaign"
    )

    @field_validator("price_fen", mode="before")
    @classmethod
    def _integer(cls, value: Any) -> Any:
        # Multipart form fields arrive as text: "12900" is fine, "129.00" is not (fen).
        if isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value.strip()):
            return int(value)
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError("an integer number of fen")
        return value
