"""The marketer console's live funnel in a real Chromium: a shopper's visit, sent through the REST
API by the test, shows up in the open console without a reload (pushed over /marketer); CSV
export; the heatmap on the map; the lost-socket banner; Chinese; axe at phone and desktop."""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect

from tests.browser import (  # noqa: F401 - fixtures, passed to tests by name
    DESKTOP,
    PASSWORD,
    PHONE,
    assert_accessible,
    assert_glyphs_render,
    open_page,
    web,
)
from tests.test_browser_consoles import sign_in

# Pushes every half second, so a visit shows within a second or two.
WEB_ENV = {"FUNNEL_PUSH_S": "0.5", "FUNNEL_TOP_STORES": "1"}
SHANGHAI = (31.2400, 121.4800)


class FunnelShop:
    """A fenced store and a live campaign whose offer is issued on entering it, made by a
    marketer over HTTP; each shop stands apart from the others (its own fence)."""

    count = 0

    def __init__(self, web):
        FunnelShop.count += 1
        self.web = web
        self.user = web.user("marketer")
        self.marketer = web.login(self.user)
        self.store_id = f"funnel-{uuid.uuid4().hex[:8]}"
        self.store_name = f"Funnel Store {FunnelShop.count}"
        self.lat = SHANGHAI[0] + 0.05 * FunnelShop.count
        self.lon = SHANGHAI[1]
        self.post(
            "/api/stores",
            {
                "id": self.store_id,
                "name": self.store_name,
                "brand": "FunnelBrand",
                "city": "Shanghai",
                "lat": self.lat,
                "lon": self.lon,
                "fence": {"type": "circle", "radius_m": 80},
            },
        )
        now = int(time.time())
        self.name = f"Funnel campaign {FunnelShop.count}"
        self.cid = self.post(
            "/api/campaigns",
            {
                "name": self.name,
                "starts_at": now - 3600,
                "ends_at": now + 30 * 86_400,
                "targets": {"stores": [self.store_id]},
                "budget": {"count": 100},
            },
        )["id"]
        self.post(
            f"/api/campaigns/{self.cid}/offers",
            {
                "name": "Hello 5 off",
                "kind": "amount_off",
                "amount_off_fen": 500,
                "channels": ["visit"],
                "visit_trigger": "enter",
                "caps": {"total": 50, "per_store_day": 20},
            },
        )
        live = self.post(f"/api/campaigns/{self.cid}/transition", {"to": "scheduled"}, 200)
        assert live["status"] == "live"

    def post(self, path, body, status=201):
        response = requests.post(self.web.url + path, json=body, headers=self.marketer, timeout=5)
        assert response.status_code == status, response.text
        return response.json()

    def visit(self, lat: float | None = None) -> None:
        """A new shopper consents to location and sends a fix inside the store's fence (or at
        another latitude on the store's meridian)."""
        headers = self.web.login(self.web.user("shopper"))
        consent = requests.put(
            self.web.url + "/api/me/consent", json={"location": True}, headers=headers, timeout=5
        )
        assert consent.status_code == 200, consent.text
        fix = {
            "lat": self.lat if lat is None else lat,
            "lon": self.lon,
            "accuracy_m": 5,
            "recorded_at": time.time(),
        }
        response = requests.post(
            self.web.url + "/api/location/fix", json=fix, headers=headers, timeout=5
        )
        assert response.status_code == 200, response.text
        events = response.json()["results"][0]["events"]
        assert [e["kind"] for e in events] == ["enter"], events


@pytest.fixture
def shop(web):
    return FunnelShop(web)


def open_funnel(open_page, shop, **kwargs):
    page = open_page(f"/console/#funnel/{shop.cid}", **kwargs)
    sign_in(page, shop.user["email"])
    return page


