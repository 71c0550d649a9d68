"""Demo data: about 5,000 stores over 200 cities, one account for every role, and a live
coupon campaign on East Nanjing Road."""

from __future__ import annotations

from flask import Flask

from core.errors import NotFound
from game.models import GameConfigIn
from geo.demo import generate_stores
from geo.stores import Progress
from promotions.models import CampaignIn, OfferIn, ProgramIn

DEMO_PASSWORD = "footfall-demo"
DEMO_STAFF_STORE = "st-00064"
DEMO_CAMPAIGN_KEY = "demo:campaign"
DEMO_ACCOUNTS = (
    ("shopper@demo.footfall.test", "shopper", None),
    ("staff@demo.footfall.test", "staff", "st-00001"),
    ("marketer@demo.footfall.test", "marketer", None),
    ("host@demo.footfall.test", "host", None),
    ("admin@demo.footfall.test", "admin", None),
)


def seed_demo(app: Flask, *, stores: int = 5000, progress: Progress | None = None) -> dict:
    """Load the demo stores and accounts unless they are there already (`progress` is told
    of the store import, as StoreCatalog.import_rows tells it)."""
    catalog = app.extensions["stores"]
    accounts = app.extensions["accounts"]
    written = 0
    generated = generate_stores(stores)
    if not catalog.exists(generated[-1]["id"]):
        report = catalog.import_rows(
            [(f"store {i}", s) for i, s in enumerate(generated)], partial=False, progress=progress
        )
        written = report.written
        if report.errors:
            raise RuntimeError(f"demo stores failed validation: {report.errors[:3]}")
    nanjing = [s["id"] for s in generated if "East Nanjing Road" in s["address"]]
    # Staff serve Lantern Street Snacks on East Nanjing Road (the README's walk-through).
    staff_store = DEMO_STAFF_STORE if DEMO_STAFF_STORE in nanjing else nanjing[0]
    created = []
    for email, role, store in DEMO_ACCOUNTS:
        if accounts.find_by_email(email) is None:
            accounts.create_user(
                email, DEMO_PASSWORD, role, store_id=staff_store if store else None
            )
            created.append(email)
    shopper = accounts.find_by_email(DEMO_ACCOUNTS[0][0])
    app.extensions["geo"].set_consent(shopper["id"], True)
    campaign = seed_campaign(app, nanjing)
    seed_game(app, campaign["id"])
    stream = seed_stream(app, campaign["id"])
    return {
        "stores_written": written,
        "stores_total": len(generated),
        "accounts_created": created,
        "staff_store": staff_store,
        "campaign": campaign,
        "stream": stream,
    }


DEMO_SPECIES = (
    ("lantern-cat", "Lantern Cat", "common", 30),
    ("dumpling-pup", "Dumpling Pup", "common", 30),
    ("paper-crane", "Paper Crane", "common", 20),
    ("jade-rabbit", "Jade Rabbit", "rare", 8),
    ("silk-fox", "Silk Fox", "rare", 6),
    ("golden-carp", "Golden Carp", "epic", 3),
    ("thunder-qilin", "Thunder Qilin", "epic", 1.5),
    ("vermilion-phoenix", "Vermilion Phoenix", "legendary", 1),
)


DEMO_PRODUCTS = (
    ("Silk scarf, festival print", 19_900, (176, 38, 54)),
    ("Wool coat, camel", 129_900, (193, 154, 107)),
    ("Tea gift box", 8_800, (46, 110, 74)),
)


def seed_stream(app: Flask, campaign_id: str) -> dict:
    """Schedule the demo stream (once) with three products and the campaign's offers to drop
    (scheduled by a marketer with the campaign, which grants the stream the campaign's offers)."""
    import io

    from PIL import Image, ImageDraw

    from live.images import process_product_image
    from live.models import ProductIn, StreamIn
    from live.streams import Caller

    streams = app.extensions["streams"]
    for stream in streams.list(status="scheduled", limit=100)["items"]:
        if stream.get("campaign_id") == campaign_id:
            # Data seeded before grants existed gets the grant its drops need (a no-op after).
            streams.grant(stream["id"], campaign_id, "marketer:demo")
            return stream
    host = app.extensions["accounts"].find_by_email("host@demo.footfall.test")
    marketer = Caller("demo", "marketer")
    stream = streams.create(
        StreamIn(
            title="Festival picks on East Nanjing Road",
            brand="Bailian",
            description="Autumn favourites from the street, with flash coupons for viewers.",
            playback_url="https://video.example.com/footfall/demo/index.m3u8",
            hosts=[host["id"]],
            starts_at=app.extensions["clock"].now() + 3600,
            campaign_id=campaign_id,
        ),
        marketer,
    )
    for name, price, color in DEMO_PRODUCTS:
        picture = Image.new("RGB", (800, 800), color)
        ImageDraw.Draw(picture).ellipse((200, 200, 600, 600), fill=(250, 245, 235))
        out = io.BytesIO()
        picture.save(out, "PNG")
        streams.add_product(
            stream["id"],
            ProductIn(name=name, price_fen=price),
            marketer,
            image=process_product_image(out.getvalue()),
        )
    return streams.get(stream["id"])


