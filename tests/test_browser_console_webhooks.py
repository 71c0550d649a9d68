"""The marketer console's webhooks page in a real Chromium, against a real gunicorn server whose
background task delivers to a real local receiver (tests/webhook_receiver.py): register an
endpoint (its secret shown once, and it signs what the receiver gets), ping it, follow the
delivery log (succeeded, retrying → "Retry now"), a 410 that disables it with the reason,
enable it, retry the failed message, rotate the secret, edit and delete; then the page in
Chinese. Checked with axe-core.

See tests/browser.py for the browser, the server and the screenshots of failed tests.
"""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect
from standardwebhooks import Webhook

from tests.browser import (  # noqa: F401 - fixtures, passed to tests by name
    DESKTOP,
    PHONE,
    assert_accessible,
    assert_glyphs_render,
    open_page,
    web,
)
from tests.test_browser_consoles import sign_in
from tests.webhook_receiver import Answer, Receiver

# The server delivers in its background task (BACKGROUND_TASKS, on in production mode) to the
# receiver on 127.0.0.1, which only the two WEBHOOK_ALLOW_ settings allow.
WEB_ENV = {"BACKGROUND_TASKS": "1", "WEBHOOK_ALLOW_HTTP": "1", "WEBHOOK_ALLOW_NETS": "127.0.0.0/8"}


def log_row(page, msg: str, attempt: int):
    return page.locator(f"#webhook-log tbody tr[data-msg='{msg}'][data-attempt='{attempt}']")


