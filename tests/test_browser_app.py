"""The shopper app (/app/) in a real Chromium: sign up, consent, the browser's emulated position
(Playwright geolocation) walking into a store made through the REST API — the map, the "you
entered" notice, the coupon in the wallet and its full-screen QR (decoded with zxing-cpp);
fixes buffered offline and sent as one batch; the manifest and the service worker (the API is
never served from it); settings (withdraw consent, erase); the live room with a python-socketio
host (pin, poll, drop: vote, claim, slow mode, recovery after a dropped connection) and a guest;
Chinese; axe at phone and desktop.

See tests/browser.py for the browser, the server and the screenshots of failed tests.
"""

from __future__ import annotations

import io
import math
import re
import time

import pytest
import requests
import socketio
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from game.engine import roll_for
from tests.browser import (  # noqa: F401 - fixtures, passed to tests by name
    DESKTOP,
    PASSWORD,
    PHONE,
    assert_accessible,
    assert_glyphs_render,
    launch_browser,
    open_page,
    page_errors,
    web,
)
from tests.test_browser_console_funnel import FunnelShop
from tests.test_browser_consoles import sign_in
from tests.test_browser_studio import Viewer

TOKEN_KEY = "footfall.token"


def located(lat: float, lon: float) -> dict:
    """Context options: the browser may locate the page, at (lat, lon), 5 m accurate."""
    return {
        "permissions": ["geolocation"],
        "geolocation": {"latitude": lat, "longitude": lon, "accuracy": 5},
    }


def api(web, method: str, path: str, token: str, body=None):
    response = requests.request(
        method, web.url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert response.ok, (path, response.status_code, response.text)
    return (
        response.json()
        if response.headers["Content-Type"].startswith("application/json")
        else response
    )


def accessible_at_both_widths(page) -> None:
    """axe-core finds nothing serious at the phone's width and at the desktop's."""
    width = page.viewport_size["width"]
    for size in (PHONE, DESKTOP):
        page.set_viewport_size({"width": size, "height": 844 if size == PHONE else 800})
        assert_accessible(page)
    page.set_viewport_size({"width": width, "height": 844 if width == PHONE else 800})


def assert_compact_header(page) -> None:
    """On a phone the header is one row (the name, the language, "Sign out": 53 px measured,
    where it took 4 rows, 215 px, before): the address signed in is only for screen readers."""
    header = page.locator("header.bar")
    expect(header.get_by_role("button", name=re.compile("Sign out|退出登录"))).to_be_visible()
    assert header.bounding_box()["height"] < 64
    assert header.locator(".who").bounding_box()["height"] <= 1


def consenting_shopper(web) -> dict:
    user = web.user("shopper")
    headers = web.login(user)
    response = requests.put(
        web.url + "/api/me/consent", json={"location": True}, headers=headers, timeout=5
    )
    assert response.ok, response.text
    return user


@pytest.fixture
def shop(web):
    """A store with a live campaign whose visit offer is issued on entering, and its game."""
    made = FunnelShop(web)
    game = {
        "species": [{"id": "dumpling", "name": "Dumpling", "rarity": "common", "weight": 1}],
        "density_per_cell": 20,
        "store_density": 20,
        "seed": "shopper-app",
    }
    response = requests.put(
        f"{web.url}/api/campaigns/{made.cid}/game", json=game, headers=made.marketer, timeout=5
    )
    assert response.ok, response.text
    return made


def test_a_new_shopper_signs_up_consents_and_walks_into_a_store(open_page, web, shop):
    page = open_page("/app/", width=PHONE, **located(shop.lat, shop.lon))
    page.get_by_role("button", name="Create an account").click()
    page.get_by_label("Your name (optional)").fill("Mei")
    email = f"mei-{time.time_ns()}@example.test"
    page.get_by_role("textbox", name="Email").fill(email)
    page.locator("#sign-up-password").fill(PASSWORD)
    accessible_at_both_widths(page)
    page.get_by_role("button", name="Create account").click()

    # The consent screen says what is collected and for how long (the server's 24 h).
    expect(page.get_by_role("heading", name="Your location")).to_be_visible()
    expect(page.get_by_text("kept for at most 24 hours")).to_be_visible()
    expect(page.locator("#track-status")).to_have_text("Location is off.")
    accessible_at_both_widths(page)
    page.get_by_role("button", name="Allow location").click()

    # The position is inside the store's fence: the map, the store, the entry, the coupon.
    expect(page.locator("#app-map")).to_have_attribute("data-position", f"{shop.lat},{shop.lon}")
    store = page.locator("#store-list li", has_text=shop.store_name)
    expect(store).to_contain_text("open")
    expect(page.locator("#app-map")).to_have_attribute("data-stores", "1")
    expect(page.locator("#notices")).to_contain_text(f"You entered {shop.store_name}.")
    # The campaign's creatures around the shopper, with the server's sprite, on the map too.
    creature = page.locator("#spawn-list li").first
    expect(creature).to_contain_text("Dumpling")
    sprite = f"/api/game/sprites/{shop.cid}/dumpling.png"
    expect(creature.locator("img")).to_have_attribute("src", sprite)
    expect(page.locator(f'#app-map img.creature[src="{sprite}"]').first).to_be_attached()
    # Only the /shopper socket says that a coupon was issued (the visit's consumer issues it).
    expect(page.locator("#notices")).to_contain_text("New coupon in your wallet: ¥5 off")
    accessible_at_both_widths(page)

    token = page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")
    page.get_by_role("link", name="Wallet").click()
    coupon = page.locator("#coupon-list li").first
    expect(coupon).to_contain_text("¥5 off")
    expect(coupon).to_contain_text("Ready to use")
    expect(coupon).to_contain_text(f"Earned at {shop.store_name}")
    card = coupon.locator("img.coupon-card")
    # Fetched with the token in a header, shown through an object URL: no token in a URL.
    expect(card).to_have_attribute("src", re.compile(r"^blob:"))
    expect(card).to_have_js_property("complete", True)
    assert card.evaluate("img => img.naturalWidth") == 600
    accessible_at_both_widths(page)

    coupon.get_by_role("link", name="Show QR code").click()
    qr = page.locator("#qr-image")
    expect(qr).to_have_attribute("src", re.compile(r"^blob:"))
    expect(qr).to_have_js_property("complete", True)
    coupon_id = page.evaluate("location.hash").split("/")[-1]
    mine = api(web, "GET", f"/api/wallet/{coupon_id}", token)
    expect(page.locator("#short-code")).to_have_text(mine["code"])
    expect(page.get_by_text("Turn your screen brightness up")).to_be_visible()
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr.screenshot())))
    assert [d.text for d in decoded] == [mine["token"]]
    accessible_at_both_widths(page)
    page.get_by_role("button", name="Back to the wallet").click()
    expect(page.locator("#coupon-list")).to_be_visible()


