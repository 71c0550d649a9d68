"""Shared setup for the promotions tests: a catalog with stores, a campaign with an offer."""

from __future__ import annotations

import itertools
import json

from geo import keys as geo_keys
from geo.fsm import event as _event
from geo.stores import StoreCatalog
from promotions import Actor, CouponCodec, Promotions
from promotions import keys as promo_keys
from promotions.models import CampaignIn, OfferIn

from .conftest import T0

SHANGHAI = (31.2400, 121.4800)
KEYS = [("k2", b"second-key-of-at-least-16"), ("k1", b"first-key-of-at-least-16b")]
_idempotency = itertools.count(1)


class Recorder:
    """A CouponNotifier that remembers what it was told."""

    def __init__(self):
        self.sent = []

    def coupon_issued(self, shopper_id, coupon):
        self.sent.append((shopper_id, coupon))


def make_promotions(r, clock, notifier=None, keys=None, **settings):
    from promotions import RedeemSettings

    catalog = StoreCatalog(r, clock)
    return Promotions(
        r,
        clock,
        catalog,
        CouponCodec(keys or KEYS),
        notifier=notifier,
        settings=RedeemSettings(**settings) if settings else None,
    )


def add_stores(catalog, n=3, brand="Acme", city="Shanghai"):
    ids = []
    for i in range(n):
        sid = f"{brand.lower()}-{i}"
        catalog.create(
            {
                "id": sid,
                "name": f"{brand} {i}",
                "brand": brand,
                "city": city,
                "lat": SHANGHAI[0] + i * 0.01,
                "lon": SHANGHAI[1],
                "fence": {"type": "circle", "radius_m": 80},
            }
        )
        ids.append(sid)
    return ids


def draft_campaign(
    promos,
    *,
    targets=None,
    budget=None,
    starts=T0 - 3600,
    ends=T0 + 30 * 86400,
    timezone="Asia/Shanghai",
    min_trust=50,
    **offer,
):
    """Create a draft campaign with one offer; keyword arguments shape the offer."""
    campaign = promos.campaigns.create(
        CampaignIn(
            name="Double 11",
            starts_at=starts,
            ends_at=ends,
            timezone=timezone,
            min_trust=min_trust,
            targets=targets or {"brands": ["Acme"]},
            budget=budget or {},
        ),
        actor="m1",
    )
    cid = campaign["id"]
    spec = {
        "name": "20 off",
        "kind": "amount_off",
        "amount_off_fen": 2000,
        "channels": ["manual", "visit", "game", "live_drop"],
    }
    spec.update(offer)
    created = promos.campaigns.create_offer(cid, OfferIn(**spec), actor="m1")
    return cid, created["id"]


def live_campaign(promos, **kwargs):
    """Create a scheduled campaign with one offer (live once its start has come)."""
    cid, oid = draft_campaign(promos, **kwargs)
    promos.campaigns.transition(cid, "scheduled", actor="m1")
    return cid, oid


def issue(promos, cid, oid, shopper="u1", *, key=None, channel="manual", **kwargs):
    """Issue with a fresh idempotency key unless one is given."""
    return promos.issue(
        cid,
        oid,
        shopper,
        channel=channel,
        idempotency_key=key or f"test-{next(_idempotency)}",
        **kwargs,
    )


def staff(store_id, user_id=None):
    """Return a till actor of a store."""
    return Actor(user_id or f"staff-{store_id}", "staff", store_id)


def ledger_entries(r, cid, kind=None):
    """Return a campaign's raw ledger entries (fields), optionally of one type."""
    return [
        fields
        for _, fields in r.xrange(promo_keys.ledger(cid))
        if kind is None or fields["type"] == kind
    ]


def append_geo_event(r, shopper_id, store_id, kind, at, trust=100, **extra):
    """Append an event to the shopper's geo event partition exactly as the location engine
    does; return it."""
    event = _event(shopper_id, store_id, kind, at, trust, **extra)
    r.xadd(geo_keys.shopper_events(shopper_id), {"event": json.dumps(event, separators=(",", ":"))})
    return event


def streamed_geo_events(r):
    """Return every event in the geo event partitions (each partition in order)."""
    return [
        json.loads(fields["event"])
        for stream in geo_keys.event_streams()
        for _, fields in r.xrange(stream)
    ]
