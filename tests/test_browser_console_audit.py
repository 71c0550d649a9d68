"""The marketer console's audit log in a real Chromium: changes a marketer made through the REST
API are listed with before → after, filtered (kept in the hash across a reload), paged with
the API's cursor and exported as CSV; in English and Chinese, checked with axe-core.

See tests/browser.py for the browser, the server and the screenshots of failed tests.
"""

from __future__ import annotations

import csv
import re
import time
import uuid

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

SHANGHAI = (31.2400, 121.4800)


class Marketer:
    """A marketer making changes over HTTP, as any API client would."""

    def __init__(self, web):
        self.web = web
        self.user = web.user("marketer")
        self.actor = f"marketer:{self.user['id']}"
        response = requests.post(
            web.url + "/api/auth/login",
            json={"email": self.user["email"], "password": PASSWORD},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        self.headers = {"Authorization": f"Bearer {response.json()['token']}"}

    def call(self, method: str, path: str, body=None, status: int = 200) -> dict:
        response = requests.request(
            method, self.web.url + path, json=body, headers=self.headers, timeout=5
        )
        assert response.status_code == status, response.text
        return response.json()

    def store(self, name: str, **extra) -> str:
        sid = f"audit-{uuid.uuid4().hex[:8]}"
        body = {
            "id": sid,
            "name": name,
            "brand": "AuditBrand",
            "city": "Shanghai",
            "lat": SHANGHAI[0],
            "lon": SHANGHAI[1],
            "fence": {"type": "circle", "radius_m": 80},
            **extra,
        }
        self.call("POST", "/api/stores", body, 201)
        return sid

    def audit(self, query: str) -> list[dict]:
        return self.call("GET", f"/api/audit?{query}")["items"]


def row_ids(page) -> list[str]:
    return page.locator("#audit-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")


def test_changes_are_listed_with_before_and_after_and_filtered(open_page, web):
    marketer = Marketer(web)
    sid = marketer.store("Audit Shop")
    fence = {"type": "circle", "radius_m": 50}
    marketer.call("PATCH", f"/api/stores/{sid}", {"name": "Audit Shop Renamed", "fence": fence})
    now = int(time.time())
    campaign = marketer.call(
        "POST",
        "/api/campaigns",
        {
            "name": "Audit week",
            "starts_at": now + 3600,
            "ends_at": now + 86_400,
            "targets": {"stores": [sid]},
        },
        201,
    )

    page = open_page("/console/#audit", width=DESKTOP)
    sign_in(page, marketer.user["email"])
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.get_by_role("link", name="Audit log")).to_have_attribute("aria-current", "page")
    # The rows are the API's newest page, in its order.
    expect(page.locator("#audit-status")).to_have_text(re.compile(r"^\d+ entries shown\.$"))
    assert row_ids(page) == [e["id"] for e in marketer.audit("limit=50")]

    # The rename: who (the reader), what, and the changed field before → after.
    renamed = page.locator(f"tr[data-kind='store'][data-action='update'][data-object='{sid}']")
    expect(renamed.locator("td").nth(1)).to_have_text(f"{marketer.actor} (you)")
    expect(renamed.locator("td").nth(2)).to_have_text("Updated")
    expect(renamed.locator("td").nth(3)).to_have_text(f"Store {sid}")
    change = renamed.locator("li[data-field='name']")
    expect(change.locator(".audit-before")).to_have_text("Audit Shop")
    expect(change.locator(".audit-after")).to_have_text("Audit Shop Renamed")
    # Inside the fence, only the radius changed.
    radius = renamed.locator("li[data-field='fence.radius_m']")
    expect(radius.locator(".audit-before")).to_have_text("80")
    expect(radius.locator(".audit-after")).to_have_text("50")
    expect(renamed.locator(".audit-diff li")).to_have_count(2)  # only what changed
    expect(renamed.locator("time")).to_contain_text("(UTC)")  # the reader's zone, named
    # The campaign's creation: its new values.
    created = page.locator(f"tr[data-kind='campaign'][data-object='{campaign['id']}']")
    expect(created.locator("td").nth(2)).to_have_text("Created")
    expect(created.locator("li[data-field='name']")).to_have_text("name: Audit week")
    expect(created.locator(".audit-before")).to_have_count(0)
    assert_accessible(page)

    # Filter by what changed: only campaigns; the filter goes into the hash.
    page.get_by_label("What changed").select_option("campaign")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#audit-table tbody tr[data-kind='store']")).to_have_count(0)
    expect(created).to_be_visible()
    expect(page).to_have_url(re.compile(r"#audit/kind=campaign$"))
    assert row_ids(page) == [e["id"] for e in marketer.audit("kind=campaign&limit=50")]
    # A reload keeps the filter (form and rows).
    page.reload()
    expect(page.get_by_label("What changed")).to_have_value("campaign")
    expect(created).to_be_visible()
    expect(page.locator("#audit-table tbody tr[data-kind='store']")).to_have_count(0)
    # Back: the unfiltered log again.
    page.go_back()
    expect(page.get_by_label("What changed")).to_have_value("")
    expect(renamed).to_be_visible()
    page.go_forward()
    expect(page.get_by_label("What changed")).to_have_value("campaign")
    expect(renamed).to_have_count(0)

    # By object id, typed and submitted with the keyboard: the store's two entries.
    page.get_by_label("What changed").select_option("")
    page.get_by_label("Object id").fill(sid)
    page.get_by_label("Object id").press("Enter")
    expect(page.locator("#audit-table tbody tr")).to_have_count(2)
    expect(page.locator("#audit-table tbody tr").first).to_have_attribute("data-action", "update")
    expect(page.locator("#audit-table tbody tr").nth(1)).to_have_attribute("data-action", "create")

    # A range that ends before it starts is refused next to its end.
    page.get_by_label("Object id").fill("")
    page.get_by_label(re.compile("^From")).fill("2099-01-02T10:00")
    page.get_by_label(re.compile("^Before")).fill("2099-01-01T10:00")
    page.get_by_role("button", name="Apply filters").click()
    until = page.get_by_label(re.compile("^Before"))
    expect(until).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#audit-until + .field-error")).to_have_text(
        "The end must be later than the start."
    )
    # A range with nothing in it: the empty state.
    until.fill("2099-01-03T10:00")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("#audit-status")).to_have_text("No changes match these filters.")
    expect(page.locator("#audit-table")).to_be_hidden()
    assert_accessible(page)

    # A filter the API refuses (a hand-edited address): its message next to its field.
    page.goto(f"{web.url}/console/#audit/since=yesterday")
    response = requests.get(
        f"{web.url}/api/audit?since=yesterday", headers=marketer.headers, timeout=5
    )
    error = response.json()["error"]
    assert response.status_code == 422 and error["field"] == "since"
    expect(page.locator("#audit-since + .field-error")).to_have_text(error["message"])
    expect(page.get_by_label(re.compile("^From"))).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#audit-table")).to_be_hidden()


