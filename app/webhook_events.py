"""What the webhooks' live events carry, read when they are fanned out (drops, stream reports)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from core.errors import DomainError


def live_lookup(app: Flask, kind: str, key: str) -> tuple[dict[str, Any], str | None] | None:
    """Return the payload and campaign of a live event, or None when its subject is gone."""
    live = app.extensions["live"]
    try:
        if kind == "live.drop_ended" and key.startswith("drop:"):
            sid, _, did = key[5:].partition("|")
            drop = live.drops.get(sid, did)
            data = {
                "stream_id": sid,
                "drop_id": did,
                "campaign_id": drop["campaign_id"],
                "offer_id": drop["offer_id"],
                "quantity": drop["quantity"],
                "claimed": drop["claimed"],
                "sold_out": drop["claimed"] >= drop["quantity"],
                "starts_at": drop["starts_at"],
                "ends_at": drop["ends_at"],
            }
            return data, drop["campaign_id"]
        if kind == "live.stream_ended" and key.startswith("stream:"):
            sid = key[7:]
            campaign = live.streams.get(sid).get("campaign_id")
            return live.reports.summary(sid), campaign
    except DomainError:
        return None
    return None