def seed_game(app: Flask, campaign_id: str) -> dict:
    """Give the demo campaign its game (once): eight species, rarer ones in the stores."""
    game = app.extensions["game"]
    try:
        return game.config(campaign_id)
    except NotFound:
        pass
    offers = app.extensions["promotions"].campaigns.list_offers(campaign_id)
    bonus = next((o for o in offers if "game" in o["channels"]), None)
    return game.configure(
        campaign_id,
        GameConfigIn(
            species=[{"id": i, "name": n, "rarity": r, "weight": w} for i, n, r, w in DEMO_SPECIES],
            density_per_cell=0.6,
            store_density=0.5,
            store_rarity_boost=5.0,
            offer_id=bonus["id"] if bonus else None,
            seed="nanjing-road-festival",
        ),
    )


def seed_campaign(app: Flask, store_ids: list[str]) -> dict:
    """Create the live East Nanjing Road campaign (once; again when the last one ended)."""
    promos = app.extensions["promotions"]
    r = app.extensions["redis"]
    cid = r.get(DEMO_CAMPAIGN_KEY)
    if cid:
        campaign = promos.campaigns.get(cid)
        if campaign["status"] in ("scheduled", "live"):
            return campaign
    now = app.extensions["clock"].now()
    if not r.hexists("promo:programs", "bailian-club"):
        promos.memberships.create_program(
            ProgramIn(id="bailian-club", name="Bailian Club", number_pattern=r"^BL[0-9]{8}$")
        )
    campaign = promos.campaigns.create(
        CampaignIn(
            name="Nanjing Road Festival",
            starts_at=now - 3600,
            ends_at=now + 30 * 86_400,
            timezone="Asia/Shanghai",
            targets={"stores": store_ids},
            budget={"count": 100_000, "value_fen": 200_000_000},
        ),
        actor="demo",
    )
    cid = campaign["id"]
    promos.campaigns.create_offer(
        cid,
        OfferIn(
            name="Walk-in: ¥20 off ¥100",
            kind="amount_off",
            amount_off_fen=2_000,
            min_spend_fen=10_000,
            validity={"days": 7},
            channels=["visit", "manual"],
            visit_trigger="enter",
            caps={"total": 50_000, "per_shopper_day": 3, "per_store_day": 500},
        ),
        actor="demo",
    )
    promos.campaigns.create_offer(
        cid,
        OfferIn(
            name="Stay a while: 15% off",
            kind="percent_off",
            percent_off=15,
            max_off_fen=5_000,
            validity={"days": 3},
            channels=["visit"],
            visit_trigger="dwell",
            caps={"total": 20_000, "per_shopper_day": 1},
        ),
        actor="demo",
    )
    promos.campaigns.create_offer(
        cid,
        OfferIn(
            name="Bailian Club gift",
            kind="gift",
            gift_item="festival tote bag",
            gift_value_fen=1_500,
            channels=["manual"],
            membership_program="bailian-club",
            caps={"total": 1_000, "per_shopper": 1},
        ),
        actor="demo",
    )
    promos.campaigns.create_offer(
        cid,
        OfferIn(
            name="Catch bonus: ¥5 off",
            kind="amount_off",
            amount_off_fen=500,
            validity={"days": 3},
            channels=["game"],
            caps={"total": 100_000, "per_shopper_day": 5},
        ),
        actor="demo",
    )
    # The one offer the demo stream's host drops (walk-in coupons would run into their own
    # daily cap for a shopper who walked the street first).
    promos.campaigns.create_offer(
        cid,
        OfferIn(
            name="Live flash: ¥30 off ¥150",
            kind="amount_off",
            amount_off_fen=3_000,
            min_spend_fen=15_000,
            validity={"days": 3},
            channels=["live_drop"],
            caps={"total": 10_000, "per_shopper_day": 1},
        ),
        actor="demo",
    )
    r.set(DEMO_CAMPAIGN_KEY, cid)
    return promos.campaigns.transition(cid, "scheduled", actor="demo")
