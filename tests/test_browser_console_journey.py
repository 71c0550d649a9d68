"""One marketer's day in the console, end to end in a real Chromium: import stores (with bad
rows), draw a fence, create a campaign with a capped visit offer and launch it, watch a
shopper's visit (sent through the REST API by the test) arrive in the live funnel, export it as
CSV and read the changes back in the audit log.

Each step is tested in depth by its section's module (tests/test_browser_console_*.py); this
one checks that the sections work together: the imported store is the one the fence is drawn
on, the campaign targets and the shopper visits, and the audit log holds every step.
"""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import requests
from playwright.sync_api import expect

from tests.browser import (  # noqa: F401 - fixtures, passed to tests by name
    DESKTOP,
    assert_accessible,
    open_page,
    web,
)
from tests.test_browser_console_stores import map_centre, upload
from tests.test_browser_consoles import sign_in

WEB_ENV = {"FUNNEL_PUSH_S": "0.5"}
ZONE = "Asia/Shanghai"
LAT, LON = 31.2290, 121.4750
CSV_TEXT = (
    "id,name,brand,city,lat,lon,address,tz,hours,fence\n"
    f"jr-1,Journey One,JourneyBrand,Journeyville,{LAT},{LON},1 Road,{ZONE},,\n"
    f"jr-2,Journey Bad,JourneyBrand,Journeyville,{LAT},east,2 Road,{ZONE},,\n"  # line 3
    f"jr-3,Journey Two,JourneyBrand,Journeyville,{LAT + 0.02},{LON},3 Road,{ZONE},,\n"
)


def wall_clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M")


def visit(web) -> None:
    """A new shopper consents to location and sends a fix at Journey One's point."""
    headers = web.login(web.user("shopper"))
    consent = requests.put(
        web.url + "/api/me/consent", json={"location": True}, headers=headers, timeout=5
    )
    assert consent.status_code == 200, consent.text
    fix = {"lat": LAT, "lon": LON, "accuracy_m": 5, "recorded_at": time.time()}
    response = requests.post(web.url + "/api/location/fix", json=fix, headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    assert [e["kind"] for e in response.json()["results"][0]["events"]] == ["enter"]


def test_a_marketer_imports_fences_launches_watches_exports_and_audits(open_page, web):
    marketer = web.user("marketer")
    headers = web.login(marketer)
    page = open_page("/console/#stores", width=DESKTOP)
    sign_in(page, marketer["email"])

    # 1. Import with a bad row: all or nothing refuses, good rows only writes the two good ones.
    upload(page, "journey.csv", CSV_TEXT, partial=False)
    result = page.locator("#stores-import-result")
    expect(result.get_by_role("heading")).to_have_text("Import refused")
    expect(page.locator("#stores-import-errors tbody tr td").first).to_have_text("line 3")
    upload(page, "journey.csv", CSV_TEXT, partial=True)
    expect(result.locator(".import-counts")).to_have_text("Received 3, written 2, bad 1.")

    # 2. The imported store from the list, and a circle fence drawn on its map.
    page.get_by_label("City").fill("Journeyville")
    page.get_by_role("button", name="Show stores").click()
    page.locator("#stores-table").get_by_role("link", name="Journey One").click()
    expect(page.get_by_role("heading", name="Journey One")).to_be_visible()
    page.get_by_role("button", name="Draw a circle").click()
    cx, cy = map_centre(page)  # the map is centred on the store
    page.mouse.move(cx, cy)
    page.mouse.click(cx, cy)
    page.mouse.move(cx + 50, cy, steps=5)
    page.mouse.click(cx + 50, cy)
    expect(page.locator("#fence-status")).to_have_text("Shape drawn. Save to keep it.")
    page.get_by_role("button", name="Save fence").click()
    expect(page.locator("#fence-status")).to_have_text("Fence saved.")
    fence = requests.get(web.url + "/api/stores/jr-1", headers=headers, timeout=5).json()["fence"]
    assert fence["type"] == "circle" and fence["radius_m"] >= 10

    # 3. A campaign on that store, a capped visit offer, launched.
    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    form = page.locator("#campaign-form")
    form.get_by_label("Name", exact=True).fill("Journey week")
    form.get_by_label("Time zone").select_option(ZONE)
    starts = (int(time.time()) // 60) * 60 - 3600
    form.get_by_label("Starts").fill(wall_clock(starts))
    form.get_by_label("Ends").fill(wall_clock(starts + 7 * 86_400))
    form.locator("#pick-targets-stores").get_by_label("Journey One (jr-1)", exact=False).check()
    form.get_by_role("button", name="Create campaign").click()
    expect(page).to_have_url(re.compile(r"/console/#campaigns/\d+$"))
    cid = page.url.rsplit("/", 1)[-1]

    page.locator("#offers").get_by_role("button", name="Add an offer").click()
    offer = page.locator("#offer-form")
    offer.get_by_label("Name (for marketers)").fill("Welcome 5 off")
    offer.get_by_label("Discount (¥)", exact=True).fill("5")
    offer.get_by_label("Coupons in all").fill("100")
    offer.get_by_label("Per shopper", exact=True).fill("1")
    offer.get_by_label("Per store per day").fill("50")
    offer.get_by_role("checkbox", name="Store visit").check()
    offer.get_by_label("Store visit issues on").select_option("enter")
    offer.get_by_role("button", name="Add offer").click()
    expect(page.locator("#offer-list")).to_contain_text("¥5.00 off")
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator("#campaign-status-value")).to_have_text("Live")
    saved = requests.get(web.url + f"/api/campaigns/{cid}/offers", headers=headers, timeout=5)
    [made] = saved.json()["items"]
    assert made["caps"]["total"] == 100 and made["caps"]["per_shopper"] == 1

    # 4. The live funnel: a shopper's visit through the API shows up without a reload.
    page.get_by_role("link", name="Live funnel").click()
    page.get_by_role("link", name="Journey week").click()
    expect(page.get_by_role("heading", name="Live funnel: Journey week")).to_be_visible()
    expect(page.locator("#funnel-visits")).to_have_text("0")
    visit(web)
    expect(page.locator("#funnel-visits")).to_have_text("1", timeout=15_000)
    expect(page.locator("#funnel-issued")).to_have_text("1", timeout=15_000)
    expect(page.locator('#funnel-map .funnel-heat-spot[data-store="jr-1"]')).to_have_attribute(
        "data-visits", "1"
    )
    with page.expect_download() as download:
        page.get_by_role("button", name="Download per-store CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    assert [(r["store_id"], r["visits"], r["issued"]) for r in rows] == [("jr-1", "1", "1")]

    # 5. The audit log holds every step, by this marketer.
    page.get_by_role("link", name="Audit log").click()
    log = page.locator("#audit-table")
    expect(log.locator("tr[data-kind='store'][data-action='import']")).to_have_count(1)
    fenced = log.locator("tr[data-kind='store'][data-action='update'][data-object='jr-1']")
    expect(fenced.locator("li[data-field^='fence']").first).to_be_visible()
    created = log.locator(f"tr[data-kind='campaign'][data-action='create'][data-object='{cid}']")
    expect(created).to_have_count(1)
    expect(log.locator("tr[data-kind='offer'][data-action='create']")).to_have_count(1)
    moved = log.locator(f"tr[data-kind='campaign'][data-action='transition'][data-object='{cid}']")
    expect(moved).to_have_count(1)
    assert_accessible(page)
