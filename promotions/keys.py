"""Redis key names of the promotions package, with their hash tags.

Everything one campaign's invariants touch (its state, offers and their counters, caps per
shopper, day and store, idempotency keys, coupons, wallets, the expiry index, the ledger and the
statistics) lives under the tag `{c:<campaign id>}`, so issuance, redemption, voids and expiry
are single scripts on one slot and the same code runs on Redis Cluster. A shopper's index of the
campaigns they hold coupons in, and their memberships, live under `{u:<shopper id>}`; a loyalty
program's member numbers under `{p:<program>}`.
"""

CAMPAIGN_SEQ = "promo:campaign_seq"  # counter: the next campaign id
CAMPAIGNS = "promo:campaigns"  # sorted set: campaign id -> the id as a number (listing)
ACTIVE = "promo:active"  # set: campaigns not yet ended (scheduler, visit consumer, sweeper)
VERSION = "promo:version"  # counter bumped by every campaign/offer change (process caches)
PROGRAMS = "promo:programs"  # hash: membership program id -> program JSON
CONSUMER_GROUP = "promotions"  # consumer group on geo:events
# Rule names of the invalid-code limits (core.throttle): the moving windows live at
# `throttle:promo-invalid:<staff|till|shopper>/<id>/<limit>/<window>/second`.
THROTTLE = "promo-invalid"


def campaign(cid: str) -> str:
    """Return the hash-tagged prefix of one campaign's keys."""
    return f"promo:{{c:{cid}}}"


def meta(cid: str) -> str:
    """Hash: doc (JSON), status, starts, ends, budget caps and counters, coupon sequence."""
    return f"{campaign(cid)}:meta"


def offers(cid: str) -> str:
    """Sorted set: offer ids of the campaign by creation order."""
    return f"{campaign(cid)}:offers"


def offer(cid: str, oid: str) -> str:
    """Hash: doc (JSON), active, channels, caps and counters of one offer."""
    return f"{campaign(cid)}:o:{oid}"


def per_shopper(cid: str) -> str:
    """Hash: '<offer>|<shopper>' -> coupons issued (all time)."""
    return f"{campaign(cid)}:ps"


def per_shopper_day(cid: str, day: str) -> str:
    """Hash: '<offer>|<shopper>' -> coupons issued on one campaign-local day (expiring)."""
    return f"{campaign(cid)}:psd:{day}"


def per_store_day(cid: str, day: str) -> str:
    """Hash: '<offer>|<store>' -> coupons issued at one store on one day (expiring)."""
    return f"{campaign(cid)}:std:{day}"


def idempotency(cid: str) -> str:
    """Hash: idempotency key -> coupon sequence number."""
    return f"{campaign(cid)}:idem"


def coupons(cid: str) -> str:
    """Hash: coupon sequence number -> coupon JSON."""
    return f"{campaign(cid)}:coupons"


def wallet(cid: str, shopper_id: str) -> str:
    """Sorted set: one shopper's coupon sequence numbers in this campaign, by issue time."""
    return f"{campaign(cid)}:w:{shopper_id}"


def expiring(cid: str) -> str:
    """Sorted set: sequence numbers of coupons that can still expire, by expiry time."""
    return f"{campaign(cid)}:exp"


def ledger(cid: str) -> str:
    """Stream: append-only ledger of issue, redeem, void and expiry entries."""
    return f"{campaign(cid)}:ledger"


def stats(cid: str) -> str:
    """Hash: '<metric>|<offer>|<store>|<hour>' -> count (analytics)."""
    return f"{campaign(cid)}:stats"


def visitors(cid: str) -> str:
    """HyperLogLog: distinct shoppers who visited a target store (the funnel's top)."""
    return f"{campaign(cid)}:visitors"


def seen_visits(cid: str, day: str) -> str:
    """Set: geo event ids already counted as visits on one day (replays count once)."""
    return f"{campaign(cid)}:seen:{day}"


def shopper_campaigns(shopper_id: str) -> str:
    """Set: campaigns in which the shopper may hold coupons (the wallet's index)."""
    return f"promo:{{u:{shopper_id}}}:campaigns"


def shopper_memberships(shopper_id: str) -> str:
    """Hash: program id -> member number."""
    return f"promo:{{u:{shopper_id}}}:members"


def program_members(program: str) -> str:
    """Hash: member number -> shopper id (one number belongs to one shopper)."""
    return f"promo:{{p:{program}}}:members"


def store_redemptions(cid: str, store_id: str) -> str:
    """Sorted set: this campaign's redemptions at one store (JSON of coupon sequence number,
    order, basket, discount and staff) by redemption time; kept after a void (the till's list)."""
    return f"{campaign(cid)}:rs:{store_id}"


def state(cid: str) -> str:
    """Hash: coupon sequence number -> mutable state JSON (status, validity, redemption)."""
    return f"{campaign(cid)}:state"


def grants(cid: str) -> str:
    """Hash: stream id -> grant JSON (which live streams may drop the campaign's offers)."""
    return f"{campaign(cid)}:grants"