def test_fixes_made_offline_are_sent_as_one_batch_when_back_online(open_page, web):
    user = consenting_shopper(web)
    lat, lon = 31.10, 121.30  # far from every store of the module
    page = open_page("/app/", width=PHONE, **located(lat, lon))
    sign_in(page, user["email"])
    expect(page.locator("#track-status")).to_have_attribute("data-sent", "1")
    token = page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")
    assert token

    page.context.set_offline(True)
    expect(page.locator("#track-status")).to_contain_text("Offline")
    page.context.set_geolocation({"latitude": lat + 0.0001, "longitude": lon, "accuracy": 5})
    expect(page.locator("#track-waiting")).to_have_text("1 fixes waiting to be sent")
    page.context.set_geolocation({"latitude": lat + 0.0002, "longitude": lon, "accuracy": 5})
    expect(page.locator("#track-waiting")).to_have_text("2 fixes waiting to be sent")
    accessible_at_both_widths(page)

    # The buffer keeps the newest 100 fixes and says how many of the oldest it dropped.
    for step in range(3, 102):
        page.context.set_geolocation(
            {"latitude": lat + 0.0001 * step, "longitude": lon, "accuracy": 5}
        )
        expect(page.locator("#track-waiting")).to_contain_text(f"{min(step, 100)} fixes")
    expect(page.locator("#track-dropped")).to_have_text(
        "1 oldest fixes dropped (at most 100 are kept)"
    )

    with page.expect_request("**/api/location/fixes") as sent:
        page.context.set_offline(False)
    batch = sent.value.post_data_json["fixes"]
    expected = [round(lat + 0.0001 * step, 6) for step in range(2, 102)]
    assert [f["lat"] for f in batch] == expected
    expect(page.locator("#track-status")).to_have_attribute("data-sent", "101")
    expect(page.locator("#track-waiting")).to_have_count(0)
    kept = api(web, "GET", "/api/location/fixes", token)["items"]
    assert [round(f["lat"], 6) for f in kept] == [lat, *expected]


