"""The shopper demo page (static/index.html) in a real Chromium: the official socket.io-client
brings a geofence event and a visit coupon, the coupon row names its store and shows its QR.

See tests/browser.py for the browser, the server and the screenshots of failed tests.
"""

from __future__ import annotations

import json
import re
import time

import requests
from playwright.sync_api import expect

from tests.browser import (  # noqa: F401 - fixtures, passed to tests by name
    PASSWORD,
    browser,
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


def live_visit_campaign(web) -> str:
    """A store and a live campaign with a coupon on entering its fence (real clock)."""
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
    return campaign["id"]


def test_shopper_page_gets_events_over_socketio_and_shows_the_coupon_qr(open_page, web):
    live_visit_campaign(web)
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
