"""The fixed words of a coupon card in the shopper's language (English and Simplified Chinese).

The card image (images.coupon_card_png) draws whatever text it is given; this module decides
that text from a coupon's (or an offer's) terms, so that the same coupon reads "¥20 off · min
spend ¥100" in English and "立减¥20 · 满¥100可用" in Chinese. Plain Python: the web layer passes
the language it negotiated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from .issuance import yuan

CARD_LANGUAGES = ("en", "zh-CN")
DEFAULT_LANGUAGE = "en"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "amount_off": "{amount} off",
        "percent_off": "{percent}% off, up to {max}",
        "gift": "Free {item}",
        "min_spend": "min spend {amount}",
        "no_minimum": "no minimum",
        "valid_until": "valid until {when} ({zone})",
        "valid_days": "valid for {days} days from issue",
        "status.redeemed": "Redeemed",
        "status.expired": "Expired",
        "status.voided": "Voided",
        "status.specimen": "Specimen",
        "specimen_code": "PREVIEW",
    },
    "zh-CN": {
        "amount_off": "立减{amount}",
        "percent_off": "{percent}%折扣，最高减{max}",
        "gift": "赠送{item}",
        "min_spend": "满{amount}可用",
        "no_minimum": "无门槛",
        "valid_until": "有效期至 {when}（{zone}）",
        "valid_days": "领取后{days}天内有效",
        "status.redeemed": "已使用",
        "status.expired": "已过期",
        "status.voided": "已作废",
        "status.specimen": "样券",
        "specimen_code": "PREVIEW",
    },
}


@dataclass(frozen=True)
class CardText:
    """The words a card shows: headline, terms line, validity line, status banner."""

    title: str
    terms: str
    validity: str
    status_label: str


def card_language(lang: str | None) -> str:
    """Return a card language for a requested tag ("zh", "zh-CN", "en-GB" …), else English."""
    if not lang:
        return DEFAULT_LANGUAGE
    tag = lang.strip().lower()
    if tag.startswith("zh"):
        return "zh-CN"
    return DEFAULT_LANGUAGE


def text(lang: str, key: str, **params: Any) -> str:
    """Return the card string `key` in a language with its {placeholders} filled."""
    return STRINGS[card_language(lang)][key].format(**params)


def headline(terms: dict[str, Any], lang: str) -> str:
    """Return a coupon's headline from its kind: '¥20 off', '立减¥20', 'Free tote bag' …"""
    kind = terms["kind"]
    if kind == "amount_off":
        return text(lang, "amount_off", amount=yuan(terms["amount_off_fen"]))
    if kind == "percent_off":
        return text(
            lang, "percent_off", percent=terms["percent_off"], max=yuan(terms["max_off_fen"])
        )
    return text(lang, "gift", item=terms["gift_item"])


def card_text(
    terms: dict[str, Any],
    lang: str,
    *,
    timezone: str,
    expires_at: float | None = None,
    valid_days: int | None = None,
    status: str = "issued",
) -> CardText:
    """Return a card's words for a coupon's terms (kind, amounts, min spend, campaign name).

    `expires_at` names the end of validity (a coupon, or an offer with a fixed window);
    `valid_days` is an offer's "N days from issue" when no coupon exists yet.
    """
    lang = card_language(lang)
    spend = terms.get("min_spend_fen") or 0
    parts = [text(lang, "min_spend", amount=yuan(spend)) if spend else text(lang, "no_minimum")]
    if terms.get("campaign_name"):
        parts.append(terms["campaign_name"])
    if expires_at is not None:
        when = datetime.fromtimestamp(expires_at, ZoneInfo(timezone))
        validity = text(lang, "valid_until", when=f"{when:%Y-%m-%d %H:%M}", zone=timezone)
    else:
        validity = text(lang, "valid_days", days=valid_days or 0)
    key = f"status.{status.strip().lower()}"
    label = STRINGS[lang].get(key, status)
    return CardText(headline(terms, lang), " · ".join(parts), validity, label)