def test_the_app_installs_and_its_worker_never_caches_the_api(open_page, web):
    manifest = requests.get(web.url + "/app/manifest.webmanifest", timeout=5)
    assert manifest.headers["Content-Type"].startswith("application/manifest+json")
    doc = manifest.json()
    assert doc["start_url"] == "/app/" and doc["display"] == "standalone"
    assert {icon["sizes"] for icon in doc["icons"]} == {"192x192", "512x512"}
    for icon in doc["icons"]:
        image = Image.open(io.BytesIO(requests.get(web.url + icon["src"], timeout=5).content))
        assert f"{image.width}x{image.height}" == icon["sizes"]
    worker = requests.get(web.url + "/app/sw.js", timeout=5)
    assert worker.headers["Content-Type"].startswith("text/javascript")

    user = consenting_shopper(web)
    lat, lon = 31.11, 121.30
    page = open_page("/app/", width=DESKTOP, **located(lat, lon))
    scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    assert scope == web.url + "/app/"
    from_worker = {}
    page.on("response", lambda r: from_worker.__setitem__(r.url, r.from_service_worker))
    page.reload()  # now controlled by the worker
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    sign_in(page, user["email"])
    expect(page.locator("#track-status")).to_have_attribute("data-sent", "1")
    assert from_worker[web.url + "/static/app/app-map.js"] is True  # the shell: through it
    assert from_worker[web.url + "/api/me/consent"] is False  # the API: never
    assert from_worker[web.url + "/api/location/fix"] is False
    cached = page.evaluate(
        """async () => {
          const urls = [];
          for (const name of await caches.keys()) {
            for (const request of await (await caches.open(name)).keys()) urls.push(request.url);
          }
          return urls;
        }"""
    )
    assert web.url + "/static/app/app.js" in cached
    assert web.url + "/vendor/leaflet/leaflet.js" in cached
    assert not [url for url in cached if "/api/" in url]

    # Offline, a reload opens the app from the cache; fixes wait on the device.
    page.context.set_offline(True)
    page.reload()
    expect(page.locator("#track-status")).to_contain_text("Offline")
    expect(page.locator("#track-waiting")).to_have_text("1 fixes waiting to be sent")
    page.context.set_geolocation({"latitude": lat + 0.0001, "longitude": lon, "accuracy": 5})
    expect(page.locator("#track-waiting")).to_have_text("2 fixes waiting to be sent")
    with page.expect_request("**/api/location/fixes"):
        page.context.set_offline(False)
    expect(page.locator("#track-waiting")).to_have_count(0)


def test_settings_withdraw_consent_and_erase_the_account(open_page, web):
    user = consenting_shopper(web)
    page = open_page("/app/#settings", width=DESKTOP, **located(31.10, 121.31))
    sign_in(page, user["email"])
    expect(page.locator("#consent-state")).to_contain_text("You allow location")
    expect(page.locator("#settings-account")).to_have_text(f"Signed in as {user['email']}.")
    token = page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")
    expect(page.locator("#track-status")).to_have_attribute("data-sent", "1")
    accessible_at_both_widths(page)
    page.get_by_role("button", name="Withdraw consent").click()
    expect(page.locator("#settings-status")).to_have_text(
        "Consent withdrawn: your stored fixes were deleted."
    )
    assert api(web, "GET", "/api/me/consent", token)["location"] is False
    assert api(web, "GET", "/api/location/fixes", token)["items"] == []
    expect(page.locator("#track-status")).to_have_text("Location is off.")

    page.get_by_role("button", name="Erase my account").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    accessible_at_both_widths(page)
    page.get_by_role("button", name="Erase for good").click()
    expect(page.locator("#app-notice")).to_have_text("Your account was erased.")
    response = requests.post(
        web.url + "/api/auth/login",
        json={"email": user["email"], "password": PASSWORD},
        timeout=5,
    )
    assert response.status_code == 401


def test_the_app_in_chinese(open_page, web):
    user = web.user("shopper")
    page = open_page("/app/", width=PHONE, locale="zh-CN")
    expect(page.get_by_role("button", name="创建账号")).to_be_visible()
    sign_in(page, user["email"])
    expect(page.get_by_role("heading", name="您的位置")).to_be_visible()
    assert_compact_header(page)
    assert_glyphs_render(page, ".consent")
    accessible_at_both_widths(page)
    page.get_by_role("link", name="卡券包").click()
    expect(page.locator("#wallet-empty")).to_have_text("还没有优惠券：走进活动门店即可获得。")
    accessible_at_both_widths(page)
    page.set_viewport_size({"width": DESKTOP, "height": 800})
    page.get_by_role("link", name="设置").click()
    expect(page.locator("#consent-state")).to_contain_text("未允许使用位置")
    assert_glyphs_render(page, "#app-view")
    accessible_at_both_widths(page)


