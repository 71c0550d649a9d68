"""The marketer console's campaigns in a real Chromium: a campaign made with its window in a
chosen time zone and targets picked on the map and from lists, offers with every cap, the
status moves, the coupon card preview in two languages, and the game set-up.

Stores and (where a test does not make its own) campaigns are made through the REST API, as
tests/test_browser_till.py does; what the console saved is read back from the API.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect

from tests.browser import (  # noqa: F401 - fixtures, passed to tests by name
    DESKTOP,
    PHONE,
    assert_accessible,
    assert_glyphs_render,
    open_page,
    web,
)
from tests.test_browser_consoles import sign_in

ZONE = "America/New_York"  # not the browser's zone (UTC here) nor the default (Shanghai)


class Desk:
    """A marketer with three stores, driving the API over HTTP."""

    def __init__(self, web):
        self.web = web
        self.user = web.user("marketer")
        self.headers = web.login(self.user)
        tag = uuid.uuid4().hex[:6]
        self.stores = {}
        for n, (city, brand) in enumerate(
            [("Shanghai", "Acme"), ("Shanghai", "Beta"), ("Hangzhou", "Acme")]
        ):
            sid = f"cmp-{tag}-{n}"
            self.stores[sid] = self.call(
                "post",
                "/api/stores",
                {
                    "id": sid,
                    "name": f"Store {n}",
                    "brand": brand,
                    "city": city,
                    "lat": 31.2300 + 0.008 * n,
                    "lon": 121.4700 + 0.008 * n,
                    "fence": {"type": "circle", "radius_m": 80},
                },
                201,
            )
        self.ids = list(self.stores)

    def call(self, method, path, body=None, status=200):
        response = requests.request(
            method, self.web.url + path, json=body, headers=self.headers, timeout=5
        )
        assert response.status_code == status, response.text
        return response.json()

    def campaign(self, name="Console campaign", **extra) -> dict:
        now = int(time.time())  # the server's real clock: the window holds now
        body = {
            "name": name,
            "starts_at": now - 3600,
            "ends_at": now + 30 * 86_400,
            "targets": {"stores": self.ids[:2]},
            **extra,
        }
        return self.call("post", "/api/campaigns", body, 201)

    def offer(self, cid, **extra) -> dict:
        body = {"name": "20 off", "kind": "amount_off", "amount_off_fen": 2000, **extra}
        return self.call("post", f"/api/campaigns/{cid}/offers", body, 201)


@pytest.fixture(scope="module")
def desk(web):
    return Desk(web)


def console(open_page, desk, path, **kwargs):
    page = open_page(f"/console/{path}", **kwargs)
    sign_in(page, desk.user["email"])
    return page


def wall_clock(seconds: float, zone: str) -> str:
    return datetime.fromtimestamp(seconds, ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def test_a_campaign_is_made_in_a_time_zone_with_targets_from_the_map_and_a_list(
    open_page, web, desk
):
    page = console(open_page, desk, "#campaigns")
    page.get_by_role("link", name="New campaign").click()
    expect(page.get_by_role("heading", name="New campaign", level=2)).to_be_visible()
    form = page.locator("#campaign-form")
    form.get_by_label("Name", exact=True).fill("Double 11 · NYC time")
    form.get_by_label("Time zone").select_option(ZONE)
    starts = (int(time.time()) // 60) * 60 - 3600
    ends = starts + 30 * 86_400
    form.get_by_label("Starts").fill(wall_clock(starts, ZONE))
    form.get_by_label("Ends").fill(wall_clock(ends, ZONE))
    expect(form.get_by_text(f"Times are in {ZONE}.")).to_be_visible()
    form.get_by_label("Money budget (¥)").fill("1,000.50")
    # Targets: a city from its list, a store by clicking its marker on the map.
    form.locator("#pick-targets-cities").get_by_label("Hangzhou").check()
    marker = page.locator(f'.pick-marker[data-store-id="{desk.ids[1]}"]')
    marker.click()
    expect(marker).to_have_attribute("aria-pressed", "true")
    expect(
        form.locator("#pick-targets-stores").get_by_label(f"Store 1 ({desk.ids[1]})", exact=False)
    ).to_be_checked()
    # The store in Hangzhou is covered by the city, so marked as such.
    covered = page.locator(f'.pick-marker[data-store-id="{desk.ids[2]}"]')
    expect(covered).to_have_class(re.compile(r"\bis-covered\b"))
    expect(covered).to_have_attribute("aria-pressed", "false")
    # The keyboard alternative: a store ticked in the list is highlighted on the map too, and a
    # focused marker toggles with Enter.
    store0 = form.locator("#pick-targets-stores").get_by_label(
        f"Store 0 ({desk.ids[0]})", exact=False
    )
    store0.focus()
    page.keyboard.press("Space")
    first = page.locator(f'.pick-marker[data-store-id="{desk.ids[0]}"]')
    expect(first).to_have_attribute("aria-pressed", "true")
    first.focus()
    page.keyboard.press("Enter")
    expect(first).to_have_attribute("aria-pressed", "false")
    expect(store0).not_to_be_checked()
    form.get_by_role("button", name="Create campaign").click()

    expect(page).to_have_url(re.compile(r"/console/#campaigns/\d+$"))
    expect(page.locator("#campaign-status")).to_contain_text("Draft")
    cid = page.url.rsplit("/", 1)[-1]
    saved = desk.call("get", f"/api/campaigns/{cid}")
    assert (saved["starts_at"], saved["ends_at"], saved["timezone"]) == (starts, ends, ZONE)
    assert saved["targets"] == {"cities": ["Hangzhou"], "brands": [], "stores": [desk.ids[1]]}
    assert saved["budget"] == {"value_fen": 100_050, "count": None}
    # Shown back in the campaign's zone.
    expect(page.locator("#campaign-form").get_by_label("Starts")).to_have_value(
        wall_clock(starts, ZONE)
    )
    expect(page.locator("#campaign-window")).to_contain_text(ZONE)

    # A bad window: the server's message next to the end field; nothing changes.
    form = page.locator("#campaign-form")
    form.get_by_label("Ends").fill(wall_clock(starts - 86_400, ZONE))
    form.get_by_role("button", name="Save changes").click()
    note = form.locator('[data-error-for="ends_at"]')
    expect(note).to_contain_text("ends_at must be after starts_at")
    expect(form.get_by_label("Ends")).to_have_attribute("aria-invalid", "true")
    assert desk.call("get", f"/api/campaigns/{cid}")["ends_at"] == ends


def test_offers_with_every_cap_and_the_status_moves(open_page, desk):
    campaign = desk.campaign("Caps and moves")
    page = console(open_page, desk, f"#campaigns/{campaign['id']}")
    offers = page.locator("#offers")
    expect(offers.get_by_text("No offers yet.")).to_be_visible()

    # Amount off with a total, per-shopper, per-day and per-store cap.
    offers.get_by_role("button", name="Add an offer").click()
    form = page.locator("#offer-form")
    form.get_by_label("Name (for marketers)").fill("20 off")
    form.get_by_label("Discount (¥)", exact=True).fill("20")
    form.get_by_label("Minimum spend (¥)").fill("100")
    form.get_by_label("Coupons in all").fill("500")
    form.get_by_label("Per shopper", exact=True).fill("2")
    form.get_by_label("Per shopper per day").fill("1")
    form.get_by_label("Per store per day").fill("40")
    form.get_by_role("checkbox", name="Store visit").check()
    form.get_by_role("button", name="Add offer").click()
    expect(offers.locator("#offer-list")).to_contain_text("¥20.00 off · min spend ¥100.00")

    # Percent off: 150 % is refused next to its field, then 15 % up to ¥30 is added.
    offers.get_by_role("button", name="Add an offer").click()
    form = page.locator("#offer-form")
    form.get_by_label("Name (for marketers)").fill("15 percent")
    form.get_by_label("Kind").select_option("percent_off")
    form.get_by_label("Percent off").fill("150")
    form.get_by_label("Largest discount (¥)").fill("30")
    form.get_by_label("Money budget (¥)").fill("3000")
    form.get_by_role("button", name="Add offer").click()
    expect(form.locator('[data-error-for="percent_off"]')).to_contain_text(
        "less than or equal to 100"
    )
    assert_accessible(page)
    form.get_by_label("Percent off").fill("15")
    form.get_by_role("button", name="Add offer").click()
    expect(offers.locator("#offer-list")).to_contain_text("15% off, up to ¥30.00")

    listed = desk.call("get", f"/api/campaigns/{campaign['id']}/offers")["items"]
    amount, percent = listed
    assert amount["caps"] == {
        "total": 500,
        "value_fen": None,
        "per_shopper": 2,
        "per_shopper_day": 1,
        "per_store_day": 40,
    }
    assert (amount["amount_off_fen"], amount["min_spend_fen"]) == (2000, 10_000)
    assert sorted(amount["channels"]) == ["manual", "visit"]
    assert (percent["percent_off"], percent["max_off_fen"]) == (15, 3000)
    assert percent["caps"]["value_fen"] == 300_000

    # Editing: the terms are fixed (disabled, with the reason); caps still change.
    offers.locator(f'tr[data-offer-id="{amount["id"]}"]').get_by_role(
        "button", name="Edit 20 off"
    ).click()
    form = page.locator("#offer-form")
    expect(form.get_by_label("Discount (¥)", exact=True)).to_be_disabled()
    expect(form.get_by_text("fixed once the offer exists")).to_be_visible()
    form.get_by_label("Coupons in all").fill("600")
    form.get_by_role("button", name="Save offer").click()
    expect(offers.locator("#offer-list")).to_contain_text("600 in all")
    got = desk.call("get", f"/api/campaigns/{campaign['id']}/offers/{amount['id']}")
    assert got["caps"]["total"] == 600 and got["caps"]["per_store_day"] == 40
    # Switched off and on again from the list.
    row = offers.locator(f'tr[data-offer-id="{percent["id"]}"]')
    row.get_by_role("button", name="Switch 15 percent off").click()
    expect(row.get_by_role("button", name="Switch 15 percent on")).to_be_focused()
    expect(row).to_contain_text("Off")
    assert (
        desk.call("get", f"/api/campaigns/{campaign['id']}/offers/{percent['id']}")["active"]
        is False
    )

    # Status moves: only the allowed buttons, each agreed by the API.
    status = page.locator("#campaign-status")
    for button, shown, api_status in [
        ("Schedule", "Live", "live"),  # scheduled inside its window: live at once
        ("Pause", "Paused", "paused"),
        ("Resume", "Live", "live"),
    ]:
        status.get_by_role("button", name=button).click()
        expect(page.locator("#campaign-status-value")).to_have_text(shown)
        assert desk.call("get", f"/api/campaigns/{campaign['id']}")["status"] == api_status
    expect(status.get_by_role("button")).to_have_text(["Pause", "End campaign"])

    status.get_by_role("button", name="End campaign").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Ending cannot be undone")
    expect(dialog.get_by_role("button", name="Keep it running")).to_be_focused()
    assert_accessible(page)
    dialog.get_by_role("button", name="Keep it running").click()
    expect(dialog).to_have_count(0)
    assert desk.call("get", f"/api/campaigns/{campaign['id']}")["status"] == "live"
    status.get_by_role("button", name="End campaign").click()
    page.get_by_role("dialog").get_by_role("button", name="End the campaign").click()
    expect(page.locator("#campaign-status-value")).to_have_text("Ended")
    assert desk.call("get", f"/api/campaigns/{campaign['id']}")["status"] == "ended"
    expect(status.get_by_role("button")).to_have_count(0)


def test_refused_moves_are_shown(open_page, desk):
    # A draft whose window has passed cannot be scheduled: OUTSIDE_WINDOW.
    past = int(time.time()) - 10 * 86_400
    old = desk.campaign("Last week", starts_at=past, ends_at=past + 86_400)
    page = console(open_page, desk, f"#campaigns/{old['id']}")
    page.locator("#campaign-status").get_by_role("button", name="Schedule").click()
    expect(page.locator("#campaign-move-error")).to_have_text(
        "Outside the campaign's window: a campaign cannot be scheduled after its end, "
        "nor made live before its start."
    )
    expect(page.locator("#campaign-status-value")).to_have_text("Draft")

    # Ended elsewhere while the page was open: INVALID_TRANSITION, and the page catches up.
    live = desk.campaign("Ended elsewhere")
    desk.call("post", f"/api/campaigns/{live['id']}/transition", {"to": "scheduled"})
    page.goto(page.url.split("#")[0] + f"#campaigns/{live['id']}")
    expect(page.locator("#campaign-status-value")).to_have_text("Live")
    desk.call("post", f"/api/campaigns/{live['id']}/transition", {"to": "ended"})
    page.locator("#campaign-status").get_by_role("button", name="Pause").click()
    expect(page.locator("#campaign-move-error")).to_have_text(
        "The campaign cannot move to that status from its current one."
    )
    expect(page.locator("#campaign-status-value")).to_have_text("Ended")


def test_the_coupon_preview_shows_the_card_in_both_languages(open_page, desk):
    campaign = desk.campaign("Preview", targets={"brands": ["Acme"]})
    offer = desk.offer(campaign["id"], min_spend_fen=10_000)
    page = console(open_page, desk, f"#campaigns/{campaign['id']}")
    cards = {}

    def seen(response):
        if response.url.split("?")[0].endswith("/card.png"):
            cards[response.url.rsplit("=", 1)[-1]] = response

    page.on("response", seen)
    page.get_by_role("button", name="Preview the card of 20 off").click()
    preview = page.locator("#card-preview")
    english = preview.get_by_role("img", name="Specimen coupon card in English: ¥20.00 off")
    chinese = preview.get_by_role("img", name="Specimen coupon card in Chinese: ¥20.00 off")
    for image in (english, chinese):
        expect(image).to_be_visible()
        expect(image).to_have_attribute("src", re.compile(r"^blob:"))
    widths = page.evaluate(
        "[...document.querySelectorAll('#card-preview img')].map(i => i.naturalWidth)"
    )
    assert widths == [600, 600]
    # Both image requests succeeded, with the token in a header (never in the URL).
    assert set(cards) == {"en", "zh-CN"}
    for response in cards.values():
        assert response.status == 200 and response.headers["content-type"] == "image/png"
        assert (
            "Bearer" not in response.url and desk.headers["Authorization"][7:] not in response.url
        )
    # What the page shows is what the API draws for the offer in each language, and differs.
    shown = page.evaluate(SHOWN_IMAGES)
    assert shown["en"] != shown["zh-CN"]
    for lang, data in shown.items():
        url = f"/api/campaigns/{campaign['id']}/offers/{offer['id']}/card.png?lang={lang}"
        direct = requests.get(desk.web.url + url, headers=desk.headers, timeout=5)
        assert base64.b64decode(data) == direct.content, lang


# The bytes behind each preview image's object URL, base64, by the figure's language.
SHOWN_IMAGES = """async () => {
  const out = {};
  for (const figure of document.querySelectorAll("#card-preview figure")) {
    const blob = await (await fetch(figure.querySelector("img").src)).blob();
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let text = "";
    for (const b of bytes) text += String.fromCharCode(b);
    out[figure.dataset.lang] = btoa(text);
  }
  return out;
}"""


def test_the_game_set_up_is_saved_and_read_back(open_page, desk):
    campaign = desk.campaign("Game")
    game_offer = desk.offer(campaign["id"], name="catch bonus", channels=["game"])
    desk.offer(campaign["id"], name="manual only")
    page = console(open_page, desk, f"#campaigns/{campaign['id']}")
    form = page.locator("#game-form")
    expect(form.get_by_text("This campaign has no game yet")).to_be_visible()
    # The starter table: chances of each rarity on the street and in stores.
    expect(form.locator('#chance-table tr[data-rarity="legendary"]')).to_contain_text("0.0%")
    select = form.get_by_label("Catch bonus in a store")
    expect(select.locator("option", has_text="manual only")).to_be_disabled()

    # A weight of 0 is refused next to its input.
    form.get_by_label("Weight 2").fill("0")
    form.get_by_role("button", name="Save game").click()
    expect(form.locator('[data-error-for="species[1].weight"]')).to_contain_text("greater than 0")

    form.get_by_label("Weight 2").fill("40")
    form.get_by_role("button", name="Add a species").click()
    form.get_by_label("Id 4").fill("paper-crane")
    form.get_by_label("Name 4").fill("Paper Crane")
    form.get_by_label("Rarity 4").select_option("epic")
    form.get_by_label("Weight 4").fill("10")
    form.get_by_label("Points (empty: by rarity) 4").fill("300")
    form.get_by_label("Spawns per map cell per 15 minutes").fill("2.5")
    form.get_by_label("Rarity boost in stores").fill("4")
    select.select_option(game_offer["id"])
    form.get_by_role("button", name="Save game").click()
    expect(form.get_by_text("Game saved.")).to_be_visible()

    saved = desk.call("get", f"/api/campaigns/{campaign['id']}/game")
    assert [(s["id"], s["rarity"], s["weight"]) for s in saved["species"]] == [
        ("lantern-fox", "common", 60),
        ("jade-koi", "rare", 40),
        ("golden-qilin", "legendary", 5),
        ("paper-crane", "epic", 10),
    ]
    assert saved["species"][3]["points"] == 300
    assert (saved["density_per_cell"], saved["store_rarity_boost"]) == (2.5, 4)
    assert saved["offer_id"] == game_offer["id"]
    # The chances follow the saved table: legendary 5*4 of 60 + (40+5+10)*4 = 280 in stores.
    expect(form.locator('#chance-table tr[data-rarity="legendary"]')).to_contain_text("7.1%")
    page.reload()
    expect(page.locator("#game-form").get_by_label("Catch bonus in a store")).to_have_value(
        game_offer["id"]
    )


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_the_list_and_the_editor_are_accessible_in_both_languages(open_page, desk, width):
    campaign = desk.campaign("双十一 上海", budget={"value_fen": 500_000, "count": 8})
    offer = desk.offer(campaign["id"])
    desk.call("post", f"/api/campaigns/{campaign['id']}/transition", {"to": "scheduled"})
    # One coupon issued: the budget burn is the server's counters against the budget.
    shopper = desk.web.user("shopper")
    desk.call(
        "post",
        f"/api/campaigns/{campaign['id']}/offers/{offer['id']}/issue",
        {"shopper_id": shopper["id"], "idempotency_key": uuid.uuid4().hex},
        201,
    )
    page = console(open_page, desk, "#campaigns", width=width)
    row = page.locator(f'#campaign-list tr[data-campaign-id="{campaign["id"]}"]')
    expect(row).to_contain_text("Live")
    expect(row).to_contain_text("¥20.00 of ¥5,000.00 (0.4%)")
    expect(row).to_contain_text("1 of 8 (12.5%)")
    page.get_by_label("Status").select_option("draft")
    expect(row).to_have_count(0)
    page.get_by_label("Status").select_option("live")
    expect(row).to_be_visible()
    assert_accessible(page)
    row.get_by_role("link").click()
    expect(page.locator("#offer-list")).to_be_visible()
    assert_accessible(page)

    zh = console(open_page, desk, "#campaigns", width=width, locale="zh-CN")
    expect(zh.get_by_role("heading", name="营销活动")).to_be_visible()
    expect(zh.locator(f'#campaign-list tr[data-campaign-id="{campaign["id"]}"]')).to_contain_text(
        "进行中"
    )
    assert_glyphs_render(zh, "#campaign-list")
    assert_accessible(zh)
    zh.goto(f"{zh.url.split('#')[0]}#campaigns/{campaign['id']}")
    expect(zh.locator("#offers")).to_contain_text("立减¥20.00")
    assert_glyphs_render(zh, "#campaign-form")
    # The game settings load after the campaign (their own request): wait for them.
    expect(zh.locator("#game-form")).to_contain_text("保存游戏设置")
    assert_glyphs_render(zh, "#game-form")
    assert_accessible(zh)


def test_the_list_pages_through_the_api(open_page, desk):
    for n in range(21):
        desk.campaign(f"Paged {n}")
    total = len(desk.call("get", "/api/campaigns?limit=200")["items"])
    page = console(open_page, desk, "#campaigns")
    rows = page.locator("#campaign-list tbody tr")
    expect(rows).to_have_count(20)
    more = page.get_by_role("button", name="Show more")
    while more.is_visible():
        count = rows.count()
        more.click()
        expect(rows).not_to_have_count(count)
    expect(rows).to_have_count(total)
    expect(page.get_by_text(f"Campaigns shown: {total}.")).to_be_visible()