def test_a_visit_shows_up_live_and_exports_as_csv(open_page, web, shop):
    page = open_page("/console/#funnel", width=DESKTOP)
    sign_in(page, shop.user["email"])
    page.get_by_role("link", name=shop.name).click()
    expect(page.get_by_role("heading", name=f"Live funnel: {shop.name}")).to_be_visible()
    expect(page.locator("#funnel-updated")).to_contain_text("Last updated:")
    expect(page.locator("#funnel-visits")).to_have_text("0")
    expect(page.locator("#funnel-issued")).to_have_text("0")
    expect(page.get_by_label("Coupons: 0 of 100")).to_be_visible()  # the campaign's budget
    assert_accessible(page)

    shop.visit()  # through the API: the page is not reloaded
    expect(page.locator("#funnel-visits")).to_have_text("1", timeout=15_000)
    expect(page.locator("#funnel-issued")).to_have_text("1", timeout=15_000)
    expect(page.get_by_label("Coupons: 1 of 100")).to_be_visible()
    expect(page.get_by_label(f"{shop.store_name} on ")).to_have_attribute("value", "1")
    # The heatmap: the store as a circle on the map, with its visits.
    spot = page.locator(f'#funnel-map .funnel-heat-spot[data-store="{shop.store_id}"]')
    expect(spot).to_have_count(1)
    expect(spot).to_have_attribute("data-visits", "1")
    # The per-store numbers as a table, for keyboard and screen reader users.
    page.locator("#funnel-by-store summary").click()
    row = page.locator(f'#funnel-table-store tr[data-key="{shop.store_id}"]')
    expect(row.get_by_role("rowheader")).to_have_text(shop.store_name)
    expect(row.get_by_role("cell").first).to_have_text("1")
    expect(
        page.get_by_role("img", name="Visits, coupons issued and redeemed per day")
    ).to_be_visible()

    today = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download per-day CSV").click()
    assert download.value.suggested_filename == f"campaign-{shop.cid}-by-day.csv"
    rows = list(
        csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8")))
    )
    assert [(r["day"], r["visits"], r["issued"]) for r in rows] == [(today, "1", "1")]
    with page.expect_download() as download:
        page.get_by_role("button", name="Download per-store CSV").click()
    rows = list(
        csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8")))
    )
    assert [(r["store_id"], r["name"], r["visits"]) for r in rows] == [
        (shop.store_id, shop.store_name, "1")
    ]
    assert_accessible(page)


def test_a_lost_socket_shows_the_banner_and_watches_again(open_page, web, shop):
    page = open_funnel(open_page, shop, width=DESKTOP)
    expect(page.locator("#funnel-visits")).to_have_text("0")
    banner = page.get_by_role("alert").filter(has_text="Connection lost")
    expect(banner).to_be_hidden()
    # socket.io-client's documented transport close: the client reconnects by itself.
    page.evaluate("document.querySelector('#funnel-live').funnelSocket.io.engine.close()")
    expect(banner).to_be_visible()
    expect(banner).to_be_hidden(timeout=15_000)
    shop.visit()  # the reconnected socket watches the campaign again
    expect(page.locator("#funnel-visits")).to_have_text("1", timeout=15_000)
    # Leaving the view closes its socket: no banner, no socket left.
    page.get_by_role("link", name="← All campaigns").click()
    expect(page.get_by_role("heading", name="Live funnel")).to_be_visible()
    expect(page.locator(".socket-banner")).to_have_count(0)
    # A campaign that does not exist: the watch's error envelope, in words.
    page.evaluate("location.hash = '#funnel/999999'")
    expect(page.locator("#funnel-live").get_by_role("alert")).to_have_text(
        "There is no such campaign."
    )


def test_the_funnel_in_chinese_on_a_phone(open_page, web, shop):
    shop.visit()
    page = open_funnel(open_page, shop, width=PHONE, locale="zh-CN")
    expect(page.get_by_role("heading", name=f"实时漏斗：{shop.name}")).to_be_visible()
    expect(page.locator("#funnel-visits")).to_have_text("1", timeout=15_000)
    expect(page.locator("#funnel-by-day h3")).to_have_text("按日")
    assert_glyphs_render(page, "#funnel-live")
    assert_accessible(page)


def test_the_per_store_part_shows_the_most_visited_stores(open_page, web, shop):
    # A second store of the campaign, 0.01° north; the server keeps one store per snapshot.
    second = f"{shop.store_id}-b"
    shop.post(
        "/api/stores",
        {
            "id": second,
            "name": "Quiet Store",
            "brand": "FunnelBrand",
            "city": "Shanghai",
            "lat": shop.lat + 0.01,
            "lon": shop.lon,
            "fence": {"type": "circle", "radius_m": 80},
        },
    )
    patched = requests.patch(
        f"{web.url}/api/campaigns/{shop.cid}",
        json={"targets": {"stores": [shop.store_id, second]}},
        headers=shop.marketer,
        timeout=5,
    )
    assert patched.status_code == 200, patched.text
    shop.visit()
    shop.visit()
    shop.visit(lat=shop.lat + 0.01)
    page = open_funnel(open_page, shop, width=DESKTOP)
    expect(page.locator("#funnel-visits")).to_have_text("3")
    expect(page.locator("#funnel-shown-store")).to_have_text(
        "Showing the 1 most visited of the 2 stores with activity; the CSV has them all."
    )
    page.locator("#funnel-by-store summary").click()
    rows = page.locator("#funnel-table-store tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.get_by_role("rowheader")).to_have_text(shop.store_name)
    # The heatmap has both.
    expect(page.locator("#funnel-map .funnel-heat-spot")).to_have_count(2)