# --- Live: the list and the room -------------------------------------------------------------


class LiveShow:
    """A live stream made over REST by a marketer (a campaign with a live-drop offer, a product
    with an image), hosted by a python-socketio client on /host that goes live."""

    def __init__(self, web, title: str) -> None:
        self.web = web
        self.title = title
        marketer = web.login(web.user("marketer"))
        now = int(time.time())

        def post(path, status=201, **kwargs):
            response = requests.post(web.url + path, headers=marketer, timeout=10, **kwargs)
            assert response.status_code == status, response.text
            return response.json()

        cid = post(
            "/api/campaigns",
            json={"name": f"{title} drops", "starts_at": now - 3600, "ends_at": now + 86_400},
        )["id"]
        self.offer_id = post(
            f"/api/campaigns/{cid}/offers",
            json={
                "name": "Live ¥10 off",
                "kind": "amount_off",
                "amount_off_fen": 1000,
                "channels": ["live_drop"],
            },
        )["id"]
        post(f"/api/campaigns/{cid}/transition", 200, json={"to": "scheduled"})
        host = web.user("host")
        self.id = post(
            "/api/streams",
            json={
                "title": title,
                "brand": "Live Brand",
                "playback_url": "https://video.example/show.m3u8",
                "hosts": [host["id"]],
                "starts_at": now + 60,
                "campaign_id": cid,
            },
        )["id"]
        image = io.BytesIO()
        Image.new("RGB", (300, 200), (200, 40, 40)).save(image, "PNG")
        self.product = post(
            f"/api/streams/{self.id}/products",
            data={"name": "Red scarf", "price_fen": "12900"},
            files={"image": ("scarf.png", image.getvalue(), "image/png")},
        )
        self.host = socketio.Client(reconnection=False)
        self.host.connect(
            web.url,
            transports=["websocket"],
            namespaces=["/host"],
            auth={"token": web.login(host)["Authorization"][7:], "stream_id": self.id},
            wait_timeout=10,
        )

    def emit(self, event: str, data: dict | None = None) -> dict:
        answer = self.host.call(event, data or {}, namespace="/host", timeout=10)
        assert not (isinstance(answer, dict) and "error" in answer), answer
        return answer

    def close(self) -> None:
        self.host.disconnect()


def silent_mp3(seconds: float) -> bytes:
    """MPEG-1 Layer III frames of silence (32 kbit/s, 44.1 kHz, mono; 1152 samples each): a
    4-byte header and side information of zeros (no audio data), padded to the frame's 104
    bytes. A media element plays them, so the live room's player has a stream to play."""
    frame = bytes([0xFF, 0xFB, 0x10, 0xC0]) + bytes(100)
    return frame * math.ceil(seconds * 44_100 / 1152)


