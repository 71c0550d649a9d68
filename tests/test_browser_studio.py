"""The host studio (/studio/) in a real Chromium: a host schedules a stream in the form, adds
products with pictures by the file input and by drag-and-drop (the server's thumbnails show),
goes live, pins a product that a viewer on /live (python-socketio) receives, starts a prepared
poll whose tally moves when a viewer votes, and finds the same pins and poll after a reload;
another host's stream is refused; two hosts share a room and moderate its chat; the live
feedback charts and alerts; the HLS preview (hls.js); Chinese; axe at phone and desktop.

A whole show (drop of 5 coupons claimed by 20 python-socketio viewers and 2 browser viewers of
the shopper app, a reload mid-drop, the after-show report and its CSV downloads) is one test
in tests/test_browser_show.py, which imports this module's helpers (Viewer, drop_campaign)."""

from __future__ import annotations

import base64
import io
import queue
import re
import time

import requests
import socketio
from PIL import Image
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

# Every account of this module (hosts, python-socketio viewers) signs in from this one
# address: the per-address login limit (50 in 5 minutes) is raised for the module's server.
WEB_ENV = {"LOGIN_IP_MAX_ATTEMPTS": "500"}


def png(color: tuple[int, int, int], size: int = 200) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, "PNG")
    return out.getvalue()


