"""The staff till in a real Chromium: preview, redeem, ALREADY_REDEEMED with where and when, void.

The coupon is made through the REST API by the test (a marketer's live campaign, an offer, a
coupon issued to a shopper), as in tests/test_promo_api.py, against the real server's clock.
"""

from __future__ import annotations

import io
import re
import time
import uuid
from pathlib import Path

import pytest
import requests
from PIL import Image
from playwright.sync_api import expect

from tests.browser import (  # noqa: F401 - fixtures, passed to tests by name
    DESKTOP,
    PASSWORD,
    PHONE,
    assert_accessible,
    assert_glyphs_render,
    launch_browser,
    open_page,
    page_errors,
    save_screenshots,
    web,
)
from tests.test_browser_consoles import sign_in

SHANGHAI = (31.2400, 121.4800)


class Shop:
    """A store with a live campaign (20 off over ¥100) made by a marketer over HTTP."""

    def __init__(self, web):
        self.web = web
        self.marketer = web.login(web.user("marketer"))
        self.store_id = f"till-{uuid.uuid4().hex[:8]}"
        self.post(
            "/api/stores",
            {
                "id": self.store_id,
                "name": "Bund Till Store",
                "brand": "TillBrand",
                "city": "Shanghai",
                "lat": SHANGHAI[0],
                "lon": SHANGHAI[1],
                "fence": {"type": "circle", "radius_m": 80},
            },
        )
        now = int(time.time())  # the server's real clock: the campaign is live now
        campaign = self.post(
            "/api/campaigns",
            {
                "name": "Till test",
                "starts_at": now - 3600,
                "ends_at": now + 30 * 86_400,
                "targets": {"stores": [self.store_id]},
            },
        )
        self.cid = campaign["id"]
        offer = self.post(
            f"/api/campaigns/{self.cid}/offers",
            {
                "name": "20 off",
                "kind": "amount_off",
                "amount_off_fen": 2000,
                "min_spend_fen": 10_000,
                "channels": ["manual"],
            },
        )
        self.oid = offer["id"]
        live = self.post(f"/api/campaigns/{self.cid}/transition", {"to": "scheduled"}, 200)
        assert live["status"] == "live"

    def post(self, path, body, status=201):
        response = requests.post(self.web.url + path, json=body, headers=self.marketer, timeout=5)
        assert response.status_code == status, response.text
        return response.json()

    def coupon(self) -> dict:
        """Issue a coupon to a new shopper; return it as the shopper's wallet shows it, with
        the QR image the wallet serves as `qr_png`."""
        shopper = self.web.user("shopper")
        issued = self.post(
            f"/api/campaigns/{self.cid}/offers/{self.oid}/issue",
            {"shopper_id": shopper["id"], "idempotency_key": uuid.uuid4().hex},
        )
        coupon_id = issued["coupon"]["id"]
        headers = self.web.login(shopper)
        mine = requests.get(f"{self.web.url}/api/wallet/{coupon_id}", headers=headers, timeout=5)
        qr = requests.get(
            f"{self.web.url}/api/wallet/{coupon_id}/qr.png", headers=headers, timeout=5
        )
        assert qr.headers["Content-Type"] == "image/png"
        return {**mine.json(), "qr_png": qr.content}


@pytest.fixture(scope="module")
def shop(web):
    return Shop(web)


def fill(page, code: str, basket: str, order: str = "") -> None:
    page.get_by_label("Short code or scanned code").fill(code)
    page.get_by_label("Basket total (¥)").fill(basket)
    page.get_by_label("Order reference").fill(order)


