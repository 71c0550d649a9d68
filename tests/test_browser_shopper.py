"""The shopper demo page (static/index.html) in a real Chromium: the official socket.io-client
brings a geofence event and a visit coupon, the coupon row names its store and shows its QR.

See tests/browser.py for the browser, the server and the screenshots of failed tests.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import requests
from playwright.sync_api import expect

from game import roll_for
from game.models import CATCH_RATE
from tests.browser import (  # noqa: F401 - fixtures, passed to tests by name
    DESKTOP,
    PASSWORD,
    PHONE,
    assert_accessible,
    open_page,
    web,
)

# Next to the Bund end of the page's walk (where it starts): the shopper's fix lands inside.
STORE = {
    "id": "bund-flagship",
    "name": "Bund Flagship 外滩旗舰店",
    "brand": "Acme",
    "city": "Shanghai",
    "lat": 31.2400,
    "lon": 121.4900,
    "fence": {"type": "circle", "radius_m": 120},
}


def call(web, method: str, path: str, token: str, body=None) -> dict:
    response = requests.request(
        method,
        web.url + path,
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.ok, (path, response.status_code, response.text)
    return response.json()


def login(web, email: str) -> str:
    response = requests.post(
        web.url + "/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert response.ok, response.text
    return response.json()["token"]


@pytest.fixture(scope="module")
def campaign(web) -> tuple[str, str]:
    """A store and a live campaign with a coupon on entering its fence (real clock); returns
    the campaign id and a marketer's token."""
    token = login(web, web.user("marketer")["email"])
    call(web, "POST", "/api/stores", token, STORE)
    now = time.time()
    campaign = call(
        web,
        "POST",
        "/api/campaigns",
        token,
        {
            "name": "Bund week",
            "starts_at": now - 60,
            "ends_at": now + 3600,
            "targets": {"stores": [STORE["id"]]},
        },
    )
    call(
        web,
        "POST",
        f"/api/campaigns/{campaign['id']}/offers",
        token,
        {
            "name": "10 off",
            "kind": "amount_off",
            "amount_off_fen": 1000,
            "channels": ["visit"],
            "visit_trigger": "enter",
        },
    )
    moved = call(
        web, "POST", f"/api/campaigns/{campaign['id']}/transition", token, {"to": "scheduled"}
    )
    assert moved["status"] == "live"
    return campaign["id"], token


def sign_in_and_consent(page, shopper: dict) -> str:
    """Sign in on the page, grant consent, and return the tab's token."""
    page.fill("#email", shopper["email"])
    page.fill("#password", PASSWORD)
    page.click("#login-btn")
    expect(page.locator("#who")).to_have_text(f"{shopper['email']} (shopper)")
    page.click("#consent-btn")
    expect(page.locator("#consent-state")).to_have_text("granted")
    return json.loads(page.evaluate("sessionStorage.getItem('footfall.session')"))["token"]


def fix_at_store(web, token: str) -> None:
    """Send the shopper's fix at the store through the API (the page's walk stays put)."""
    fix = {"lat": STORE["lat"], "lon": STORE["lon"], "accuracy_m": 5, "recorded_at": time.time()}
    answer = call(web, "POST", "/api/location/fix", token, fix)
    assert answer["results"][0]["verdict"] == "ok", answer


