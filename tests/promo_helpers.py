"""Shared setup for the promotions tests: a catalog with stores, a campaign with an offer."""

from __future__ import annotations

from geo.stores import StoreCatalog
from promotions import CouponCodec, Promotions
from promotions.models import CampaignIn, OfferIn

from .conftest import T0

SHANGHAI = (31.2400, 121.4800)
KEYS = [("k2", b"second-key-of-at-least-16"), ("k1", b"first-key-of-at-least-16b")]


class Recorder:
    """A CouponNotifier that remembers what it was told."""

    def __init__(self):
        self.sent = []

    def coupon_issued(self, shopper_id, coupon):
        self.sent.append((shopper_id, coupon))


def make_promotions(r, clock, notifier=None, keys=None, **settings):
    from promotions import RedeemSettings

    catalog = StoreCatalog(r, clock)
    return Promotions(r, clock, catalog, CouponCodec(keys or KEYS), notifier=notifier,
                      settings=RedeemSettings(**settings) if settings else None)


def add_stores(catalog, n=3, brand="Acme", city="Shanghai"):
    ids = []
    for i in range(n):
        sid = f"{brand.lower()}-{i}"
        catalog.create({"id": sid, "name": f"{brand} {i}", "brand": brand, "city": city,
                        "lat": SHANGHAI[0] + i * 0.01, "lon": SHANGHAI[1],
                        "fence": {"type": "circle", "radius_m": 80}})
        ids.append(sid)
    return ids


def live_campaign(promos, *, targets=None, budget=None, starts=T0 - 3600, ends=T0 + 30 * 86400,
                  **offer):
    """Create a live campaign with one offer; keyword arguments shape the offer."""
    campaign = promos.campaigns.create(CampaignIn(
        name="Double 11", starts_at=starts, ends_at=ends,
        targets=targets or {"brands": ["Acme"]}, budget=budget or {}), actor="m1")
    cid = campaign["id"]
    spec = {"name": "20 off", "kind": "amount_off", "amount_off_fen": 2000,
            "channels": ["manual", "visit", "game", "live_drop"]}
    spec.update(offer)
    created = promos.campaigns.create_offer(cid, OfferIn(**spec), actor="m1")
    promos.campaigns.transition(cid, "scheduled", actor="m1")
    return cid, created["id"]