# An HLS playlist of one 30-second segment of silent MP3 (packed audio, which hls.js plays):
# long enough that the video is still playing, not at its end, when the test looks.
PLAYLIST = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:30
#EXT-X-MEDIA-SEQUENCE:0
#EXTINF:30.0,
segment0.mp3
#EXT-X-ENDLIST
"""


def serve_stream(page, requested: list[str]) -> None:
    """Serve the show's https://video.example/ stream to the page's context (its service
    worker's requests too): the playlist and its segment; anything else is a 404."""

    def serve(route):
        url = route.request.url
        requested.append(url)
        if url.endswith("/show.m3u8"):
            route.fulfill(status=200, content_type="application/vnd.apple.mpegurl", body=PLAYLIST)
        elif url.endswith("/segment0.mp3"):
            route.fulfill(status=200, content_type="audio/mpeg", body=silent_mp3(30))
        else:
            route.fulfill(status=404, body="")

    page.context.route("https://video.example/**", serve)


@pytest.fixture
def show(web):
    made = LiveShow(web, f"Scarf show {time.time_ns()}")
    yield made
    made.close()


def test_a_shopper_watches_a_live_room_votes_claims_and_recovers_after_a_drop(open_page, web, show):
    shopper = web.user("shopper")
    show.emit("start")
    page = open_page("/app/#live", width=PHONE)
    requested = []
    serve_stream(page, requested)
    sign_in(page, shopper["email"])
    expect(page.locator(f'#live-now li[data-stream-id="{show.id}"]')).to_contain_text(show.title)
    assert_compact_header(page)
    accessible_at_both_widths(page)
    page.locator(f'#live-now li[data-stream-id="{show.id}"] a').click()
    room = page.locator("#live-room")
    expect(room).to_have_attribute("data-joined", "true")
    expect(page.locator("#room-title")).to_have_text(show.title)
    # The video: hls.js (from npm, /vendor/hls.js/) plays the show's HLS stream, muted.
    player = page.locator("#room-player")
    expect(player).to_have_attribute("data-player", "hls.js")
    expect(player).to_have_attribute("data-state", "ready")
    expect(page.get_by_label("Live video (muted)")).to_be_visible()
    page.wait_for_function(
        "() => { const v = document.querySelector('#room-video');"
        " return v.readyState >= 3 && v.currentTime > 0.25 && !v.paused && v.muted; }"
    )
    assert requested[:2] == [
        "https://video.example/show.m3u8",
        "https://video.example/segment0.mp3",
    ]

    # The host pins the product: the viewer sees it with the server's thumbnail.
    show.emit("pin", {"product_id": show.product["id"]})
    pinned = page.locator(f'#room-pinned li[data-product-id="{show.product["id"]}"]')
    expect(pinned).to_contain_text("Red scarf")
    expect(pinned).to_contain_text("¥129.00")
    thumb = pinned.locator("img")
    expect(thumb).to_have_js_property("complete", True)
    assert thumb.evaluate("img => img.naturalWidth") == show.product["image"]["thumb_width"]
    # The host marks it sold out: the pinned product says so.
    show.emit("sold_out", {"product_id": show.product["id"], "sold_out": True})
    expect(pinned.locator(".badge.sold-out")).to_have_text("Sold out")

    # A poll: the viewer votes and sees the server's tallies.
    show.emit(
        "poll_start", {"question": "Which colour?", "options": ["red", "blue"], "duration_s": 60}
    )
    expect(page.locator("#room-poll legend")).to_have_text("Which colour?")
    page.get_by_role("button", name="blue (0)").click()
    expect(page.get_by_role("button", name="blue (1)")).to_be_visible()
    expect(page.locator("#poll-note")).to_have_text("Thanks, your vote counts.")

    # A drop of 3 coupons: the viewer claims one; it is in the wallet (the API says so).
    drop = show.emit("drop", {"offer_id": show.offer_id, "quantity": 3, "window_s": 60})
    expect(page.locator("#drop-remaining")).to_have_text("3 of 3 left")
    expect(page.locator("#drop-countdown")).to_contain_text("s to claim")
    accessible_at_both_widths(page)
    page.get_by_role("button", name="Claim a coupon").click()
    expect(page.locator("#drop-result")).to_contain_text("You won")
    expect(page.locator("#drop-remaining")).to_have_text("2 of 3 left")
    expect(page.get_by_role("button", name="Claim a coupon")).to_be_disabled()
    token = page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")
    wallet = api(web, "GET", "/api/wallet", token)["items"]
    assert [(c["source"]["channel"], c["source"]["drop_id"]) for c in wallet] == [
        ("live_drop", drop["id"])
    ]

    # A comment of the viewer's own.
    page.get_by_label("Your comment").fill("Lovely colour")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#room-comments li", has_text="Lovely colour")).to_have_count(1)
    # Slow mode: the next comment is refused and the refusal is shown by the field.
    show.emit("slow_mode", {"seconds": 120})
    page.get_by_label("Your comment").fill("And again")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#room-comment-error")).to_contain_text("Slow mode is on")
    expect(page.locator("#room-comments li", has_text="And again")).to_have_count(0)

    # Likes: the room's total comes back from the server.
    page.get_by_role("button", name="Like ♥").click()
    expect(page.locator("#room-likes")).to_have_text("Likes: 1")

    # Questions: the viewer asks; another viewer asks too; one's own cannot be upvoted,
    # another's can (the count from the server's answer).
    other = Viewer(web, show.id)
    page.get_by_label("Your question").fill("Is it wool?")
    page.get_by_role("button", name="Ask").click()
    mine = page.locator("#room-questions li", has_text="Is it wool?")
    expect(mine).to_have_count(1)
    asked = other.call("ask", {"text": "Other colours?"})
    assert "question" in asked, asked
    theirs = page.locator("#room-questions li", has_text="Other colours?")
    theirs.get_by_role("button").click()
    expect(theirs.get_by_role("button")).to_have_text("▲ 1")
    mine.get_by_role("button").click()
    expect(mine).to_contain_text("You cannot upvote your own question.")

    # The network drops; a comment is posted meanwhile by another viewer; the socket comes
    # back, joins with its last offset and shows the comment exactly once.
    page.evaluate("document.querySelector('#live-room').liveSocket.io.engine.close()")
    text = "Said while you were away"
    said = other.call("comment", {"text": text})
    assert "comment" in said, said
    other.close()
    expect(room).to_have_attribute("data-recovered", "1")
    expect(page.locator("#room-comments li", has_text="Said while you were away")).to_have_count(1)
    expect(page.locator("#room-comments li", has_text="Lovely colour")).to_have_count(1)
    accessible_at_both_widths(page)


def test_a_guest_watches_a_live_room_in_chinese_without_an_account(open_page, web, show):
    show.emit("start")
    show.emit("pin", {"product_id": show.product["id"]})
    show.emit("sold_out", {"product_id": show.product["id"], "sold_out": True})
    page = open_page("/app/", width=DESKTOP, locale="zh-CN")
    # The show's playlist cannot be loaded: the room's player says so, with hls.js's reason.
    page.context.route("https://video.example/**", lambda route: route.fulfill(status=404))
    page.get_by_role("button", name="以访客身份观看直播").click()
    expect(page.locator("#live-title")).to_have_text("直播")
    entry = page.locator(f'#live-now li[data-stream-id="{show.id}"]')
    expect(entry).to_contain_text(show.title)
    token = page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")
    assert api(web, "GET", "/api/me", token)["role"] == "guest"
    accessible_at_both_widths(page)
    entry.locator("a").click()
    expect(page.locator("#live-room")).to_have_attribute("data-joined", "true")
    expect(page.locator("#room-status")).to_have_text("直播中")
    expect(page.locator("#room-player")).to_have_attribute("data-state", "failed")
    expect(page.locator("#room-player-note")).to_have_text("视频无法播放（manifestLoadError）。")
    expect(page.locator("#room-video")).to_have_count(0)
    expect(page.locator("#room-pinned li")).to_contain_text("Red scarf")
    expect(page.locator("#room-pinned li .badge.sold-out")).to_have_text("已售罄")
    # A guest watches: no comment form, no like button; the poll's buttons are disabled.
    expect(page.locator("#room-comment-form")).to_have_count(0)
    expect(page.locator("#room-like")).to_have_count(0)
    show.emit("poll_start", {"question": "颜色？", "options": ["红", "蓝"], "duration_s": 60})
    expect(page.locator("#room-poll button").first).to_be_disabled()
    # A shopper's comment reaches the guest.
    viewer = Viewer(web, show.id)
    viewer.call("comment", {"text": "好漂亮的围巾"})
    viewer.close()
    expect(page.locator("#room-comments li", has_text="好漂亮的围巾")).to_have_count(1)
    assert_glyphs_render(page, "#live-room")
    accessible_at_both_widths(page)


# --- The AR catch view and the radar -------------------------------------------------------


def test_the_bearing_module_with_known_coordinates(open_page, web):
    page = open_page("/app/", width=PHONE)
    got = page.evaluate(
        """async () => {
          const b = await import("/static/app/app-bearing.js");
          return {
            east: b.bearingDeg(0, 0, 0, 1),
            north: b.bearingDeg(31.2, 121.4, 31.3, 121.4),
            southwest: b.bearingDeg(31.2304, 121.4737, 31.2204, 121.4637),
            degree: b.distanceM(0, 0, 0, 1),
            ios: b.headingOf({ webkitCompassHeading: 75 }),
            absolute: b.headingOf({ type: "deviceorientationabsolute", alpha: 90 }),
            flagged: b.headingOf({ type: "deviceorientation", absolute: true, alpha: 0 }),
            relative: b.headingOf({ type: "deviceorientation", absolute: false, alpha: 90 }),
            left: b.relativeBearing(350, 10),
            right: b.relativeBearing(10, 350),
            middle: b.screenX(0, 390, 60),
            edge: b.screenX(30, 390, 60),
            off: b.screenX(31, 390, 60),
            radarNorth: b.radarPoint(0, 50, 100, 200),
            radarEast: b.radarPoint(90, 500, 100, 200),
            near: b.spriteSize(1, 0.35, 1, 390),
            far: b.spriteSize(1000, 0.35, 1, 390),
            big: b.spriteSize(1, 1.4, 2, 390),
          };
        }"""
    )
    assert got["east"] == pytest.approx(90)
    assert got["north"] == pytest.approx(0, abs=1e-9)
    # Shanghai, 1.1 km south-west: a little less than 225 degrees (the meridians converge).
    assert got["southwest"] == pytest.approx(220.5, abs=0.5)
    assert got["degree"] == pytest.approx(111_195, rel=1e-3)
    assert (got["ios"], got["absolute"], got["flagged"], got["relative"]) == (75, 270, 0, None)
    assert (got["left"], got["right"]) == (-20, 20)
    assert (got["middle"], got["edge"], got["off"]) == (195, 390, None)
    assert got["radarNorth"] == pytest.approx({"x": 100, "y": 50})
    assert got["radarEast"] == pytest.approx({"x": 200, "y": 100})
    # 0.35 m at 1 m through a 60 degree camera 390 px wide: 195 / tan(30) * 0.35 = 118 px;
    # kept within 24 and 240 px.
    assert (got["near"], got["far"], got["big"]) == (118, 24, 240)


def catchable(spawns: list[dict], shopper_id: str) -> dict:
    """A creature within reach whose first throw catches (the server's deterministic roll).

    The AR view paints nearer creatures over farther ones, so the pick is one that no nearer
    creature within 30 degrees of its bearing can cover.
    """
    rates = {"common": 0.85, "rare": 0.55, "epic": 0.30, "legendary": 0.15}

    def apart(a: float, b: float) -> float:
        return abs((a - b + 180) % 360 - 180)

    for spawn in spawns:
        covered = any(
            other["distance_m"] < spawn["distance_m"]
            and apart(other["bearing_deg"], spawn["bearing_deg"]) < 30
            for other in spawns
        )
        if (
            not covered
            and spawn["distance_m"] < 60
            and roll_for(spawn["id"], shopper_id, 1)[0] < rates[spawn["rarity"]]
        ):
            return spawn
    raise AssertionError("no creature within reach that a first throw catches")


def test_the_ar_view_shows_a_creature_in_front_and_a_throw_catches_it(browser, web, shop, request):
    shopper = consenting_shopper(web)
    camera = launch_browser(
        ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    )
    context = camera.new_context(
        viewport={"width": PHONE, "height": 844},
        **{**located(shop.lat, shop.lon), "permissions": ["geolocation", "camera"]},
    )
    context.set_default_timeout(10_000)
    errors: list[str] = []
    try:
        page = context.new_page()
        page_errors(page, errors)
        page.goto(web.url + "/app/#catch")
        sign_in(page, shopper["email"])
        view = page.locator("#catch-view")
        expect(view).to_have_attribute("data-camera", "on")
        expect(view).to_have_attribute("data-spawns", re.compile(r"^[1-9]"))
        # The camera is on but no compass has spoken yet: the radar.
        expect(view).to_have_attribute("data-mode", "radar")
        token = page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")
        spawns = api(web, "GET", "/api/game/spawns?radius_m=200", token)["spawns"]
        spawn = catchable(spawns, shopper["id"])

        # The phone faces the creature (Chromium's absolute event: heading = 360 - alpha).
        turn = (
            "a => window.dispatchEvent(new DeviceOrientationEvent('deviceorientationabsolute',"
            " {alpha: a, beta: 90, gamma: 0, absolute: true}))"
        )
        page.evaluate(turn, (360 - spawn["bearing_deg"]) % 360)
        expect(view).to_have_attribute("data-mode", "ar")
        creature = page.locator(f'#catch-layer [data-spawn-id="{spawn["id"]}"]')
        expect(creature).to_be_visible()
        expect(creature.locator("img")).to_have_attribute("src", spawn["sprite_url"])
        stage = page.locator("#catch-stage").bounding_box()
        box = creature.bounding_box()
        assert box["x"] + box["width"] / 2 == pytest.approx(stage["x"] + stage["width"] / 2, abs=2)
        # Turned 20 degrees to its left, the creature is right of the middle, where a 60 degree
        # camera puts it: w/2 + tan(20) * (w/2) / tan(30).
        page.evaluate(turn, (360 - spawn["bearing_deg"] + 20) % 360)
        half = stage["width"] / 2
        expected = half + math.tan(math.radians(20)) * half / math.tan(math.radians(30))
        expect(creature).to_have_attribute("data-x", str(round(expected)))

        # Pick it and throw (the button; a swipe up does the same).
        creature.click()
        expect(page.locator("#catch-target")).to_contain_text(spawn["name"])
        page.get_by_role("button", name="Throw").click()
        expect(page.locator("#catch-result")).to_contain_text(f"You caught {spawn['name']}!")
        expect(view).to_have_attribute("data-outcome", "caught")
        expect(page.locator(f'[data-spawn-id="{spawn["id"]}"]')).to_have_count(0)
        after = api(web, "GET", "/api/game/spawns?radius_m=200", token)["spawns"]
        assert [s["caught"] for s in after if s["id"] == spawn["id"]] == [True]
        accessible_at_both_widths(page)
        assert not errors, errors
    finally:
        context.close()
        camera.close()


def test_the_radar_without_a_camera_in_english_and_chinese(open_page, web, shop):
    shopper = consenting_shopper(web)
    page = open_page("/app/#catch", width=DESKTOP, **located(shop.lat, shop.lon))
    sign_in(page, shopper["email"])
    view = page.locator("#catch-view")
    expect(view).to_have_attribute("data-camera", "off")
    expect(view).to_have_attribute("data-mode", "radar")
    expect(page.locator("#catch-mode")).to_have_text(
        "No camera here: the radar shows where the creatures are."
    )
    expect(view).to_have_attribute("data-spawns", re.compile(r"^[1-9]"))
    count = int(view.get_attribute("data-spawns"))
    expect(page.locator("#catch-radar .creature-button")).to_have_count(count)
    accessible_at_both_widths(page)
    # Keyboard: pick from the list; then the throw gesture, a swipe up on the view.
    token = page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")
    spawn = catchable(
        api(web, "GET", "/api/game/spawns?radius_m=200", token)["spawns"], shopper["id"]
    )
    page.locator(f'#catch-list li[data-spawn-id="{spawn["id"]}"] button').focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Throw")).to_be_enabled()
    # The swipe starts below the stage's middle, inside the viewport (the width changes above
    # may have scrolled the page: find the stage again).
    page.locator("#catch-stage").scroll_into_view_if_needed()
    stage = page.locator("#catch-stage").bounding_box()
    x, y = stage["x"] + 20, stage["y"] + stage["height"] / 2 + 75
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y - 150, steps=5)
    page.mouse.up()
    expect(page.locator("#catch-result")).to_contain_text(f"You caught {spawn['name']}!")
    expect(page.locator(f'#catch-radar [data-spawn-id="{spawn["id"]}"]')).to_have_count(0)

    zh = open_page("/app/#catch", width=PHONE, locale="zh-CN", **located(shop.lat, shop.lon))
    sign_in(zh, shopper["email"])
    expect(zh.locator("#catch-title")).to_have_text("捕捉小精灵")
    expect(zh.locator("#catch-view")).to_have_attribute("data-mode", "radar")
    expect(zh.locator("#catch-mode")).to_have_text("这里没有相机：雷达显示小精灵的位置。")
    assert_glyphs_render(zh, "#catch-view")
    accessible_at_both_widths(zh)
    # Every creature sits inside the radar's rim (the radar spans the 200 m asked for).
    inside = zh.evaluate(
        """() => {
          const radar = document.querySelector("#catch-radar").getBoundingClientRect();
          return [...document.querySelectorAll("#catch-radar .creature-button")].every((b) => {
            const r = b.getBoundingClientRect();
            const dx = r.x + r.width / 2 - (radar.x + radar.width / 2);
            const dy = r.y + r.height / 2 - (radar.y + radar.height / 2);
            return Math.hypot(dx, dy) + r.width / 2 <= radar.width / 2 + 1;
          });
        }"""
    )
    assert inside

    # A street of stores: the map lists the nearest 8, the rest behind "Show all".
    for i in range(9):
        shop.post(
            "/api/stores",
            {
                "id": f"{shop.store_id}-n{i}",
                "name": f"Neighbour {i}",
                "brand": "FunnelBrand",
                "city": "Shanghai",
                "lat": shop.lat + 0.002 + 0.0004 * i,
                "lon": shop.lon,
                "fence": {"type": "circle", "radius_m": 20},
            },
        )
    zh.get_by_role("link", name="地图").click()
    expect(zh.locator("#app-map")).to_have_attribute("data-stores", "10")
    expect(zh.locator("#store-list li[data-store-id]:visible")).to_have_count(8)
    zh.get_by_role("button", name="显示全部 10 家店铺").click()
    expect(zh.locator("#store-list li[data-store-id]:visible")).to_have_count(10)
    expect(zh.locator("#store-list-all")).to_have_count(0)