def test_shopper_page_gets_events_over_socketio_and_shows_the_coupon_qr(open_page, web, campaign):
    shopper = web.user("shopper")
    page = open_page("/static/index.html")
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(f"{m.text} {m.location['url']}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))

    page.fill("#email", shopper["email"])
    page.fill("#password", PASSWORD)
    page.click("#login-btn")
    expect(page.locator("#who")).to_have_text(f"{shopper['email']} (shopper)")
    # Connected through socket.io-client (the module the page imports from /vendor/).
    expect(page.locator("#socket-state")).to_have_text("socket: connected")
    assert any("/socket.io/" in url and "EIO=4" in url for url in sockets), sockets
    page.click("#consent-btn")
    expect(page.locator("#consent-state")).to_have_text("granted")

    # The test walks the shopper into the store through the API; the page hears it.
    token = json.loads(page.evaluate("sessionStorage.getItem('footfall.session')"))["token"]
    fix = {"lat": STORE["lat"], "lon": STORE["lon"], "accuracy_m": 5, "recorded_at": time.time()}
    answer = call(web, "POST", "/api/location/fix", token, fix)
    assert answer["results"][0]["verdict"] == "ok", answer
    enter = page.locator("#events li", has_text="Bund Flagship")
    expect(enter.locator(".kind")).to_have_text("enter")
    expect(enter.locator(".via")).to_contain_text("socket")

    # The coupon issued for the visit arrives as coupon_issued: its store by name, its QR.
    row = page.locator("#coupons li.coupon")
    expect(row).to_have_count(1)
    expect(row.locator(".store")).to_have_text(f" · earned at {STORE['name']}")
    expect(row.locator(".code")).not_to_have_text("…")
    qr = row.locator("img.qr")
    expect(qr).to_have_attribute("src", re.compile(r"^blob:"))  # fetched with the token
    page.wait_for_function(
        "() => document.querySelector('#coupons img.qr').naturalWidth > 0", timeout=10_000
    )
    assert token not in page.content()
    # No script error and no failed request but one: before its first fix the page asks for
    # creatures and the answer is 409 NO_POSITION, which it expects (Chromium logs the status).
    assert [
        e for e in errors if not re.match(r"Failed to load .* 409 .*/api/game/spawns$", e)
    ] == []


def test_a_caught_creature_has_no_throw_button_and_the_result_stays(open_page, web, campaign):
    cid, marketer = campaign
    game = {
        "species": [{"id": "dumpling", "name": "Dumpling", "rarity": "common", "weight": 1}],
        "density_per_cell": 20,
        "store_density": 20,
        "seed": "shopper-page",
    }
    call(web, "PUT", f"/api/campaigns/{cid}/game", marketer, game)
    shopper = web.user("shopper")
    page = open_page("/static/index.html")
    token = sign_in_and_consent(page, shopper)
    fix_at_store(web, token)
    # One of the listed creatures (the page shows the nearest 8) that the first throw catches,
    # within reach of where the page stands (the store).
    listed = call(web, "GET", "/api/game/spawns", token)["spawns"][:8]
    target = next(
        v
        for v in listed
        if v["distance_m"] <= 60 and roll_for(v["id"], shopper["id"], 1)[0] < CATCH_RATE["common"]
    )
    row = page.locator(f'#spawns li[data-spawn="{target["id"]}"]')
    row.get_by_role("button", name="throw").click()
    result = page.locator("#throw-result")
    expect(result).to_have_text(re.compile(r"^Dumpling: caught! \+10 points"))
    expect(row.locator(".caught")).to_have_text("caught ✓")
    expect(row.get_by_role("button")).to_have_count(0)
    # The list refreshes every 3 s: the result and the missing button outlive a refresh.
    with page.expect_response(lambda r: r.url.endswith("/api/game/spawns")):
        pass
    with page.expect_response(lambda r: r.url.endswith("/api/game/spawns")):
        pass
    expect(result).to_be_visible()
    expect(result).to_have_text(re.compile(r"^Dumpling: caught!"))
    expect(row.locator(".caught")).to_have_text("caught ✓")
    expect(row.get_by_role("button")).to_have_count(0)
    caught = [v["id"] for v in call(web, "GET", "/api/game/spawns", token)["spawns"] if v["caught"]]
    assert caught == [target["id"]]


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_the_shopper_page_has_no_serious_accessibility_violations(open_page, web, campaign, width):
    cid, marketer = campaign
    game = {
        "species": [{"id": "bao", "name": "Bao", "rarity": "common", "weight": 1}],
        "density_per_cell": 20,
        "store_density": 20,
        "seed": "shopper-axe",
    }
    call(web, "PUT", f"/api/campaigns/{cid}/game", marketer, game)
    page = open_page("/static/index.html", width=width)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#socket-state")).to_have_text("socket: off")
    # Signed out, with an API error listed (a wrong password).
    page.fill("#email", "nobody@example.test")
    page.fill("#password", "not-the-password")
    page.click("#login-btn")
    expect(page.locator("#error-list li")).to_contain_text("invalid_credentials")
    assert_accessible(page)

    # Signed in, at the store: events, a coupon with its QR, creatures with throw buttons.
    token = sign_in_and_consent(page, web.user("shopper"))
    fix_at_store(web, token)
    expect(page.locator("#coupons li.coupon img.qr")).to_have_attribute(
        "src", re.compile(r"^blob:")
    )
    expect(page.locator("#spawns li button").first).to_be_visible()
    expect(page.locator("#events li").first).to_be_visible()
    assert_accessible(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
