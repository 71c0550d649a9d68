"""Promotions on a real Redis: caps, statuses, idempotency, wallet, redemption, voids, reports."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing

import pytest

from app.sinks import redis_connect
from core.clock import FrozenClock
from core.errors import Conflict, Forbidden, NotFound, RateLimited, ValidationFailed
from promotions import Actor, Refused
from promotions import keys as promo_keys
from promotions.codes import NO_SUCH_CODE, CouponCodec, InvalidCode
from promotions.models import OfferIn, OfferPatch, ProgramIn
from promotions.reports import CSV_COLUMNS

from .conftest import T0
from .promo_helpers import (
    Recorder,
    add_stores,
    draft_campaign,
    issue,
    ledger_entries,
    live_campaign,
    make_promotions,
    staff,
)

DAY = 86_400
# T0 is 2026-05-29 04:26:40 in Shanghai; the next Shanghai midnight is 2026-05-29T16:00Z.
NEXT_SHANGHAI_MIDNIGHT = 1_780_070_400.0
NEXT_UTC_MIDNIGHT = 1_780_012_800.0
MANAGER = Actor("m1", "marketer")


@pytest.fixture
def promos(redis_client, clock):
    promotions = make_promotions(redis_client, clock)
    add_stores(promotions.campaigns.catalog)
    return promotions


def offer_counters(promos, cid, oid):
    return promos.campaigns.get_offer(cid, oid)["counters"]


def campaign_counters(promos, cid):
    return promos.campaigns.get(cid)["counters"]


def refusals(promos, cid):
    return promos.reports.analytics(cid)["refusals"]


# -- caps: the N-th succeeds, the N+1-th is refused -------------------------------------------
# (campaign budget, offer caps as a function of N, how attempts vary, reason)
CAPS = {
    "offer-total": ({}, lambda n: {"total": n}, "everyone", "CAP_TOTAL_REACHED"),
    "offer-value": ({}, lambda n: {"value_fen": n * 2000 + 1999}, "everyone", "CAP_BUDGET_REACHED"),
    "campaign-count": ({"count": None}, lambda n: {}, "everyone", "CAP_TOTAL_REACHED"),
    "campaign-value": ({"value_fen": None}, lambda n: {}, "everyone", "CAP_BUDGET_REACHED"),
    "per-shopper": ({}, lambda n: {"per_shopper": n}, "same-shopper", "CAP_PER_SHOPPER_REACHED"),
    "per-shopper-day": (
        {},
        lambda n: {"per_shopper_day": n},
        "same-shopper",
        "CAP_PER_SHOPPER_DAY_REACHED",
    ),
    "per-store-day": ({}, lambda n: {"per_store_day": n}, "same-store", "CAP_PER_STORE_REACHED"),
}


def _budget(template, n):
    if "count" in template:
        return {"count": n}
    if "value_fen" in template:
        return {"value_fen": n * 2000 + 1999}  # not enough for one more coupon
    return {}


def _attempt(vary, i):
    """Return (shopper, store) of the i-th attempt."""
    stores = ["acme-0", "acme-1", "acme-2"]
    if vary == "same-shopper":
        return "u1", stores[i % 3]
    if vary == "same-store":
        return f"u{i}", "acme-0"
    return f"u{i}", stores[i % 3]


@pytest.mark.parametrize("n", [0, 1, 3])
@pytest.mark.parametrize("kind", list(CAPS))
def test_cap_edge(promos, redis_client, kind, n):
    budget, caps, vary, reason = CAPS[kind]
    cid, oid = live_campaign(promos, budget=_budget(budget, n), caps=caps(n))
    for i in range(n):
        shopper, store = _attempt(vary, i)
        result = issue(promos, cid, oid, shopper, store_id=store)
        assert result.outcome == "issued", (i, result.reason)
    shopper, store = _attempt(vary, n)
    result = issue(promos, cid, oid, shopper, store_id=store)
    assert (result.outcome, result.reason, result.coupon) == ("refused", reason, None)
    assert offer_counters(promos, cid, oid)["issued"] == n
    assert campaign_counters(promos, cid) == {
        "issued": n,
        "value_fen": 2000 * n,
        "redeemed": 0,
        "discount_fen": 0,
    }
    assert len(ledger_entries(redis_client, cid, "issue")) == n
    assert refusals(promos, cid) == {reason: 1}


@pytest.mark.parametrize(
    "kind, other",
    [
        ("per-shopper", ("u2", "acme-0")),
        ("per-shopper-day", ("u2", "acme-0")),
        ("per-store-day", ("u1", "acme-1")),
    ],
)
def test_per_shopper_and_store_caps_leave_others_alone(promos, kind, other):
    _, caps, vary, reason = CAPS[kind]
    cid, oid = live_campaign(promos, caps=caps(1))
    first = _attempt(vary, 0)
    assert issue(promos, cid, oid, first[0], store_id=first[1]).ok
    again = _attempt(vary, 1)
    assert issue(promos, cid, oid, again[0], store_id=again[1]).reason == reason
    assert issue(promos, cid, oid, other[0], store_id=other[1]).outcome == "issued"


@pytest.mark.parametrize(
    "caps, reason, shopper, store",
    [
        ({"per_shopper_day": 1}, "CAP_PER_SHOPPER_DAY_REACHED", "u1", "acme-0"),
        ({"per_store_day": 1}, "CAP_PER_STORE_REACHED", "u2", "acme-0"),
    ],
)
def test_day_caps_reset_at_the_campaigns_local_midnight(
    promos, clock, caps, reason, shopper, store
):
    cid, oid = live_campaign(promos, caps=caps)  # timezone Asia/Shanghai
    assert issue(promos, cid, oid, "u1", store_id="acme-0").ok
    # A new UTC day is still the same day in Shanghai.
    clock.set(NEXT_UTC_MIDNIGHT)
    assert issue(promos, cid, oid, shopper, store_id=store).reason == reason
    clock.set(NEXT_SHANGHAI_MIDNIGHT - 1)
    assert issue(promos, cid, oid, shopper, store_id=store).reason == reason
    clock.set(NEXT_SHANGHAI_MIDNIGHT)
    assert issue(promos, cid, oid, shopper, store_id=store).outcome == "issued"
    assert issue(promos, cid, oid, shopper, store_id=store).reason == reason


def test_per_shopper_day_cap_in_another_timezone(promos, clock):
    cid, oid = live_campaign(promos, timezone="UTC", caps={"per_shopper_day": 1})
    assert issue(promos, cid, oid).ok
    clock.set(NEXT_UTC_MIDNIGHT - 1)
    assert issue(promos, cid, oid).reason == "CAP_PER_SHOPPER_DAY_REACHED"
    clock.set(NEXT_UTC_MIDNIGHT)
    assert issue(promos, cid, oid).outcome == "issued"


def test_budget_is_shared_by_the_campaigns_offers(promos):
    cid, first = live_campaign(promos, budget={"count": 3})
    second = promos.campaigns.create_offer(
        cid, _offer(name="10 off", amount_off_fen=1000), actor="m1"
    )["id"]
    assert issue(promos, cid, first).ok and issue(promos, cid, second).ok
    assert issue(promos, cid, second).ok
    assert issue(promos, cid, first).reason == "CAP_TOTAL_REACHED"
    assert campaign_counters(promos, cid)["value_fen"] == 2000 + 1000 + 1000


def _offer(**fields):
    from promotions.models import OfferIn

    spec = {
        "name": "20 off",
        "kind": "amount_off",
        "amount_off_fen": 2000,
        "channels": ["manual", "visit", "game", "live_drop"],
    }
    spec.update(fields)
    return OfferIn(**spec)


# -- campaign status ---------------------------------------------------------------------------
def test_draft_campaign_issues_nothing(promos):
    cid, oid = draft_campaign(promos)
    assert promos.campaigns.get(cid)["status"] == "draft"
    assert issue(promos, cid, oid).reason == "CAMPAIGN_NOT_LIVE"


def test_scheduled_campaign_goes_live_at_its_start_by_itself(promos, redis_client, clock):
    cid, oid = live_campaign(promos, starts=T0 + 3600)
    assert promos.campaigns.get(cid)["status"] == "scheduled"
    assert issue(promos, cid, oid).reason == "OUTSIDE_WINDOW"
    clock.set(T0 + 3599)
    assert issue(promos, cid, oid).reason == "OUTSIDE_WINDOW"
    clock.set(T0 + 3600)
    assert issue(promos, cid, oid).outcome == "issued"  # nobody moved it
    campaign = promos.campaigns.get(cid)
    assert (campaign["status"], campaign["status_at"]) == ("live", T0 + 3600)
    statuses = ledger_entries(redis_client, cid, "status")
    assert [(e["from"], e["to"], e["actor"]) for e in statuses] == [
        ("draft", "scheduled", "m1"),
        ("scheduled", "live", "clock"),
    ]
    assert float(statuses[-1]["at"]) == T0 + 3600


def test_reading_a_campaign_applies_the_clock_once(promos, redis_client, clock):
    cid, _ = live_campaign(promos, starts=T0 + 60)
    clock.set(T0 + 60)
    for _ in range(3):
        assert promos.campaigns.get(cid)["status"] == "live"
    assert len(ledger_entries(redis_client, cid, "status")) == 2


def test_paused_campaign_issues_nothing_until_resumed(promos, redis_client):
    cid, oid = live_campaign(promos)
    assert promos.campaigns.transition(cid, "paused", actor="m1")["status"] == "paused"
    assert issue(promos, cid, oid).reason == "CAMPAIGN_NOT_LIVE"
    assert promos.campaigns.transition(cid, "live", actor="m1")["status"] == "live"
    assert issue(promos, cid, oid).outcome == "issued"
    assert [e["to"] for e in ledger_entries(redis_client, cid, "status")] == [
        "scheduled",
        "live",
        "paused",
        "live",
    ]


@pytest.mark.parametrize("before", ["scheduled", "live", "paused"])
def test_campaign_ends_at_its_end(promos, redis_client, clock, before):
    starts = T0 + 100 if before == "scheduled" else T0 - 3600
    cid, oid = live_campaign(promos, starts=starts, ends=T0 + 1000)
    if before == "paused":
        promos.campaigns.transition(cid, "paused", actor="m1")
    assert promos.campaigns.get(cid)["status"] == before
    clock.set(T0 + 1000)
    assert issue(promos, cid, oid).reason == "CAMPAIGN_NOT_LIVE"
    assert promos.campaigns.get(cid)["status"] == "ended"
    last = ledger_entries(redis_client, cid, "status")[-1]
    assert (last["from"], last["to"], last["actor"]) == (before, "ended", "clock")


@pytest.mark.parametrize(
    "path, to",
    [
        ([], "live"),
        ([], "paused"),
        (["scheduled"], "paused"),
        (["scheduled", "live"], "draft"),
        (["scheduled", "live"], "scheduled"),
        (["scheduled", "live", "paused"], "scheduled"),
        (["scheduled", "live", "paused"], "draft"),
        (["ended"], "live"),
        (["ended"], "draft"),
        (["ended"], "scheduled"),
    ],
)
def test_invalid_transitions_are_refused(promos, path, to):
    # Only a campaign that stays scheduled needs a start in the future.
    cid, _ = draft_campaign(promos, starts=T0 + 10 if path == ["scheduled"] else T0 - 3600)
    for step in path:
        promos.campaigns.transition(cid, step, actor="m1")
    status = promos.campaigns.get(cid)["status"]
    with pytest.raises(Refused) as info:
        promos.campaigns.transition(cid, to, actor="m1")
    assert info.value.code == "INVALID_TRANSITION"
    assert info.value.details == {"status": status}
    assert promos.campaigns.get(cid)["status"] == status


def test_manual_live_before_the_start_is_refused(promos, clock):
    cid, oid = live_campaign(promos, starts=T0 + 3600)
    with pytest.raises(Refused) as info:
        promos.campaigns.transition(cid, "live", actor="m1")
    assert info.value.code == "OUTSIDE_WINDOW"
    assert promos.campaigns.get(cid)["status"] == "scheduled"
    # Back to draft and scheduled again before the start: still waiting.
    promos.campaigns.transition(cid, "draft", actor="m1")
    assert promos.campaigns.transition(cid, "scheduled", actor="m1")["status"] == "scheduled"


def test_offer_with_a_fixed_window_stops_issuing_at_its_end(promos, clock):
    cid, oid = live_campaign(promos, validity={"starts_at": T0 + DAY, "ends_at": T0 + 2 * DAY})
    assert issue(promos, cid, oid).outcome == "issued"  # before the window: valid later
    clock.set(T0 + 2 * DAY - 1)
    assert issue(promos, cid, oid).outcome == "issued"
    clock.set(T0 + 2 * DAY)
    assert issue(promos, cid, oid).reason == "OUTSIDE_WINDOW"
    assert promos.campaigns.get(cid)["status"] == "live"


def test_unknown_campaign_transition_is_not_found(promos):
    with pytest.raises(Refused) as info:
        promos.campaigns.transition("999", "live", actor="m1")
    assert (info.value.code, info.value.status) == ("CAMPAIGN_NOT_FOUND", 404)


def test_tick_moves_statuses_and_drops_ended_campaigns(promos, redis_client, clock):
    starting, _ = live_campaign(promos, starts=T0 + 100, ends=T0 + 5000)
    ending, _ = live_campaign(promos, ends=T0 + 200)
    draft, _ = draft_campaign(promos)
    assert redis_client.smembers(promo_keys.ACTIVE) == {starting, ending, draft}
    clock.set(T0 + 100)
    assert promos.tick()["statuses"] == {starting: "live", ending: "live", draft: "draft"}
    clock.set(T0 + 200)
    assert promos.tick()["statuses"] == {starting: "live", ending: "ended", draft: "draft"}
    assert redis_client.smembers(promo_keys.ACTIVE) == {starting, draft}
    ended = ledger_entries(redis_client, ending, "status")[-1]
    assert (ended["to"], ended["actor"]) == ("ended", "clock")
    clock.set(T0 + 5000)
    promos.tick()
    assert redis_client.smembers(promo_keys.ACTIVE) == {draft}


# -- idempotency -------------------------------------------------------------------------------
def test_same_idempotency_key_returns_the_first_coupon(promos, redis_client, clock):
    cid, oid = live_campaign(promos)
    first = issue(promos, cid, oid, key="order-1", store_id="acme-0")
    counters = offer_counters(promos, cid, oid)
    clock.advance(30)
    again = issue(promos, cid, oid, key="order-1", store_id="acme-0")
    assert (first.outcome, again.outcome) == ("issued", "existing")
    assert again.coupon == first.coupon
    assert len(ledger_entries(redis_client, cid, "issue")) == 1
    assert (
        offer_counters(promos, cid, oid)
        == counters
        == {"issued": 1, "value_fen": 2000, "redeemed": 0, "discount_fen": 0}
    )
    other = issue(promos, cid, oid, key="order-2", store_id="acme-0")
    assert other.outcome == "issued" and other.coupon["id"] != first.coupon["id"]
    assert len(ledger_entries(redis_client, cid, "issue")) == 2
    entry = ledger_entries(redis_client, cid, "issue")[0]
    assert (entry["coupon"], entry["idempotency_key"], entry["store"]) == (
        first.coupon["id"],
        f"{oid}|order-1",
        "acme-0",
    )


def test_idempotency_keys_are_scoped_to_the_offer(promos):
    cid, oid = live_campaign(promos)
    other = promos.campaigns.create_offer(
        cid, OfferIn(name="gift", kind="gift", gift_item="bag", channels=["manual"]), actor="m1"
    )["id"]
    first = issue(promos, cid, oid, key="shared")
    second = issue(promos, cid, other, key="shared")
    assert (first.outcome, second.outcome) == ("issued", "issued")
    assert second.coupon["offer_id"] == other != first.coupon["offer_id"]


def test_a_retry_gets_its_coupon_even_after_it_would_now_be_refused(promos):
    promos.memberships.create_program(ProgramIn(id="club", name="Club"))
    cid, oid = live_campaign(promos, membership_program="club")
    promos.memberships.link("u1", "club", "M-0001")
    first = issue(promos, cid, oid, "u1", key="k-1")
    promos.memberships.unlink("u1", "club")
    again = issue(promos, cid, oid, "u1", key="k-1")
    assert again.outcome == "existing" and again.coupon["id"] == first.coupon["id"]
    assert issue(promos, cid, oid, "u1", key="k-2").reason == "MEMBERSHIP_REQUIRED"


def test_replay_after_the_cap_was_reached_returns_the_coupon(promos):
    cid, oid = live_campaign(promos, caps={"total": 1})
    first = issue(promos, cid, oid, key="k-1")
    assert issue(promos, cid, oid, "u2").reason == "CAP_TOTAL_REACHED"
    again = issue(promos, cid, oid, key="k-1")
    assert again.outcome == "existing" and again.coupon["id"] == first.coupon["id"]


# -- refusals before any counter ---------------------------------------------------------------
def test_channel_not_allowed(promos):
    cid, oid = live_campaign(promos, channels=["manual"])
    assert issue(promos, cid, oid, channel="game").reason == "CHANNEL_NOT_ALLOWED"
    assert issue(promos, cid, oid, channel="manual").outcome == "issued"
    promos.campaigns.update_offer(cid, oid, OfferPatch(channels=["game"]))
    assert issue(promos, cid, oid, channel="game").outcome == "issued"
    assert issue(promos, cid, oid, channel="manual").reason == "CHANNEL_NOT_ALLOWED"


def test_offer_switched_off(promos, redis_client):
    cid, oid = live_campaign(promos)
    assert promos.campaigns.update_offer(cid, oid, OfferPatch(active=False))["active"] is False
    assert issue(promos, cid, oid).reason == "OFFER_INACTIVE"
    assert ledger_entries(redis_client, cid, "issue") == []
    promos.campaigns.update_offer(cid, oid, OfferPatch(active=True))
    assert issue(promos, cid, oid).outcome == "issued"


def test_store_outside_the_campaigns_targets_is_not_eligible(promos):
    add_stores(promos.campaigns.catalog, n=1, brand="Other")
    cid, oid = live_campaign(promos)  # targets: brand Acme
    assert issue(promos, cid, oid, store_id="other-0").reason == "NOT_ELIGIBLE"
    assert issue(promos, cid, oid, store_id="nowhere").reason == "NOT_ELIGIBLE"
    assert issue(promos, cid, oid, store_id="acme-2").outcome == "issued"
    assert offer_counters(promos, cid, oid)["issued"] == 1


def test_offer_eligible_at_listed_stores_only(promos):
    cid, oid = live_campaign(promos, eligible={"mode": "stores", "stores": ["acme-1"]})
    assert issue(promos, cid, oid, store_id="acme-0").reason == "NOT_ELIGIBLE"
    assert issue(promos, cid, oid, store_id="acme-1").outcome == "issued"


def test_offer_eligible_at_one_brand_only(promos):
    add_stores(promos.campaigns.catalog, n=2, brand="Zeta")
    cid, oid = live_campaign(
        promos, targets={"cities": ["Shanghai"]}, eligible={"mode": "brand", "brand": "zeta"}
    )
    assert issue(promos, cid, oid, store_id="acme-0").reason == "NOT_ELIGIBLE"
    result = issue(promos, cid, oid, store_id="zeta-1")
    assert result.outcome == "issued" and result.coupon["brand"] == "zeta"


def test_membership_required_until_linked(promos):
    promos.memberships.create_program(ProgramIn(id="vip", name="VIP Club"))
    cid, oid = live_campaign(promos, membership_program="vip")
    assert issue(promos, cid, oid, "u1").reason == "MEMBERSHIP_REQUIRED"
    promos.memberships.link("u1", "vip", "VIP-0001")
    assert issue(promos, cid, oid, "u1").outcome == "issued"
    assert issue(promos, cid, oid, "u2").reason == "MEMBERSHIP_REQUIRED"
    assert refusals(promos, cid) == {"MEMBERSHIP_REQUIRED": 2}


def test_offer_of_an_unknown_program_is_refused(promos):
    cid, _ = live_campaign(promos)
    with pytest.raises(ValidationFailed) as info:
        promos.campaigns.create_offer(cid, _offer(membership_program="nope"), actor="m1")
    assert info.value.code == "unknown_program"


@pytest.mark.parametrize(
    "min_trust, trust, outcome",
    [
        (50, 49, "refused"),
        (50, 50, "issued"),
        (50, None, "issued"),
        (90, 89, "refused"),
        (0, 0, "issued"),
    ],
)
def test_untrusted_events_never_issue(promos, min_trust, trust, outcome):
    cid, oid = live_campaign(promos, min_trust=min_trust)
    result = issue(promos, cid, oid, channel="game", trust=trust, store_id="acme-0")
    assert result.outcome == outcome
    if outcome == "refused":
        assert result.reason == "UNTRUSTED"
        assert refusals(promos, cid) == {"UNTRUSTED": 1}
        assert offer_counters(promos, cid, oid)["issued"] == 0


def test_unknown_campaign_or_offer_raises(promos):
    cid, _ = live_campaign(promos)
    with pytest.raises(Refused) as info:
        issue(promos, cid, "o99")
    assert (info.value.code, info.value.status) == ("OFFER_NOT_FOUND", 404)
    with pytest.raises(Refused) as info:
        issue(promos, "999", "o1")
    assert (info.value.code, info.value.status) == ("CAMPAIGN_NOT_FOUND", 404)


# -- concurrency across processes --------------------------------------------------------------
def _issue_race(url, targets, t0, first, count, barrier, queue):
    r = redis_connect(url, decode_responses=True)
    promos = make_promotions(r, FrozenClock(t0))
    barrier.wait()
    outcomes = {cid: [] for cid, _ in targets}
    for i in range(first, first + count):
        for cid, oid in targets:  # interleaved, so every campaign is raced at once
            result = promos.issue(
                cid,
                oid,
                f"racer{i}",
                channel="manual",
                idempotency_key=f"race-{i}",
                store_id=f"acme-{i % 3}",
            )
            outcomes[cid].append((result.outcome, result.reason))
    r.close()
    queue.put(outcomes)


RACES = [  # (campaign budget, offer caps, the reason of the 150 refusals)
    ({}, {"total": 50}, "CAP_TOTAL_REACHED"),
    ({}, {"value_fen": 50 * 2000 + 1999}, "CAP_BUDGET_REACHED"),
    ({"value_fen": 50 * 2000}, {}, "CAP_BUDGET_REACHED"),
    ({"count": 50}, {}, "CAP_TOTAL_REACHED"),
]


def test_four_processes_never_over_issue(promos, redis_server, redis_client, clock):
    targets = [live_campaign(promos, budget=budget, caps=caps) for budget, caps, _ in RACES]
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(
            target=_issue_race,
            args=(redis_server, targets, clock.now(), 50 * n, 50, barrier, queue),
        )
        for n in range(4)
    ]
    for p in procs:
        p.start()
    replies = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for (cid, oid), (_, _, reason) in zip(targets, RACES, strict=True):
        outcomes = [o for reply in replies for o in reply[cid]]
        assert len(outcomes) == 200
        assert outcomes.count(("issued", None)) == 50, reason
        assert outcomes.count(("refused", reason)) == 150, reason
        assert offer_counters(promos, cid, oid) == {
            "issued": 50,
            "value_fen": 100_000,
            "redeemed": 0,
            "discount_fen": 0,
        }
        assert campaign_counters(promos, cid)["issued"] == 50
        issued = ledger_entries(redis_client, cid, "issue")
        assert len(issued) == 50 and len({e["coupon"] for e in issued}) == 50
        assert len({e["shopper"] for e in issued}) == 50
        assert redis_client.hlen(promo_keys.coupons(cid)) == 50
        assert refusals(promos, cid) == {reason: 150}


# -- notifier ----------------------------------------------------------------------------------
def test_notifier_hears_of_new_coupons_only(redis_client, clock):
    recorder = Recorder()
    promos = make_promotions(redis_client, clock, notifier=recorder)
    add_stores(promos.campaigns.catalog)
    cid, oid = live_campaign(promos, caps={"total": 1})
    result = issue(promos, cid, oid, "u7", key="once")
    assert recorder.sent == [("u7", result.coupon)]
    assert issue(promos, cid, oid, "u7", key="once").outcome == "existing"
    assert issue(promos, cid, oid, "u8").outcome == "refused"
    assert recorder.sent == [("u7", result.coupon)]


def test_a_failing_notifier_does_not_lose_the_coupon(redis_client, clock):
    class Broken:
        def coupon_issued(self, shopper_id, coupon):
            raise RuntimeError("socket gone")

    promos = make_promotions(redis_client, clock, notifier=Broken())
    add_stores(promos.campaigns.catalog)
    cid, oid = live_campaign(promos)
    result = issue(promos, cid, oid, "u7")
    assert result.outcome == "issued"
    assert promos.coupons.get(result.coupon["id"])["status"] == "issued"


# -- the wallet --------------------------------------------------------------------------------
def test_wallet_is_newest_first_and_pages_across_campaigns(promos, clock):
    one, o1 = live_campaign(promos)
    two, o2 = live_campaign(promos)
    expected = []
    for i in range(9):
        if i in (3, 6):
            clock.advance(0)  # same instant: ties are ordered too
        else:
            clock.advance(10)
        cid, oid = (one, o1) if i % 2 else (two, o2)
        expected.append(issue(promos, cid, oid, "u1").coupon["id"])
    issue(promos, one, o1, "someone-else")
    everything = promos.coupons.wallet("u1", limit=100)
    assert everything["next_cursor"] is None
    ids = [c["id"] for c in everything["items"]]
    assert sorted(ids) == sorted(expected)
    times = [c["issued_at"] for c in everything["items"]]
    assert times == sorted(times, reverse=True)
    for limit in (1, 2, 4):
        paged, cursor = [], None
        while True:
            page = promos.coupons.wallet("u1", cursor=cursor, limit=limit)
            assert len(page["items"]) <= limit
            paged += [c["id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert paged == ids  # no duplicates, no gaps, same order


def test_wallet_filters_by_status(promos, clock):
    cid, oid = live_campaign(promos)
    kept, used, dropped = (issue(promos, cid, oid, "u1").coupon for _ in range(3))
    promos.coupons.redeem(promos.codec.token(used["id"]), 10_000, "order-1", staff("acme-0"))
    promos.coupons.void(dropped["id"], MANAGER)
    by_status = {
        s: [c["id"] for c in promos.coupons.wallet("u1", status=s)["items"]]
        for s in ("issued", "redeemed", "voided", "expired")
    }
    assert by_status == {
        "issued": [kept["id"]],
        "redeemed": [used["id"]],
        "voided": [dropped["id"]],
        "expired": [],
    }
    page = promos.coupons.wallet("u1", status="issued", limit=1)
    assert [c["id"] for c in page["items"]] == [kept["id"]] and page["next_cursor"] is None


def test_wallet_applies_expiry_on_read_once(promos, redis_client, clock):
    cid, oid = live_campaign(promos, validity={"days": 1})
    coupon = issue(promos, cid, oid, "u1").coupon
    assert coupon["expires_at"] == T0 + DAY
    clock.set(T0 + DAY - 1)
    assert promos.coupons.wallet("u1")["items"][0]["status"] == "issued"
    clock.set(T0 + DAY)
    for _ in range(3):
        item = promos.coupons.wallet("u1")["items"][0]
        assert (item["status"], item["expired_at"]) == ("expired", T0 + DAY)
    assert promos.coupons.get(coupon["id"])["status"] == "expired"
    expired = ledger_entries(redis_client, cid, "expire")
    assert [(e["coupon"], e["actor"]) for e in expired] == [(coupon["id"], "clock")]
    assert promos.coupons.sweep() == 0


def test_owner_sees_token_and_code(promos):
    cid, oid = live_campaign(promos)
    coupon = issue(promos, cid, oid, "u1").coupon
    item = promos.coupons.wallet("u1")["items"][0]
    assert item["id"] == coupon["id"]
    assert promos.codec.verify(item["token"]).coupon_id == coupon["id"]
    assert promos.codec.verify(item["code"]).coupon_id == coupon["id"]
    assert "token" not in promos.coupons.present(coupon, owner=False)
    assert promos.coupons.owned("u1", coupon["id"])["id"] == coupon["id"]
    with pytest.raises(NotFound):
        promos.coupons.owned("u2", coupon["id"])


def test_invalid_wallet_cursor(promos):
    with pytest.raises(ValidationFailed) as info:
        promos.coupons.wallet("u1", cursor="garbage")
    assert info.value.code == "invalid_cursor"


# -- redemption --------------------------------------------------------------------------------
def _coupon(promos, shopper="u1", **offer):
    cid, oid = live_campaign(promos, **offer)
    coupon = issue(promos, cid, oid, shopper, store_id="acme-0").coupon
    return cid, oid, promos.coupons.present(coupon, owner=True)


@pytest.mark.parametrize(
    "offer, basket, discount, gift",
    [
        ({}, 10_000, 2000, None),
        ({}, 1500, 1500, None),  # never more than the basket
        (
            {"kind": "percent_off", "amount_off_fen": None, "percent_off": 15, "max_off_fen": 3000},
            10_000,
            1500,
            None,
        ),
        (
            {"kind": "percent_off", "amount_off_fen": None, "percent_off": 15, "max_off_fen": 3000},
            50_000,
            3000,
            None,
        ),
        (
            {"kind": "percent_off", "amount_off_fen": None, "percent_off": 15, "max_off_fen": 3000},
            99,
            14,
            None,
        ),
        (
            {
                "kind": "gift",
                "amount_off_fen": None,
                "gift_item": "Tote bag",
                "gift_value_fen": 500,
            },
            10_000,
            0,
            "Tote bag",
        ),
    ],
)
def test_preview_discount(promos, offer, basket, discount, gift):
    _, _, coupon = _coupon(promos, **offer)
    answer = promos.coupons.preview(coupon["token"], basket, staff("acme-1"))
    assert (
        answer["applies"],
        answer["reason"],
        answer["discount_fen"],
        answer["pay_fen"],
        answer["gift_item"],
    ) == (True, None, discount, basket - discount, gift)
    assert answer["coupon"]["id"] == coupon["id"]
    assert "shopper_id" not in answer["coupon"] and "source" not in answer["coupon"]
    assert promos.coupons.get(coupon["id"])["status"] == "issued"  # a preview changes nothing


def test_preview_minimum_spend(promos):
    _, _, coupon = _coupon(promos, min_spend_fen=5000)
    short = promos.coupons.preview(coupon["code"], 4999, staff("acme-0"))
    assert (short["applies"], short["reason"], short["discount_fen"], short["pay_fen"]) == (
        False,
        "MIN_SPEND_NOT_MET",
        0,
        4999,
    )
    assert promos.coupons.preview(coupon["code"], 5000, staff("acme-0"))["applies"] is True
    with pytest.raises(Refused) as info:
        promos.coupons.redeem(coupon["code"], 4999, "order-1", staff("acme-0"))
    assert info.value.code == "MIN_SPEND_NOT_MET"


def test_wrong_store(promos):
    add_stores(promos.campaigns.catalog, n=1, brand="Other")
    _, _, coupon = _coupon(promos, eligible={"mode": "stores", "stores": ["acme-0", "acme-2"]})
    for store in ("acme-1", "other-0"):
        answer = promos.coupons.preview(coupon["token"], 10_000, staff(store))
        assert (answer["applies"], answer["reason"]) == (False, "WRONG_STORE")
        with pytest.raises(Refused) as info:
            promos.coupons.redeem(coupon["token"], 10_000, "order-1", staff(store))
        assert (info.value.code, info.value.status) == ("WRONG_STORE", 403)
    assert promos.coupons.preview(coupon["token"], 10_000, staff("acme-2"))["applies"]


def test_preview_and_redeem_after_expiry(promos, redis_client, clock):
    cid, _, coupon = _coupon(promos, validity={"days": 2})
    clock.set(T0 + 2 * DAY)
    answer = promos.coupons.preview(coupon["token"], 10_000, staff("acme-0"))
    assert (answer["applies"], answer["reason"]) == (False, "COUPON_EXPIRED")
    assert answer["coupon"]["status"] == "expired"
    with pytest.raises(Refused) as info:
        promos.coupons.redeem(coupon["token"], 10_000, "order-1", staff("acme-0"))
    assert info.value.code == "COUPON_EXPIRED"
    assert len(ledger_entries(redis_client, cid, "expire")) == 1
    assert ledger_entries(redis_client, cid, "redeem") == []


def test_fixed_window_not_yet_valid(promos, clock):
    window = {"starts_at": T0 + DAY, "ends_at": T0 + 2 * DAY}
    _, _, coupon = _coupon(promos, validity=window)
    assert (coupon["valid_from"], coupon["expires_at"]) == (T0 + DAY, T0 + 2 * DAY)
    answer = promos.coupons.preview(coupon["code"], 10_000, staff("acme-0"))
    assert (answer["applies"], answer["reason"]) == (False, "NOT_YET_VALID")
    with pytest.raises(Refused) as info:
        promos.coupons.redeem(coupon["code"], 10_000, "order-1", staff("acme-0"))
    assert info.value.code == "NOT_YET_VALID"
    clock.set(T0 + DAY)
    done = promos.coupons.redeem(coupon["code"], 10_000, "order-1", staff("acme-0"))
    assert done["outcome"] == "redeemed"


@pytest.mark.parametrize("how", ["token", "code", "typed"])
def test_redeem_once_and_repeat_for_the_same_order(promos, redis_client, clock, how):
    cid, oid, coupon = _coupon(promos)
    code = {
        "token": coupon["token"],
        "code": coupon["code"],
        "typed": " " + coupon["code"].replace("-", " ").lower(),
    }[how]
    till = staff("acme-1", "cashier-7")
    clock.advance(120)
    done = promos.coupons.redeem(code, 12_000, "order-1", till)
    assert done["outcome"] == "redeemed" and done["discount_fen"] == 2000
    assert done["redemption"] == {
        "order_ref": "order-1",
        "store_id": "acme-1",
        "staff_id": "cashier-7",
        "at": T0 + 120,
        "basket_fen": 12_000,
        "discount_fen": 2000,
    }
    assert done["coupon"]["status"] == "redeemed"
    clock.advance(5)
    again = promos.coupons.redeem(code, 12_000, "order-1", till)
    assert again["outcome"] == "existing" and again["redemption"] == done["redemption"]
    redeemed = ledger_entries(redis_client, cid, "redeem")
    assert len(redeemed) == 1
    assert (
        redeemed[0]["coupon"],
        redeemed[0]["order_ref"],
        redeemed[0]["store"],
        redeemed[0]["actor"],
        redeemed[0]["discount_fen"],
    ) == (coupon["id"], "order-1", "acme-1", "staff:cashier-7", "2000")
    assert offer_counters(promos, cid, oid) == {
        "issued": 1,
        "value_fen": 2000,
        "redeemed": 1,
        "discount_fen": 2000,
    }
    assert campaign_counters(promos, cid)["redeemed"] == 1
    with pytest.raises(Refused) as info:
        promos.coupons.redeem(code, 12_000, "order-2", staff("acme-0"))
    assert info.value.code == "ALREADY_REDEEMED"
    assert info.value.details == {"store_id": "acme-1", "at": T0 + 120, "order_ref": "order-1"}
    assert len(ledger_entries(redis_client, cid, "redeem")) == 1
    assert promos.coupons.preview(code, 12_000, till)["reason"] == "ALREADY_REDEEMED"


def _forged_token(promos, coupon):
    return CouponCodec([("k2", b"a-forger-secret-key!")]).token(coupon["id"])


def _altered_token(promos, coupon):
    head, _, signature = coupon["token"].rpartition(".")
    cid, seq = coupon["id"].split("-")
    return head.replace(coupon["id"], f"{cid}-{int(seq) + 1}") + "." + signature


def _altered_code(promos, coupon):
    raw = coupon["code"].replace("-", "")
    return raw[:-2] + ("3" if raw[-2] != "3" else "4") + raw[-1]


@pytest.mark.parametrize("make", [_forged_token, _altered_token, _altered_code])
def test_forged_and_altered_codes_are_refused(promos, redis_client, make):
    cid, oid, coupon = _coupon(promos)
    issue(promos, cid, oid, "u2")  # the coupon an altered id would point at exists
    with pytest.raises(InvalidCode) as info:
        promos.coupons.redeem(make(promos, coupon), 10_000, "order-1", staff("acme-0"))
    assert info.value.code == "INVALID_CODE"
    with pytest.raises(InvalidCode):
        promos.coupons.preview(make(promos, coupon), 10_000, staff("acme-0"))
    assert ledger_entries(redis_client, cid, "redeem") == []


def test_genuine_code_of_a_missing_coupon_answers_like_a_forged_one(promos):
    """A right MAC on a coupon not issued yet must not tell the guesser so."""
    cid, _, _ = _coupon(promos)
    for ghost in (promos.codec.token(f"{cid}-999"), promos.codec.short_code(f"{cid}-999")):
        with pytest.raises(InvalidCode) as info:
            promos.coupons.redeem(ghost, 10_000, "order-1", staff("acme-0"))
        assert (info.value.code, info.value.field) == ("INVALID_CODE", "code")
        assert info.value.message == NO_SUCH_CODE


def test_void_redemption_within_the_window(promos, redis_client, clock):
    cid, oid, coupon = _coupon(promos)
    till = staff("acme-0")
    promos.coupons.redeem(coupon["token"], 10_000, "order-1", till)
    clock.advance(3600)
    undone = promos.coupons.void_redemption(coupon["id"], "order-1", till)
    assert undone["status"] == "issued" and "redemption" not in undone
    assert undone["voided_redemptions"] == 1
    assert offer_counters(promos, cid, oid) == {
        "issued": 1,
        "value_fen": 2000,
        "redeemed": 0,
        "discount_fen": 0,
    }
    assert campaign_counters(promos, cid)["discount_fen"] == 0
    entry = ledger_entries(redis_client, cid, "void_redemption")
    assert [(e["coupon"], e["order_ref"], e["discount_fen"]) for e in entry] == [
        (coupon["id"], "order-1", "2000")
    ]
    done = promos.coupons.redeem(coupon["token"], 8_000, "order-2", till)
    assert done["outcome"] == "redeemed" and done["redemption"]["order_ref"] == "order-2"
    assert offer_counters(promos, cid, oid)["redeemed"] == 1
    assert promos.reports.analytics(cid)["totals"]["redeemed"] == 1


def test_void_redemption_window_edges(redis_client, clock):
    promos = make_promotions(redis_client, clock, void_window_s=3600)
    add_stores(promos.campaigns.catalog)
    _, _, coupon = _coupon(promos)
    till = staff("acme-0")
    for order in ("order-1", "order-2"):
        promos.coupons.redeem(coupon["token"], 10_000, order, till)
        clock.advance(3600)
        if order == "order-1":
            assert promos.coupons.void_redemption(coupon["id"], order, till)["status"] == "issued"
    clock.advance(1)
    with pytest.raises(Refused) as info:
        promos.coupons.void_redemption(coupon["id"], "order-2", till)
    assert info.value.code == "VOID_WINDOW_PASSED"
    assert promos.coupons.get(coupon["id"])["status"] == "redeemed"


def test_void_redemption_refusals(promos):
    _, _, coupon = _coupon(promos)
    with pytest.raises(Refused) as info:
        promos.coupons.void_redemption(coupon["id"], None, MANAGER)
    assert info.value.code == "NOT_REDEEMED"
    promos.coupons.redeem(coupon["token"], 10_000, "order-1", staff("acme-0"))
    with pytest.raises(Forbidden) as denied:
        promos.coupons.void_redemption(coupon["id"], "order-1", staff("acme-1"))
    assert denied.value.code == "not_your_store"
    with pytest.raises(Refused) as info:
        promos.coupons.void_redemption(coupon["id"], "order-9", staff("acme-0"))
    assert info.value.code == "ORDER_MISMATCH"
    # A manager may void any store's redemption, without naming the order.
    assert promos.coupons.void_redemption(coupon["id"], None, MANAGER)["status"] == "issued"


def test_void_redemption_past_expiry_expires_the_coupon(promos, redis_client, clock):
    cid, _, coupon = _coupon(promos, validity={"days": 1})
    till = staff("acme-0")
    promos.coupons.redeem(coupon["token"], 10_000, "order-1", till)
    clock.set(T0 + DAY + 60)
    assert promos.coupons.get(coupon["id"])["status"] == "redeemed"  # redeemed never expires
    undone = promos.coupons.void_redemption(coupon["id"], "order-1", till)
    assert (undone["status"], undone["expired_at"]) == ("expired", T0 + DAY + 60)
    assert [e["type"] for e in ledger_entries(redis_client, cid)][-3:] == [
        "redeem",
        "void_redemption",
        "expire",
    ]
    with pytest.raises(Refused) as info:
        promos.coupons.redeem(coupon["token"], 10_000, "order-2", till)
    assert info.value.code == "COUPON_EXPIRED"


# -- voiding an unredeemed coupon --------------------------------------------------------------
def test_void_releases_the_caps(promos, redis_client):
    cid, oid = live_campaign(promos, caps={"total": 2, "per_shopper": 1, "per_store_day": 1})
    first = issue(promos, cid, oid, "u1", store_id="acme-0").coupon
    issue(promos, cid, oid, "u2", store_id="acme-1")
    assert issue(promos, cid, oid, "u3", store_id="acme-2").reason == "CAP_TOTAL_REACHED"
    voided = promos.coupons.void(first["id"], MANAGER, reason="issued by mistake")
    assert (voided["status"], voided["void_reason"]) == ("voided", "issued by mistake")
    assert offer_counters(promos, cid, oid)["issued"] == 1
    # The total, the shopper's and the store's day cap are all free again.
    assert issue(promos, cid, oid, "u1", store_id="acme-0").outcome == "issued"
    assert issue(promos, cid, oid, "u3", store_id="acme-2").reason == "CAP_TOTAL_REACHED"
    entries = ledger_entries(redis_client, cid, "void")
    assert [(e["coupon"], e["reason"], e["actor"]) for e in entries] == [
        (first["id"], "issued by mistake", "marketer:m1")
    ]
    with pytest.raises(Refused) as info:
        promos.coupons.redeem(promos.codec.token(first["id"]), 10_000, "o-1", staff("acme-0"))
    assert info.value.code == "COUPON_VOIDED"
    assert promos.reports.analytics(cid)["funnel"]["coupons"] == 2


def test_void_refuses_a_redeemed_coupon(promos):
    _, _, coupon = _coupon(promos)
    promos.coupons.redeem(coupon["token"], 10_000, "order-1", staff("acme-0"))
    with pytest.raises(Refused) as info:
        promos.coupons.void(coupon["id"], MANAGER)
    assert info.value.code == "NOT_VOIDABLE"
    assert info.value.details == {"status": "redeemed"}
    with pytest.raises(Refused):
        promos.coupons.void(coupon["id"], MANAGER)


def test_void_twice_is_refused(promos):
    _, _, coupon = _coupon(promos)
    promos.coupons.void(coupon["id"], MANAGER)
    with pytest.raises(Refused) as info:
        promos.coupons.void(coupon["id"], MANAGER)
    assert (info.value.code, info.value.details) == ("NOT_VOIDABLE", {"status": "voided"})


# -- throttling invalid codes ------------------------------------------------------------------
@pytest.fixture
def strict(redis_client, clock):
    promotions = make_promotions(redis_client, clock, invalid_max=3, invalid_window_s=600)
    add_stores(promotions.campaigns.catalog)
    return promotions


def test_too_many_invalid_codes_from_one_staff_member(strict):
    _, _, coupon = _coupon(strict)
    till = staff("acme-0", "cashier-1")
    for bad in ("2222-2222-22", "FF1.k2.1-1.nope", "not a code"):
        with pytest.raises(InvalidCode):
            strict.coupons.redeem(bad, 10_000, "order-1", till)
    with pytest.raises(RateLimited) as info:
        strict.coupons.redeem(coupon["token"], 10_000, "order-1", till)
    assert info.value.code == "too_many_invalid_codes" and info.value.status == 429
    # The window slides from the first invalid code, a moment ago (the end of the window is
    # tested with a short window in test_throttle.py: the limiter runs on wall-clock time).
    assert 600 - 30 <= info.value.retry_after <= 600
    with pytest.raises(RateLimited):
        strict.coupons.preview(coupon["token"], 10_000, till)
    # Staff of another store are not held up.
    assert strict.coupons.preview(coupon["token"], 10_000, staff("acme-1"))["applies"]


def test_invalid_attempts_on_a_coupon_throttle_its_shopper_everywhere(strict):
    _, _, coupon = _coupon(strict, "victim")
    cid, oid = live_campaign(strict)
    other = strict.coupons.present(issue(strict, cid, oid, "bystander").coupon, owner=True)
    strict.coupons.redeem(coupon["code"], 10_000, "order-0", staff("acme-0", "cashier-r"))
    for n in range(3):
        answer = strict.coupons.preview(coupon["code"], 10_000, staff("acme-1", f"cashier-{n}"))
        assert answer["reason"] == "ALREADY_REDEEMED"
    with pytest.raises(RateLimited) as info:
        strict.coupons.preview(coupon["token"], 10_000, staff("acme-2", "fresh"))
    assert info.value.code == "too_many_invalid_codes"
    # Typed, the short code answers like a wrong one: a guesser does not learn it exists.
    with pytest.raises(InvalidCode) as hidden:
        strict.coupons.preview(coupon["code"], 10_000, staff("acme-2", "fresh"))
    assert hidden.value.message == NO_SUCH_CODE
    # The fresh till still serves other shoppers' coupons.
    done = strict.coupons.redeem(other["code"], 10_000, "order-1", staff("acme-2", "fresh"))
    assert done["outcome"] == "redeemed"


def test_a_basket_below_the_minimum_spend_is_not_suspicious(strict):
    _, _, coupon = _coupon(strict, "shopper", min_spend_fen=5000)
    till = staff("acme-0", "cashier")
    for _ in range(5):
        assert strict.coupons.preview(coupon["code"], 100, till)["reason"] == "MIN_SPEND_NOT_MET"
    assert strict.coupons.preview(coupon["code"], 6_000, till)["applies"] is True


# -- the expiry sweeper ------------------------------------------------------------------------
def test_sweep_expires_due_coupons_across_campaigns(promos, redis_client, clock):
    one, o1 = live_campaign(promos, validity={"days": 1})
    two, o2 = live_campaign(promos, validity={"days": 1})
    three, o3 = live_campaign(promos, validity={"days": 3})
    due = [issue(promos, one, o1, f"u{i}").coupon["id"] for i in range(3)]
    due += [issue(promos, two, o2, f"u{i}").coupon["id"] for i in range(2)]
    used = promos.coupons.present(issue(promos, two, o2, "u9").coupon, owner=True)
    promos.coupons.redeem(used["token"], 10_000, "order-1", staff("acme-0"))
    later = issue(promos, three, o3, "u1").coupon["id"]
    clock.set(T0 + DAY - 1)
    assert promos.coupons.sweep() == 0
    clock.set(T0 + DAY)
    assert promos.coupons.sweep() == 5
    assert {c: promos.coupons.get(c)["status"] for c in due} == dict.fromkeys(due, "expired")
    assert promos.coupons.get(used["id"])["status"] == "redeemed"
    assert promos.coupons.get(later)["status"] == "issued"
    for cid, count in ((one, 3), (two, 2), (three, 0)):
        assert len(ledger_entries(redis_client, cid, "expire")) == count
    assert promos.coupons.sweep() == 0
    assert promos.tick()["expired"] == 0
    assert len(ledger_entries(redis_client, one, "expire")) == 3
    assert promos.reports.analytics(one)["totals"]["expired"] == 3
    clock.set(T0 + 3 * DAY)
    assert promos.tick()["expired"] == 1


def test_sweep_works_in_batches(promos, redis_client, clock):
    cid, oid = live_campaign(promos, validity={"days": 1})
    for i in range(25):
        issue(promos, cid, oid, f"u{i}")
    clock.set(T0 + DAY)
    assert promos.coupons.sweep(limit=7) == 25
    assert len(ledger_entries(redis_client, cid, "expire")) == 25


# -- the ledger and analytics ------------------------------------------------------------------
def test_ledger_pages_every_entry_once_in_order(promos, redis_client, clock):
    cid, oid = live_campaign(promos)
    for i in range(13):
        clock.advance(1)
        coupon = issue(promos, cid, oid, f"u{i}").coupon
        if i % 4 == 0:
            code = promos.codec.token(coupon["id"])
            promos.coupons.redeem(code, 10_000, f"order-{i}", staff("acme-0"))
    every = [entry_id for entry_id, _ in redis_client.xrange(promo_keys.ledger(cid))]
    assert len(every) == 2 + 13 + 4
    for kind, limit in [
        (None, 1),
        (None, 4),
        (None, 19),
        (None, 100),
        ("issue", 5),
        ("redeem", 2),
        ("redeem", 4),
        ("status", 1),
        ("void", 3),
    ]:
        seen, after = [], None
        while True:
            page = promos.reports.ledger(cid, after=after, limit=limit, kind=kind)
            assert len(page["items"]) <= limit
            seen += page["items"]
            after = page["next_cursor"]
            if after is None:
                break
            assert page["items"]
        wanted = [
            i
            for i, f in redis_client.xrange(promo_keys.ledger(cid))
            if kind is None or f["type"] == kind
        ]
        assert [e["id"] for e in seen] == wanted, (kind, limit)
    first = promos.reports.ledger(cid, limit=3)["items"][2]
    assert (first["type"], first["offer"], first["value_fen"], first["at"]) == (
        "issue",
        oid,
        2000,
        T0 + 1,
    )
    with pytest.raises(ValidationFailed):
        promos.reports.ledger(cid, after="nope")


def _scenario(promos, clock):
    """Two stores: 3 coupons at acme-0 (2 redeemed), 2 at acme-1 (1 redeemed), 1 game coupon."""
    cid, oid = live_campaign(promos)
    coupons = {}
    for i, store in enumerate(["acme-0", "acme-0", "acme-0", "acme-1", "acme-1"]):
        coupons[i] = promos.coupons.present(
            issue(promos, cid, oid, f"u{i}", store_id=store).coupon, owner=True
        )
    for i, store, basket in ((0, "acme-0", 5000), (1, "acme-0", 1200), (3, "acme-1", 9000)):
        promos.coupons.redeem(coupons[i]["token"], basket, f"order-{i}", staff(store))
    return cid, oid


def test_analytics_totals_and_groups(promos, clock):
    cid, oid = _scenario(promos, clock)
    clock.advance(3600)  # the next hour: a game coupon, voided
    game = issue(promos, cid, oid, "u9", channel="game", store_id="acme-1").coupon
    promos.coupons.void(game["id"], MANAGER)
    report = promos.reports.analytics(cid)
    assert report["totals"] == {
        "visits_enter": 0,
        "visits_dwell": 0,
        "issued": 6,
        "value_fen": 12_000,
        "redeemed": 3,
        "discount_fen": 5200,
        "voided": 1,
        "expired": 0,
        "redemption_rate": 0.6,
    }
    assert report["funnel"] == {
        "visits": 0,
        "visitors": 0,
        "coupons_from_visits": 0,
        "coupons": 5,
        "redeemed": 3,
        "visit_to_coupon": None,
        "coupon_to_redemption": 0.6,
    }
    by_store = {g["store"]: g for g in promos.reports.analytics(cid, group="store")["groups"]}
    assert {s: (g["issued"], g["redeemed"], g["discount_fen"]) for s, g in by_store.items()} == {
        "acme-0": (3, 2, 3200),
        "acme-1": (3, 1, 2000),
    }
    assert by_store["acme-0"]["redemption_rate"] == round(2 / 3, 4)
    assert by_store["acme-1"]["redemption_rate"] == 0.5
    by_offer = promos.reports.analytics(cid, group="offer")["groups"]
    assert [(g["offer"], g["issued"]) for g in by_offer] == [(oid, 6)]
    by_hour = {
        g["hour"]: g["issued"] for g in promos.reports.analytics(cid, group="hour")["groups"]
    }
    assert by_hour == {"2026-05-29T04": 5, "2026-05-29T05": 1}
    by_channel = {
        g["channel"]: (g["issued"], g["voided"])
        for g in promos.reports.analytics(cid, group="channel")["groups"]
    }
    assert by_channel == {"manual": (5, 0), "game": (1, 1)}


def test_csv_export(promos, clock):
    cid, oid = _scenario(promos, clock)
    text = promos.reports.csv(cid)
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    records = {(r["store_id"]): r for r in csv.DictReader(io.StringIO(text))}
    assert len(records) == 2
    zero, one = records["acme-0"], records["acme-1"]
    assert (zero["hour"], zero["offer_id"], zero["channel"]) == ("2026-05-29T04", oid, "manual")
    assert (
        zero["issued"],
        zero["value_fen"],
        zero["redeemed"],
        zero["discount_fen"],
        zero["voided"],
        zero["redemption_rate"],
    ) == ("3", "6000", "2", "3200", "0", "0.6667")
    assert (
        one["issued"],
        one["value_fen"],
        one["redeemed"],
        one["discount_fen"],
        one["redemption_rate"],
    ) == ("2", "4000", "1", "2000", "0.5")


# -- memberships -------------------------------------------------------------------------------
def test_membership_programs_and_links(promos):
    ms = promos.memberships
    ms.create_program(ProgramIn(id="vip", name="VIP Club", number_pattern=r"^\d{6}$"))
    ms.create_program(ProgramIn(id="air", name="Air Miles"))
    assert [p["id"] for p in ms.programs()] == ["air", "vip"]
    with pytest.raises(Conflict) as info:
        ms.create_program(ProgramIn(id="vip", name="Again"))
    assert info.value.code == "program_exists"
    assert ms.link("u1", "vip", " 123456 ") == {
        "program": "vip",
        "program_name": "VIP Club",
        "member_number": "123456",
    }
    assert ms.link("u1", "vip", "123456")["member_number"] == "123456"  # a repeat is fine
    with pytest.raises(Conflict) as info:
        ms.link("u2", "vip", "123456")
    assert info.value.code == "member_number_taken"
    assert ms.list("u2") == []
    ms.link("u1", "vip", "654321")  # a new number frees the old one
    assert ms.link("u2", "vip", "123456")["member_number"] == "123456"
    with pytest.raises(Conflict):
        ms.link("u2", "vip", "654321")
    ms.link("u1", "air", "AM-0001")
    assert ms.list("u1") == [
        {"program": "air", "program_name": "Air Miles", "member_number": "AM-0001"},
        {"program": "vip", "program_name": "VIP Club", "member_number": "654321"},
    ]
    ms.unlink("u1", "vip")
    assert ms.has("u1", "vip") is False and ms.has("u1", "air") is True
    assert ms.link("u3", "vip", "654321")["member_number"] == "654321"
    with pytest.raises(NotFound) as missing:
        ms.unlink("u1", "vip")
    assert missing.value.code == "membership_not_found"
    ms.erase("u2")
    assert ms.list("u2") == []
    assert ms.link("u4", "vip", "123456")["member_number"] == "123456"


@pytest.mark.parametrize("number", ["12345", "1234567", "12a456", "", "123 456"])
def test_member_number_must_match_the_programs_pattern(promos, number):
    promos.memberships.create_program(ProgramIn(id="vip", name="VIP", number_pattern=r"^\d{6}$"))
    with pytest.raises(ValidationFailed) as info:
        promos.memberships.link("u1", "vip", number)
    assert info.value.code == "invalid_member_number"
    assert promos.memberships.list("u1") == []


def test_link_to_an_unknown_program(promos):
    with pytest.raises(NotFound) as info:
        promos.memberships.link("u1", "nope", "123456")
    assert info.value.code == "program_not_found"


# -- erasure -----------------------------------------------------------------------------------
def test_erase_removes_memberships_and_the_wallet_index(promos, redis_client):
    promos.memberships.create_program(ProgramIn(id="vip", name="VIP"))
    promos.memberships.link("u1", "vip", "VIP-42")
    one, o1 = live_campaign(promos)
    two, o2 = live_campaign(promos)
    kept = [issue(promos, one, o1, "u1").coupon["id"], issue(promos, two, o2, "u1").coupon["id"]]
    issue(promos, one, o1, "u2")
    promos.erase("u1")
    assert promos.memberships.list("u1") == []
    assert promos.coupons.wallet("u1") == {"items": [], "next_cursor": None}
    assert (
        redis_client.exists(
            promo_keys.shopper_campaigns("u1"),
            promo_keys.wallet(one, "u1"),
            promo_keys.wallet(two, "u1"),
            promo_keys.shopper_memberships("u1"),
        )
        == 0
    )
    assert promos.memberships.link("u9", "vip", "VIP-42")["member_number"] == "VIP-42"
    # The books keep the coupons under the opaque id; other shoppers are untouched.
    assert [promos.coupons.get(c)["status"] for c in kept] == ["issued", "issued"]
    assert len(ledger_entries(redis_client, one, "issue")) == 2
    assert len(promos.coupons.wallet("u2")["items"]) == 1


def test_coupon_records_are_json(promos, redis_client):
    cid, oid = live_campaign(promos)
    coupon = issue(promos, cid, oid, "u1", store_id="acme-0").coupon
    seq = coupon["id"].split("-")[1]
    state = json.loads(redis_client.hget(promo_keys.state(cid), seq))
    assert (state["status"], state["offer_id"], state["store_id"]) == ("issued", oid, "acme-0")
    assert coupon["title"] == "¥20 off" and coupon["currency"] == "CNY"