def test_endpoint_secret_ping_log_retry_disable_enable_rotate_and_delete(open_page, web):
    marketer = web.user("marketer")
    with Receiver() as receiver:
        page = open_page(
            "/console/#webhooks",
            width=DESKTOP,
            permissions=["clipboard-read", "clipboard-write"],
        )
        sign_in(page, marketer["email"])
        expect(page.get_by_role("heading", name="Webhook endpoints")).to_be_visible()
        expect(page.get_by_role("link", name="Webhooks")).to_have_attribute("aria-current", "page")
        expect(page.locator("#webhooks-status")).to_have_text("No endpoint is registered yet.")

        # Register: the URL of the receiver, one event type. An empty type choice is refused
        # before anything is sent.
        form = page.locator("#webhook-create")
        form.get_by_label("URL").fill(receiver.url)
        form.get_by_label("Description (optional)").fill("CRM sync")
        form.get_by_role("button", name="Register endpoint").click()
        expect(form.get_by_role("alert")).to_have_text(
            "Choose at least one event type, or all of them."
        )
        form.get_by_label("coupon.issued").check()
        form.get_by_role("button", name="Register endpoint").click()

        # The secret, once, in its marked box, with the warning; the copy button copies it.
        box = page.locator("#webhook-created-secret")
        expect(box.get_by_role("heading")).to_be_focused()
        expect(box).to_contain_text("This secret is shown only once")
        secret = box.get_by_label("Signing secret").input_value()
        assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", secret)
        box.get_by_role("button", name="Copy the secret").click()
        expect(box.get_by_role("status")).to_have_text("Copied to the clipboard.")
        assert page.evaluate("navigator.clipboard.readText()") == secret
        row = page.locator("#webhook-list tbody tr")
        expect(row).to_have_count(1)
        for shown in (receiver.url, "CRM sync", "coupon.issued", "All campaigns", "Active"):
            expect(row).to_contain_text(shown)
        assert_accessible(page)

        # The endpoint's page: the secret is nowhere on it.
        box.get_by_role("link", name="Open the endpoint").click()
        expect(page.get_by_role("heading", name=f"Endpoint {receiver.url}")).to_be_visible()
        expect(page.locator("#webhook-failed-status")).to_have_text("No failed message.")
        assert secret not in page.content()

        # A test ping: the receiver gets it signed with the secret shown; the log says so.
        page.get_by_role("button", name="Send test ping").click()
        ping = receiver.wait_count(1)[0]
        Webhook(secret).verify(ping.body, ping.headers)
        assert json.loads(ping.body)["type"] == "webhook.ping"
        expect(page.locator("#webhook-status")).to_contain_text(ping.msg_id)
        done = log_row(page, ping.msg_id, 1)
        expect(done).to_have_attribute("data-result", "succeeded")
        cells = done.locator("td")
        expect(cells.nth(1)).to_have_text("webhook.ping")
        expect(cells.nth(4)).to_have_text("Succeeded")
        expect(cells.nth(5)).to_have_text("200")
        expect(cells.nth(6)).to_have_text(re.compile(r"^[\d.]+ ms$"))
        expect(cells.nth(0)).to_contain_text("(UTC)")
        expect(done.get_by_role("button", name="Retry now")).to_be_hidden()

        # The receiver fails (502, Retry-After 1 h): the attempt is retrying, with its next
        # retry an hour away; Retry now sends the same message again at once, and it succeeds.
        receiver.answer(Answer(502, headers={"Retry-After": "3600"}, body=b"down"))
        page.get_by_role("button", name="Send test ping").click()
        failing = receiver.wait_count(2)[1]
        retrying = log_row(page, failing.msg_id, 1)
        expect(retrying).to_have_attribute("data-result", "retrying")
        expect(retrying.locator("td").nth(5)).to_have_text("502")
        expect(retrying.locator("td").nth(7)).to_contain_text("down")
        expect(retrying.locator("td").nth(8).locator("time")).to_be_visible()
        retrying.get_by_role("button", name="Retry now").click()
        again = receiver.wait_count(3)[2]
        assert again.msg_id == failing.msg_id
        expect(log_row(page, failing.msg_id, 2)).to_have_attribute("data-result", "succeeded")
        expect(retrying.get_by_role("button", name="Retry now")).to_be_hidden()

        # Filters: only the retrying attempt, then all again.
        page.get_by_label("Result").select_option("retrying")
        page.get_by_role("button", name="Apply filters").click()
        expect(page.locator("#webhook-log tbody tr")).to_have_count(1)
        expect(retrying).to_be_visible()
        page.get_by_label("Result").select_option("")
        page.get_by_role("button", name="Apply filters").click()
        expect(page.locator("#webhook-log tbody tr")).to_have_count(3)

        # 410 Gone: the endpoint is disabled, and says why, here and in the list.
        receiver.answer(Answer(410))
        page.get_by_role("button", name="Send test ping").click()
        gone = receiver.wait_count(4)[3]
        banner = page.locator("#webhook-disabled")
        expect(banner).to_contain_text("Disabled because the endpoint answered 410 Gone.")
        expect(banner).to_contain_text("Disabled at")
        expect(page.locator("#webhook-state")).to_have_text("Disabled")
        expect(log_row(page, gone.msg_id, 1)).to_have_attribute("data-result", "failed")
        failed = page.locator(f"#webhook-failed tbody tr[data-msg='{gone.msg_id}']")
        expect(failed).to_contain_text("The endpoint answered 410 Gone")
        assert_accessible(page)
        page.get_by_role("link", name="All endpoints").click()
        listed = page.locator("#webhook-list tbody tr")
        expect(listed).to_have_attribute("data-status", "disabled")
        expect(listed).to_contain_text("Disabled because the endpoint answered 410 Gone.")
        listed.get_by_role("button", name="Enable").click()
        expect(listed).to_have_attribute("data-status", "active")
        expect(page.locator("#webhooks-status")).to_have_text(f"{receiver.url} is enabled again.")

        # Enabled again: the failed message is sent once more from the failed list.
        listed.get_by_role("link").click()
        expect(page.locator("#webhook-disabled")).to_be_hidden()
        expect(page.locator("#webhook-state")).to_have_text("Active")
        failed.get_by_role("button", name="Retry now").click()
        assert receiver.wait_count(5)[4].msg_id == gone.msg_id
        expect(page.locator("#webhook-failed-status")).to_have_text("No failed message.")
        expect(log_row(page, gone.msg_id, 2)).to_have_attribute("data-result", "succeeded")

        # Rotation with the default overlap: a new secret, once; both sign during the overlap.
        page.get_by_role("button", name="Rotate secret").click()
        expect(page.get_by_label("The previous secret keeps signing for")).to_have_value("86400")
        page.get_by_role("button", name="Make a new secret").click()
        rotated = page.locator("#webhook-rotated-secret")
        expect(rotated).to_contain_text("This secret is shown only once")
        expect(rotated.locator("#webhook-rotated-note")).to_contain_text(
            "The previous secret also signs until"
        )
        fresh = rotated.get_by_label("Signing secret").input_value()
        assert fresh.startswith("whsec_") and fresh != secret
        expect(page.locator("#webhook-previous-secret time")).to_be_visible()
        rotated.get_by_role("button", name="I stored it").click()
        expect(rotated).to_have_count(0)
        expect(page.get_by_role("button", name="Rotate secret")).to_be_focused()
        page.get_by_role("button", name="Send test ping").click()
        signed = receiver.wait_count(6)[5]
        assert len(signed.headers["webhook-signature"].split(" ")) == 2
        Webhook(fresh).verify(signed.body, signed.headers)
        Webhook(secret).verify(signed.body, signed.headers)

        # Edit: the description and the event types.
        page.get_by_role("button", name="Edit").click()
        edit = page.locator("#webhook-edit-form")
        expect(edit.get_by_label("URL")).to_be_focused()
        edit.get_by_label("Description (optional)").fill("CRM and POS")
        edit.get_by_label("All event types, also ones added later").check()
        edit.get_by_role("button", name="Save").click()
        expect(page.locator("#webhook-status")).to_have_text("Saved.")
        expect(page.locator("#webhook-facts")).to_contain_text("CRM and POS")
        expect(page.locator("#webhook-types")).to_have_text("All event types")
        endpoint_url = page.url

        # The page in Chinese on a phone (another tab, signed in again).
        zh = open_page(endpoint_url.removeprefix(web.url), width=PHONE, locale="zh-CN")
        sign_in(zh, marketer["email"])
        expect(zh.get_by_role("heading", name=f"端点 {receiver.url}")).to_be_visible()
        expect(zh.locator("#webhook-state")).to_have_text("已启用")
        expect(log_row(zh, ping.msg_id, 1).locator("td").nth(4)).to_have_text("成功")
        expect(zh.get_by_role("link", name="Webhook")).to_have_attribute("aria-current", "page")
        assert_glyphs_render(zh, "#webhook-log-title")
        assert_accessible(zh)

        # Delete, confirmed in the dialog: back to an empty list.
        page.get_by_role("button", name="Delete").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text(f"Delete the endpoint {receiver.url}?")
        expect(dialog.get_by_role("button", name="Keep it")).to_be_focused()
        dialog.get_by_role("button", name="Delete").click()
        expect(page.locator("#webhooks-status")).to_have_text("No endpoint is registered yet.")
        expect(page).to_have_url(re.compile(r"#webhooks$"))