def test_staff_preview_redeem_and_see_already_redeemed(open_page, web, shop):
    coupon = shop.coupon()
    staff = web.user("staff", store_id=shop.store_id)
    page = open_page("/till/", width=PHONE)
    sign_in(page, staff["email"])
    expect(page.get_by_text(f"Store: {shop.store_id}")).to_be_visible()
    expect(page.get_by_text("Bund Till Store")).to_be_visible()

    # Below the minimum spend: the terms and the reason.
    fill(page, coupon["code"].lower(), "50")
    page.get_by_role("button", name="Check").click()
    result = page.locator("#till-result")
    expect(result.get_by_role("heading")).to_have_text("The coupon cannot be used")
    expect(result).to_contain_text("Minimum spend: ¥100.00")
    expect(result).to_contain_text("Not usable: the basket is below the minimum spend")

    # ¥120.50 basket: ¥20.00 off, ¥100.50 to pay.
    fill(page, coupon["code"], "120.50")
    page.keyboard.press("Enter")
    expect(result.get_by_role("heading")).to_have_text("The coupon applies")
    expect(result).to_contain_text("Offer: ")
    expect(result.locator(".discount")).to_have_text("Discount: ¥20.00")
    expect(result.locator(".pay")).to_have_text("To pay: ¥100.50")
    assert_accessible(page)

    # Redeem needs an order reference; its absence is shown next to the field.
    page.get_by_role("button", name="Redeem").click()
    order = page.get_by_label("Order reference")
    expect(order).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#till-order_ref + .field-error")).to_have_text(
        "Type the order reference to redeem."
    )
    fill(page, coupon["code"], "120.50", "T-1")
    page.get_by_role("button", name="Redeem").click()
    expect(result.get_by_role("heading")).to_have_text("Redeemed")
    expect(result).to_contain_text("Order T-1")
    expect(result).to_contain_text("(Asia/Shanghai)")

    # Today's list at this store shows it.
    row = page.locator("#till-today tbody tr[data-order='T-1']")
    expect(row).to_contain_text(coupon["code"])
    expect(row).to_contain_text("¥120.50")
    expect(row).to_contain_text("¥20.00")
    expect(row).to_contain_text("redeemed")

    # The server recorded it for this store and order, with the basket in fen.
    ledger = requests.get(
        f"{web.url}/api/campaigns/{shop.cid}/ledger?type=redeem", headers=shop.marketer, timeout=5
    ).json()["items"]
    mine = [e for e in ledger if e["order_ref"] == "T-1"]
    assert len(mine) == 1 and mine[0]["store"] == shop.store_id
    assert int(mine[0]["basket_fen"]) == 12_050

    # A second redeem for another order: ALREADY_REDEEMED with where and when, by the field.
    fill(page, coupon["token"], "120.50", "T-2")
    page.get_by_role("button", name="Redeem").click()
    note = page.locator("#till-code + .field-error")
    expect(note).to_have_text(
        re.compile(
            rf"Already redeemed at store {shop.store_id} on .+ \(Asia/Shanghai\) \(order T-1\)\."
        )
    )
    expect(page.get_by_label("Short code or scanned code")).to_have_attribute(
        "aria-invalid", "true"
    )
    # A preview of it says the same.
    page.get_by_role("button", name="Check").click()
    expect(result.locator(".refusal")).to_have_text(
        re.compile(rf"Already redeemed at store {shop.store_id} on .+\(order T-1\)\.")
    )
    assert_accessible(page)