def test_older_pages_follow_the_cursor_and_the_csv_holds_the_filtered_rows(open_page, web):
    marketer = Marketer(web)
    stores = [marketer.store(f"Paged {i}") for i in range(12)]
    Marketer(web).store("Someone else's")  # another marketer's change, filtered out

    page = open_page("/console/#audit", width=PHONE)
    sign_in(page, marketer.user["email"])
    page.get_by_label("Rows per page").select_option("10")
    page.get_by_role("button", name="Only my changes").click()
    expect(page.get_by_label("Who (role:account id)")).to_have_value(marketer.actor)
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(10)
    expect(page.locator("#audit-status")).to_have_text("10 entries shown; older ones follow.")
    newest_first = stores[::-1]
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.object)") == newest_first[:10]
    page.get_by_role("button", name="Show older entries").click()
    expect(rows).to_have_count(12)
    expect(page.locator("#audit-status")).to_have_text("12 entries shown.")
    expect(page.get_by_role("button", name="Show older entries")).to_be_hidden()
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.object)") == newest_first
    assert_accessible(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE

    # The CSV of the filtered log: this marketer's 12 entries, newest first.
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    assert download.value.suggested_filename == "footfall-audit.csv"
    with open(download.value.path(), encoding="utf-8", newline="") as file:
        table = list(csv.reader(file))
    assert table[0] == ["id", "time_utc", "actor", "action", "kind", "object_id", "before", "after"]
    assert [r[5] for r in table[1:]] == newest_first
    assert {r[2] for r in table[1:]} == {marketer.actor}
    assert [r[0] for r in table[1:]] == row_ids(page)
    expect(page.locator("#audit-status")).to_have_text(
        "The filtered log was downloaded as a CSV file."
    )
    token = page.evaluate("sessionStorage.getItem('footfall.token')")
    assert token not in page.url and token not in download.value.url


def test_the_audit_log_in_chinese_with_long_values_folded(open_page, web):
    marketer = Marketer(web)
    address = "上海市黄浦区南京东路" + "一段很长的地址说明" * 12
    sid = marketer.store("审计门店", address=address)
    marketer.call("PATCH", f"/api/stores/{sid}", {"name": "审计门店（新）"})

    page = open_page(f"/console/#audit/object_id={sid}", width=DESKTOP, locale="zh-CN")
    sign_in(page, marketer.user["email"])
    expect(page.get_by_role("heading", name="审计日志")).to_be_visible()
    expect(page.get_by_label("对象 ID")).to_have_value(sid)
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(2)
    renamed = rows.first
    expect(renamed.locator("td").nth(2)).to_have_text("更新")
    expect(renamed.locator("li[data-field='name'] .audit-after")).to_have_text("审计门店（新）")
    # The creation lists its first fields; the rest and long values fold away.
    created = rows.nth(1)
    expect(created.locator("td").nth(2)).to_have_text("创建")
    created.locator(".audit-rest > summary").click()
    long = created.locator("li[data-field='address'] details.audit-long")
    expect(long.locator("pre")).to_be_hidden()
    long.locator("summary").focus()
    page.keyboard.press("Enter")  # expandable with the keyboard
    expect(long.locator("pre")).to_have_text(address)
    assert_glyphs_render(page, ".audit")
    assert_accessible(page)

    # A wrong range is said next to its field, in Chinese.
    page.get_by_label(re.compile("^开始")).fill("2099-01-02T10:00")
    page.get_by_label(re.compile("^截止")).fill("2099-01-01T10:00")
    page.get_by_role("button", name="应用筛选").click()
    expect(page.locator("#audit-until + .field-error")).to_have_text("截止时间必须晚于开始时间。")
    page.set_viewport_size({"width": PHONE, "height": 844})
    assert_accessible(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE
