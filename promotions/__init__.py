"""Promotions: campaigns, offers and caps, coupon issuance, the wallet, redemption, the ledger.

Plain Python on Redis (no Flask): the app builds one `Promotions` per process and calls it.
"""

from __future__ import annotations

from typing import Any

import redis

from core.durability import Durability
from geo import keys as geo_keys

from .campaigns import Campaigns, Refused
from .codes import CouponCodec
from .consumer import VisitConsumer
from .coupons import Actor, Coupons, RedeemSettings
from .issuance import CouponNotifier, Issuer, IssueResult
from .membership import Memberships
from .reports import Reports
from .scripts import Scripts

__all__ = [
    "Actor",
    "CouponCodec",
    "CouponNotifier",
    "IssueResult",
    "Promotions",
    "RedeemSettings",
    "Refused",
]


class Promotions:
    """Every promotions service of one process, sharing one Redis client, clock and codec."""

    def __init__(
        self,
        r: redis.Redis,
        clock,
        catalog,
        codec: CouponCodec,
        *,
        notifier: CouponNotifier | None = None,
        settings: RedeemSettings | None = None,
        event_partitions: int = geo_keys.EVENT_PARTITIONS,
        durability: Durability | None = None,
    ) -> None:
        self.r = r
        self.event_partitions = event_partitions
        self.clock = clock
        # Money writes (issue, redeem, voids; live drops through `issue`) wait for replicas.
        self.durability = durability or Durability(r)
        self.scripts = Scripts(r)
        self.codec = codec
        self.campaigns = Campaigns(r, clock, catalog, self.scripts)
        self.memberships = Memberships(r, clock)
        self.issuer = Issuer(
            r, clock, self.campaigns, self.scripts, self.memberships, notifier, self.durability
        )
        self.coupons = Coupons(
            r, clock, self.campaigns, self.scripts, codec, settings, durability=self.durability
        )
        self.reports = Reports(r, self.campaigns)

    def consumer(self, name: str | None = None, **options: Any) -> VisitConsumer:
        """Return a consumer of geofence events for this process."""
        options.setdefault("partitions", self.event_partitions)
        return VisitConsumer(self.r, self.campaigns, self.issuer, self.scripts, name, **options)

    def issue(self, *args: Any, **kwargs: Any) -> IssueResult:
        """Issue a coupon (see Issuer.issue)."""
        return self.issuer.issue(*args, **kwargs)

    def tick(self) -> dict[str, Any]:
        """Apply the clock: campaign transitions at window edges, then coupon expiry."""
        statuses = self.campaigns.tick()
        return {"statuses": statuses, "expired": self.coupons.sweep()}

    def erase(self, shopper_id: str) -> None:
        """Remove a shopper's memberships and wallet index (account erasure).

        Coupons stay in their campaigns' books, with the ledger, under the opaque shopper id
        that no longer links to an account.
        """
        from . import keys

        self.memberships.erase(shopper_id)
        cids = self.r.smembers(keys.shopper_campaigns(shopper_id))
        pipe = self.r.pipeline(transaction=False)
        for cid in cids:
            pipe.delete(keys.wallet(cid, shopper_id))
        pipe.delete(keys.shopper_campaigns(shopper_id))
        pipe.execute()