class Viewer:
    """A shopper watching a stream on /live with python-socketio."""

    def __init__(self, web, sid: str) -> None:
        self.user = web.user("shopper")
        self.headers = headers = web.login(self.user)
        self.events: queue.Queue[tuple[str, dict]] = queue.Queue()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", lambda name, data: self.events.put((name, data)), namespace="/live")
        self.sio.connect(
            web.url,
            transports=["websocket"],
            namespaces=["/live"],
            auth={"token": headers["Authorization"][7:]},
            wait_timeout=10,
        )
        self.state = self.call("join", {"stream_id": sid})["state"]

    def call(self, event: str, data: dict) -> dict:
        return self.sio.call(event, data, namespace="/live", timeout=10)

    def next_event(self, timeout: float = 10.0) -> tuple[str, dict]:
        """Return the next event heard, whatever its name."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"nothing heard within {timeout} s") from None

    def wait_for(self, name: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got, data = self.events.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if got == name:
                return data
        raise AssertionError(f"no {name!r} within {timeout} s")

    def close(self) -> None:
        self.sio.disconnect()


def schedule(web, host: dict, headers: dict, title: str, products: int = 0) -> str:
    """Schedule a stream over REST (hosted by `host`) with JSON products; return its id."""
    response = requests.post(
        web.url + "/api/streams",
        headers=headers,
        json={
            "title": title,
            "brand": "Studio Brand",
            "playback_url": "https://video.example/live.m3u8",
            "hosts": [host["id"]],
            "starts_at": time.time() + 3600,
        },
        timeout=10,
    )
    assert response.status_code == 201, response.text
    sid = response.json()["id"]
    for i in range(products):
        added = requests.post(
            f"{web.url}/api/streams/{sid}/products",
            headers=headers,
            json={"name": f"Scarf {i + 1}", "price_fen": 12900 + i},
            timeout=10,
        )
        assert added.status_code == 201, added.text
    return sid


def signed_in(open_page, web, host, path="/studio/", **kwargs):
    page = open_page(path, **kwargs)
    sign_in(page, host["email"])
    expect(page.locator(".welcome")).to_be_visible()
    return page


def test_host_schedules_a_stream_and_adds_products_by_file_input_and_drop(open_page, web):
    host = web.user("host")
    page = signed_in(open_page, web, host, width=PHONE)
    expect(page.get_by_text("No streams yet.")).to_be_visible()
    assert_accessible(page)
    page.locator("#stream-new").click()
    form = page.locator("form.stream-form")
    form.get_by_label("Title").fill("Autumn scarves")
    form.get_by_label("Brand").fill("Woolly")
    form.get_by_label("Playback URL (https://)").fill("http://not-https.example/x")
    form.get_by_label("Starts at").fill("2030-11-11T20:00")
    page.locator("#stream-save").click()
    # The server's refusal shows next to the field it names.
    error = page.locator('[data-error-for="playback_url"]')
    expect(error).to_contain_text("https")
    assert_accessible(page)
    form.get_by_label("Playback URL (https://)").fill("https://video.example/scarves.m3u8")
    page.locator("#stream-save").click()
    expect(page).to_have_url(re.compile(r"#streams/\d+$"))
    sid = page.url.rsplit("/", 1)[1]
    stream = requests.get(f"{web.url}/api/streams/{sid}", timeout=5).json()
    assert stream["title"] == "Autumn scarves"
    # 20:00 in Asia/Shanghai (the default zone) is 12:00 UTC.
    assert stream["starts_at"] == 1920628800

    # A product by the file input (keyboard users' way).
    page.get_by_label("Name", exact=True).fill("Red scarf")
    page.get_by_label("Price (¥)").fill("129.00")
    page.get_by_label("Picture").set_input_files(
        {"name": "red.png", "mimeType": "image/png", "buffer": png((200, 30, 30))}
    )
    page.locator("#product-add").click()
    first = page.locator("#product-list li.product").first
    expect(first).to_contain_text("Red scarf")
    expect(first).to_contain_text("¥129.00")
    # A product by a dropped file: a DataTransfer built in the page from the bytes.
    encoded = base64.b64encode(png((30, 30, 200), 300)).decode()
    page.get_by_label("Price (¥)").fill("88")
    page.evaluate(
        """(data) => {
          const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
          const transfer = new DataTransfer();
          transfer.items.add(new File([bytes], "blue-scarf.png", { type: "image/png" }));
          const zone = document.querySelector("#drop-zone");
          zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true }));
          zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
        }""",
        encoded,
    )
    expect(page.locator("#image-chosen")).to_contain_text("blue-scarf.png")
    expect(page.get_by_label("Name", exact=True)).to_have_value("blue-scarf")
    page.locator("#product-add").click()
    expect(page.locator("#product-list li.product")).to_have_count(2)
    expect(page.locator("#products-count")).to_have_text("2 of 50 products")
    stream = requests.get(f"{web.url}/api/streams/{sid}", timeout=5).json()
    assert [(p["name"], p["price_fen"]) for p in stream["products"]] == [
        ("Red scarf", 12900),
        ("blue-scarf", 8800),
    ]
    # The thumbnails are the server's (thumb.jpg, fits 240 px), loaded by the page.
    thumbs = page.locator("#product-list img.thumb")
    expect(thumbs).to_have_count(2)
    for i, product in enumerate(stream["products"]):
        src = thumbs.nth(i).get_attribute("src")
        assert src.startswith(f"/api/streams/{sid}/products/{product['id']}/thumb.jpg")
        page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=thumbs.nth(i).element_handle()
        )
        width = thumbs.nth(i).evaluate("(img) => img.naturalWidth")
        assert width == product["image"]["thumb_width"] <= 240
    assert_accessible(page)

    # Remove one; the list (My streams) shows the stream with its status and start time.
    page.get_by_role("button", name="Remove blue-scarf").click()
    expect(page.locator("#product-list li.product")).to_have_count(1)
    page.locator("a.back").click()
    row = page.locator(f'#streams-table tr[data-stream-id="{sid}"]')
    expect(row).to_contain_text("Autumn scarves")
    expect(row).to_contain_text("Scheduled")
    expect(row).to_contain_text("Asia/Shanghai")
    page.set_viewport_size({"width": DESKTOP, "height": 900})
    assert_accessible(page)


def test_live_screen_pins_runs_a_poll_and_comes_back_after_a_reload(open_page, web):
    host = web.user("host")
    headers = web.login(host)
    sid = schedule(web, host, headers, "Evening show", products=4)
    viewer = Viewer(web, sid)
    try:
        page = signed_in(open_page, web, host, path=f"/studio/#live/{sid}")
        expect(page.locator("#connection")).to_have_text("Connected")
        # Rehearsal: pinning works while scheduled, and no viewer hears it.
        expect(page.locator("#rehearsal")).to_be_visible()
        page.get_by_role("button", name="Pin Scarf 2").click()
        expect(page.locator("#pin-list li .pin-name")).to_have_text(["Scarf 2"])
        # Prepare a poll before the show.
        page.get_by_label("Question", exact=True).fill("Which colour?")
        page.get_by_label("Answers").fill("Red\nBlue")
        page.locator("#poll-save").click()
        expect(page.locator("#prepared-polls li")).to_have_count(1)
        assert_accessible(page)

        page.locator("#live-start").click()
        expect(page.locator(".live-head [data-status]")).to_have_attribute("data-status", "live")
        # Going live: the viewer's first events are the status, then the rehearsed pin (a pin
        # heard in the rehearsal would have come first).
        name, status = viewer.next_event()
        assert (name, status["status"]) == ("stream_status", "live")
        name, pinned = viewer.next_event()
        assert (name, [p["name"] for p in pinned["products"]]) == ("pinned", ["Scarf 2"])
        assert pinned["offset"] == status["offset"] + 1
        page.get_by_role("button", name="Pin Scarf 4").click()
        page.get_by_role("button", name="Pin Scarf 1").click()
        expect(page.locator("#pin-list li")).to_have_count(3)
        expect(page.get_by_role("button", name="Pin Scarf 3")).to_be_disabled()
        # Reorder: Scarf 1 up one place.
        page.get_by_role("button", name="Move Scarf 1 up").click()
        expect(page.locator("#pin-list li .pin-name")).to_have_text(
            ["Scarf 2", "Scarf 1", "Scarf 4"]
        )
        names = []
        while names != ["Scarf 2", "Scarf 1", "Scarf 4"]:
            names = [p["name"] for p in viewer.wait_for("pinned")["products"]]
        # Mark a pinned product sold out: the viewer hears it, the console shows the badge.
        page.get_by_role("button", name="Mark Scarf 1 sold out").click()
        sold = viewer.wait_for("product")
        assert (sold["name"], sold["sold_out"]) == ("Scarf 1", True)
        marks = {p["name"]: p["sold_out"] for p in viewer.wait_for("pinned")["products"]}
        assert marks == {"Scarf 2": False, "Scarf 1": True, "Scarf 4": False}
        expect(page.locator("#pin-list li", has_text="Scarf 1")).to_contain_text("Sold out")
        expect(page.get_by_role("button", name="Back in stock: Scarf 1")).to_be_visible()

        # One click starts the prepared poll; the viewer hears it and votes; the tally moves.
        page.get_by_role("button", name="Start the poll “Which colour?”").click()
        poll = viewer.wait_for("poll")
        assert poll["question"] == "Which colour?"
        viewer.call("vote", {"poll_id": poll["id"], "option": 1})
        second = Viewer(web, sid)
        second.call("vote", {"poll_id": poll["id"], "option": 1})
        second.close()
        expect(page.locator('#poll-tallies td[data-option="1"]')).to_have_text("2")
        expect(page.locator('#poll-tallies td[data-option="0"]')).to_have_text("0")
        assert_accessible(page)

        # A reload finds the same pins and poll (from the server's state).
        page.reload()
        expect(page.locator("#connection")).to_have_text("Connected")
        expect(page.locator("#pin-list li .pin-name")).to_have_text(
            ["Scarf 2", "Scarf 1", "Scarf 4"]
        )
        expect(page.locator("#pin-list li .sold-out")).to_have_count(1)
        expect(page.locator("#pin-list li", has_text="Scarf 1")).to_contain_text("Sold out")
        expect(page.locator("#current-poll")).to_contain_text("Which colour?")
        expect(page.locator('#poll-tallies td[data-option="1"]')).to_have_text("2")
        page.set_viewport_size({"width": PHONE, "height": 800})
        assert_accessible(page)
    finally:
        viewer.close()


def test_another_hosts_stream_is_refused_and_chinese_renders(open_page, web):
    owner = web.user("host")
    sid = schedule(web, owner, web.login(owner), "Owner's show", products=1)
    other = web.user("host")
    page = signed_in(open_page, web, other, path=f"/studio/#streams/{sid}", locale="zh-CN")
    expect(page.locator(".form-error[role=alert]")).to_have_text("您不是这场直播的主播。")
    page.goto(page.url.split("#")[0] + f"#live/{sid}")
    alert = page.locator("#live-alert")
    expect(alert).to_be_visible()
    expect(page.locator("#connection")).to_have_text("未连接 — 正在连接…")
    # The REST API refuses too: hosts act only for their own stream.
    refused = requests.post(
        f"{web.url}/api/streams/{sid}/transition",
        headers=web.login(other),
        json={"to": "live"},
        timeout=5,
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "not_your_stream"
    page.locator("a.back").click()
    page.goto(page.url.split("#")[0] + "#streams")
    expect(page.locator("main")).to_contain_text("还没有直播。")
    assert_glyphs_render(page, "main")
    assert_accessible(page)
    page.locator("#stream-new").click()
    expect(page.locator("#stream-form-title")).to_have_text("安排直播")
    assert_glyphs_render(page, "form.stream-form")
    page.set_viewport_size({"width": PHONE, "height": 800})
    assert_accessible(page)

    # The owner's live screen in Chinese (a rehearsal: the stream is scheduled).
    live = signed_in(open_page, web, owner, path=f"/studio/#live/{sid}", locale="zh-CN")
    expect(live.locator("#connection")).to_have_text("已连接")
    expect(live.locator("#rehearsal")).to_be_visible()
    live.get_by_role("button", name="置顶 Scarf 1").click()
    expect(live.locator("#pin-list li .pin-name")).to_have_text(["Scarf 1"])
    assert_glyphs_render(live, "main")
    assert_accessible(live)
    live.set_viewport_size({"width": PHONE, "height": 800})
    assert_accessible(live)
    # An admin watches: every stream is listed.
    admin = signed_in(open_page, web, web.user("admin"), path="/studio/#streams")
    expect(admin.locator(f'#streams-table tr[data-stream-id="{sid}"]')).to_contain_text(
        "Owner's show"
    )


def test_two_hosts_see_the_same_room_and_moderate_its_chat(open_page, web):
    presenter = web.user("host")
    moderator = web.user("host")
    headers = web.login(presenter)
    sid = schedule(web, presenter, headers, "Two-host show", products=2)
    added = requests.patch(
        f"{web.url}/api/streams/{sid}",
        headers=headers,
        json={"hosts": [presenter["id"], moderator["id"]]},
        timeout=5,
    )
    assert added.status_code == 200, added.text
    started = requests.post(
        f"{web.url}/api/streams/{sid}/transition", headers=headers, json={"to": "live"}, timeout=5
    )
    assert started.status_code == 200, started.text
    alice, bob = Viewer(web, sid), Viewer(web, sid)
    try:
        one = signed_in(open_page, web, presenter, path=f"/studio/#live/{sid}")
        two = signed_in(open_page, web, moderator, path=f"/studio/#live/{sid}", width=PHONE)
        expect(one.locator("#connection")).to_have_text("Connected")
        expect(two.locator("#connection")).to_have_text("Connected")
        # The presenter pins; the moderator's console shows it without a reload.
        one.get_by_role("button", name="Pin Scarf 2").click()
        expect(two.locator("#pin-list li .pin-name")).to_have_text(["Scarf 2"])
        # An admin watches from the stream list: the same room, read-only, without controls.
        watcher = signed_in(open_page, web, web.user("admin"), path="/studio/#streams")
        watcher.get_by_role(
            "link", name="Watch the live screen of Two-host show (read-only)"
        ).click()
        expect(watcher.locator("#connection")).to_have_text("Connected")
        expect(watcher.locator("#watching")).to_be_visible()
        expect(watcher.locator("#pin-list li .pin-name")).to_have_text(["Scarf 2"])
        expect(watcher.locator("#live-products li")).to_have_count(2)
        expect(watcher.locator("main button")).to_have_count(0)

        # Comments arrive in both queues; the moderator deletes one, viewers hear it.
        spam = alice.call("comment", {"text": "cheap watches here"})["comment"]
        bob.call("comment", {"text": "love the red one"})
        queue_two = two.locator("#chat-queue li[data-comment-id]")
        expect(queue_two).to_have_count(2)
        expect(one.locator("#chat-queue li[data-comment-id]")).to_have_count(2)
        expect(queue_two.first).to_contain_text("love the red one")  # newest first
        expect(watcher.locator("#chat-queue li[data-comment-id]")).to_have_count(2)
        expect(watcher.locator("#chat-queue button")).to_have_count(0)
        two.locator(f'#chat-queue li[data-comment-id="{spam["id"]}"]').get_by_role(
            "button", name="Delete"
        ).click()
        assert bob.wait_for("comment_deleted")["comment_id"] == spam["id"]
        expect(one.locator(f'#chat-queue li[data-comment-id="{spam["id"]}"]')).to_have_count(0)
        # Ban Alice: her next comment is refused by the server.
        alice.call("comment", {"text": "buy now"})
        row = two.locator("#chat-queue li[data-comment-id]", has_text="buy now")
        row.get_by_role("button", name="Ban").click()
        expect(row).to_contain_text("Banned")
        assert alice.call("comment", {"text": "again"})["error"]["code"] == "BANNED"
        # Banned words and slow mode go to the server.
        two.get_by_label("Banned words").fill("fake\nreplica")
        two.locator("#words-save").click()
        expect(two.get_by_text("Banned words saved.")).to_be_visible()
        assert bob.call("comment", {"text": "is it a replica?"})["error"]["code"] == "BANNED_WORD"
        two.get_by_label("Slow mode (seconds between one viewer's comments)").select_option("30")
        two.locator("#slow-apply").click()
        assert bob.wait_for("slow_mode")["seconds"] == 30
        expect(one.get_by_label("Slow mode (seconds between one viewer's comments)")).to_have_value(
            "30"
        )

        # Questions, most upvoted first; "answered" takes one off, viewers hear it.
        first = bob.call("ask", {"text": "Does it come in blue?"})["question"]
        second = bob.call("ask", {"text": "Is it machine washable?"})["question"]
        carol = Viewer(web, sid)  # Alice is banned: she may not upvote
        assert carol.call("upvote", {"question_id": second["id"]})["upvotes"] == 1
        carol.close()
        questions = one.locator("#question-list li[data-question-id]")
        expect(questions).to_have_count(2)
        expect(questions.first).to_contain_text("Is it machine washable?")  # from the feedback
        questions.first.get_by_role("button").click()
        assert bob.wait_for("question_answered")["question_id"] == second["id"]
        expect(questions).to_have_count(1)
        expect(questions.first).to_have_attribute("data-question-id", first["id"])
        assert_accessible(one)
        assert_accessible(two)
        assert_accessible(watcher)
    finally:
        alice.close()
        bob.close()


def drop_campaign(web) -> tuple[str, dict]:
    """A live campaign with an offer for live drops (real clock); its id, a marketer's headers."""
    marketer = web.login(web.user("marketer"))
    now = time.time()
    made = requests.post(
        web.url + "/api/campaigns",
        headers=marketer,
        json={"name": "Drop week", "starts_at": now - 60, "ends_at": now + 3600},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    for name, channels in (("Flash 10 off", ["live_drop"]), ("Visit only", ["visit"])):
        offer = requests.post(
            f"{web.url}/api/campaigns/{cid}/offers",
            headers=marketer,
            json={"name": name, "kind": "amount_off", "amount_off_fen": 1000, "channels": channels},
            timeout=10,
        )
        assert offer.status_code == 201, offer.text
    moved = requests.post(
        f"{web.url}/api/campaigns/{cid}/transition",
        headers=marketer,
        json={"to": "scheduled"},
        timeout=10,
    )
    assert moved.json()["status"] == "live", moved.text
    return cid, marketer


VIEWERS = 20


def live_stream(web, title: str) -> tuple[dict, str]:
    """A live stream hosted by a new host (REST); the host and the stream's id."""
    host = web.user("host")
    headers = web.login(host)
    sid = schedule(web, host, headers, title)
    started = requests.post(
        f"{web.url}/api/streams/{sid}/transition", headers=headers, json={"to": "live"}, timeout=5
    )
    assert started.status_code == 200, started.text
    return host, sid


def column_total(page, column: str) -> int:
    return page.evaluate(
        """(col) => [...document.querySelectorAll(`#feedback-table td[data-col="${col}"]`)]
             .reduce((sum, td) => sum + (Number(td.textContent) || 0), 0)""",
        column,
    )


def test_feedback_charts_move_and_alerts_show_on_a_viewer_drop_and_negative_sentiment(
    open_page, web
):
    host, sid = live_stream(web, "Feedback show")
    page = signed_in(open_page, web, host, path=f"/studio/#live/{sid}")
    expect(page.locator("#connection")).to_have_text("Connected")
    viewers = [Viewer(web, sid) for _ in range(5)]
    try:
        expect(page.locator("#feedback-now")).to_have_text("Viewers now 5, peak 5")
        chart = page.locator("#chart-viewers")
        expect(chart).to_have_attribute("role", "img")
        expect(chart).to_have_attribute("aria-label", re.compile(r"now 5\."))
        # The chart (Chart.js) and the table carry the same numbers.
        page.wait_for_function(
            "() => Math.max(...window.Chart.getChart('chart-viewers').data.datasets[0].data) === 5"
        )
        expect(page.locator('#feedback-table td[data-col="viewers"]').last).to_have_text("5")
        assert page.locator("#feedback-drop-alert").is_hidden()
        assert page.locator("#feedback-mood-alert").is_hidden()

        # Comments (English and Chinese) and likes: the per-minute numbers and top words move.
        viewers[0].call("like", {"count": 7})
        viewers[1].call("comment", {"text": "love the scarf"})
        viewers[2].call("comment", {"text": "围巾好看"})
        page.wait_for_function(
            """() => [...document.querySelectorAll('#feedback-table td[data-col="comments"]')]
                 .reduce((s, td) => s + Number(td.textContent || 0), 0) === 2"""
        )
        page.wait_for_function(
            """() => [...document.querySelectorAll('#feedback-table td[data-col="likes"]')]
                 .reduce((s, td) => s + Number(td.textContent || 0), 0) === 7"""
        )
        expect(page.locator('#top-words li[data-word="scarf"]')).to_have_text("scarf (1)")
        expect(page.locator('#top-words li[data-word="围巾"]')).to_have_text("围巾 (1)")
        expect(page.locator("#feedback-mood-alert")).to_be_hidden()
        comments = page.evaluate(
            "() => window.Chart.getChart('chart-comments').data.datasets[0].data"
        )
        assert sum(comments) == column_total(page, "comments") == 2
        assert_accessible(page)

        # Sentiment turns negative: three complaints outnumber the two compliments (好看 is one).
        for i, text in enumerate(["too expensive", "ugly colour", "looks fake"]):
            viewers[i + 1].call("comment", {"text": text})
        alert = page.locator("#feedback-mood-alert")
        expect(alert).to_be_visible()
        expect(alert).to_have_attribute("role", "alert")
        expect(alert).to_contain_text("3 negative and 2 positive")
        expect(page.locator("#feedback-sentiment")).to_contain_text("2 positive, 3 negative")

        # Three of five viewers leave within the minute: a sharp drop (−60 %).
        for viewer in viewers[2:]:
            viewer.close()
        drop = page.locator("#feedback-drop-alert")
        expect(drop).to_be_visible()
        expect(drop).to_have_text("Viewers dropped sharply: from 5 to 2 within a minute.")
        expect(page.locator("#feedback-now")).to_have_text("Viewers now 2, peak 5")
        page.set_viewport_size({"width": PHONE, "height": 800})
        assert_accessible(page)
        # The same panel in Chinese: the alerts and the Chinese top words drawn.
        zh = signed_in(open_page, web, host, path=f"/studio/#live/{sid}", locale="zh-CN")
        expect(zh.locator('#top-words li[data-word="围巾"]')).to_have_text("围巾（1）")
        expect(zh.locator("#feedback-mood-alert")).to_contain_text("情绪转负")
        assert_glyphs_render(zh, "section.feedback")
        assert_accessible(zh)
    finally:
        for viewer in viewers[:2]:
            viewer.close()


PLAYLIST = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXTINF:4.0,
segment0.ts
"""


def test_the_preview_plays_an_hls_url_with_hls_js_and_says_when_it_cannot(open_page, web):
    host = web.user("host")
    headers = web.login(host)
    sid = schedule(web, host, headers, "Preview show")  # https://video.example/live.m3u8
    page = signed_in(open_page, web, host)
    manifests = []

    def serve(route):
        if route.request.url.endswith(".m3u8"):
            manifests.append(route.request.url)
            route.fulfill(status=200, content_type="application/vnd.apple.mpegurl", body=PLAYLIST)
        else:
            route.fulfill(status=404, body="")

    page.route("https://video.example/**", serve)
    page.goto(page.url.split("#")[0] + f"#live/{sid}")
    preview = page.locator("#preview")
    # hls.js (from npm, /vendor/hls.js/) loads and parses the playlist.
    expect(preview).to_have_attribute("data-player", "hls.js")
    expect(preview).to_have_attribute("data-state", "ready")
    assert manifests == ["https://video.example/live.m3u8"]
    expect(preview.get_by_label("Stream preview (muted)")).to_be_visible()
    assert_accessible(page)

    # A playback URL that is not HLS: a placeholder says so.
    changed = requests.patch(
        f"{web.url}/api/streams/{sid}",
        headers=headers,
        json={"playback_url": "https://video.example/watch?v=1"},
        timeout=5,
    )
    assert changed.status_code == 200, changed.text
    page.reload()
    expect(preview).to_have_attribute("data-state", "not_hls")
    expect(page.locator("#preview-note")).to_have_text(
        "No preview: the playback URL is not an HLS stream (.m3u8)."
    )
    expect(preview.locator("video")).to_have_count(0)
    # An HLS URL whose playlist cannot be loaded: hls.js's fatal error is shown.
    requests.patch(
        f"{web.url}/api/streams/{sid}",
        headers=headers,
        json={"playback_url": "https://video.example/gone.m3u8"},
        timeout=5,
    ).raise_for_status()
    page.unroute("https://video.example/**")
    page.route("https://video.example/**", lambda route: route.fulfill(status=404, body=""))
    page.reload()
    expect(preview).to_have_attribute("data-state", "failed")
    expect(page.locator("#preview-note")).to_contain_text("manifestLoadError")