def test_staff_void_a_redemption_and_the_coupon_is_usable_again(open_page, web, shop):
    coupon = shop.coupon()
    staff = web.user("staff", store_id=shop.store_id)
    page = open_page("/till/", width=DESKTOP, locale="zh-CN")
    sign_in(page, staff["email"])
    expect(page.get_by_role("heading", name="本店今日核销")).to_be_visible()
    page.get_by_label("短码或扫描码").fill(coupon["code"])
    page.get_by_label("订单金额（¥）").fill("200")
    page.get_by_label("订单号").fill("V-1")
    page.get_by_role("button", name="核销").click()
    result = page.locator("#till-result")
    expect(result.get_by_role("heading")).to_have_text("核销成功")
    expect(result.locator(".pay")).to_have_text("应付：¥180.00")
    assert_glyphs_render(page, "#till-result")
    assert_accessible(page)
    page.get_by_role("button", name="撤销本次核销").click()
    expect(result.get_by_role("heading")).to_have_text("核销已撤销")
    # Usable again: a new order redeems it.
    page.get_by_label("订单号").fill("V-2")
    page.get_by_role("button", name="核销").click()
    expect(result.get_by_role("heading")).to_have_text("核销成功")
    table = page.locator("#till-today")
    expect(table.locator("tr[data-order='V-1']")).to_contain_text("已撤销")
    expect(table.locator("tr[data-order='V-2']")).to_contain_text("已核销")
    expect(table.locator("tr[data-order='V-2']")).to_contain_text("¥200.00")
    assert_accessible(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP


def test_a_bad_basket_and_an_unknown_code_are_shown_next_to_their_fields(open_page, web, shop):
    staff = web.user("staff", store_id=shop.store_id)
    page = open_page("/till/", width=PHONE)
    sign_in(page, staff["email"])
    fill(page, "NOPE-NOPE", "12.345")
    page.get_by_role("button", name="Check").click()
    expect(page.locator("#till-basket_fen + .field-error")).to_have_text(
        "Type the basket total in yuan, e.g. 120.50."
    )
    fill(page, "NOPE-NOPE", "12.34")
    page.get_by_role("button", name="Check").click()
    response = requests.post(
        web.url + "/api/redemptions/preview",
        json={"code": "NOPE-NOPE-X", "basket_fen": 1234},
        headers=web.login(web.user("staff", store_id=shop.store_id)),
        timeout=5,
    )
    error = response.json()["error"]
    assert error["field"] == "code"
    expect(page.locator("#till-code + .field-error")).to_be_visible()
    expect(page.get_by_label("Short code or scanned code")).to_have_attribute(
        "aria-invalid", "true"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE
    # No camera in this browser: the till says so by the code field.
    page.get_by_role("button", name="Scan with camera").click()
    expect(page.locator("#till-code + .field-error")).to_have_text(
        "No camera can be used here: type the code instead."
    )


def y4m_video(png: bytes, path: Path, frames: int = 5) -> Path:
    """Write a Y4M video (4:2:0) whose frames show a QR image on white, for Chromium's fake
    camera (--use-file-for-fake-video-capture)."""
    width, height = 640, 480
    qr = Image.open(io.BytesIO(png)).convert("L")
    side = 400
    frame = Image.new("L", (width, height), 255)
    frame.paste(qr.resize((side, side), Image.NEAREST), ((width - side) // 2, (height - side) // 2))
    y = frame.tobytes()
    chroma = bytes([128]) * ((width // 2) * (height // 2))  # grey: no colour
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + y + chroma + chroma)
    return path


def test_staff_scan_a_coupon_from_the_camera_and_redeem_it_then_scan_it_again(
    browser, web, shop, tmp_path, request
):
    coupon = shop.coupon()
    video = y4m_video(coupon["qr_png"], tmp_path / "coupon.y4m")
    staff = web.user("staff", store_id=shop.store_id)
    camera = launch_browser(
        [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ]
    )
    context = camera.new_context(viewport={"width": PHONE, "height": 844}, permissions=["camera"])
    context.set_default_timeout(10_000)
    failed = request.session.testsfailed
    errors: list[str] = []
    try:
        page = context.new_page()
        page_errors(page, errors)
        page.goto(web.url + "/till/")
        sign_in(page, staff["email"])
        page.get_by_label("Basket total (¥)").fill("150")
        page.get_by_label("Order reference").fill("S-1")
        page.get_by_role("button", name="Scan with camera").click()
        result = page.locator("#till-result")
        # The QR holds the signed token; the preview of it applies.
        expect(page.get_by_label("Short code or scanned code")).to_have_value(coupon["token"])
        expect(result.get_by_role("heading")).to_have_text("The coupon applies")
        expect(result.locator(".pay")).to_have_text("To pay: ¥130.00")
        expect(page.locator("video")).to_have_count(0)  # the camera is let go
        page.get_by_role("button", name="Redeem").click()
        expect(result.get_by_role("heading")).to_have_text("Redeemed")

        # A second scan, for another order: ALREADY_REDEEMED, with where and when.
        page.get_by_label("Short code or scanned code").fill("")
        page.get_by_label("Order reference").fill("S-2")
        page.get_by_role("button", name="Scan with camera").click()
        expect(result.locator(".refusal")).to_have_text(
            re.compile(rf"Already redeemed at store {shop.store_id} on .+\(order S-1\)\.")
        )
        page.get_by_role("button", name="Redeem").click()
        expect(page.locator("#till-code + .field-error")).to_have_text(
            re.compile(rf"Already redeemed at store {shop.store_id} .+\(order S-1\)\.")
        )
        assert_accessible(page)
        assert errors == [], "\n".join(errors)
    finally:
        if request.session.testsfailed != failed:
            save_screenshots(request.node.name, [context])
        context.close()
        camera.close()


def test_todays_list_shows_a_redemption_made_at_another_till_by_itself(open_page, web, shop):
    staff = web.user("staff", store_id=shop.store_id)
    page = open_page("/till/", width=PHONE)
    # The till reads the list again every few seconds while visible; a tab may set the
    # interval (seconds) in sessionStorage — 1 s here, so the test waits little.
    page.evaluate("sessionStorage.setItem('footfall.till.refresh_s', '1')")
    sign_in(page, staff["email"])
    expect(page.get_by_role("heading", name="Today's redemptions at this store")).to_be_visible()
    order = f"OTHER-{uuid.uuid4().hex[:6]}"
    expect(page.locator(f"tr[data-order='{order}']")).to_have_count(0)
    page.get_by_label("Short code or scanned code").focus()

    # Another till of the same store redeems a coupon through the API.
    coupon = shop.coupon()
    other = web.login(web.user("staff", store_id=shop.store_id))
    response = requests.post(
        web.url + "/api/redemptions",
        json={"code": coupon["code"], "basket_fen": 15_000, "order_ref": order},
        headers=other,
        timeout=5,
    )
    assert response.status_code == 201, response.text
    row = page.locator(f"#till-today tbody tr[data-order='{order}']")
    expect(row).to_contain_text(coupon["code"])
    expect(row).to_contain_text("¥150.00")
    expect(row).to_contain_text("¥20.00")
    # Typing at the till is not disturbed by the refresh.
    expect(page.get_by_label("Short code or scanned code")).to_be_focused()
    assert_accessible(page)
