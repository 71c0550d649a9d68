"""The consoles' shared frame in a real Chromium: sign-in, roles, languages, sign-out, axe-core.

See tests/browser.py for the browser, the server and the screenshots of failed tests.
"""

from __future__ import annotations

import re

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

TOKEN_KEY = "footfall.token"


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    """Fill the sign-in form and submit it with the keyboard only."""
    page.locator("#sign-in-email").focus()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")


def tab_token(page) -> str | None:
    return page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")


def test_marketer_signs_in_to_the_console_in_english(open_page, web):
    marketer = web.user("marketer")
    page = open_page("/console/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Footfall marketer console")
    expect(page.get_by_text("This page is for: marketer / administrator.")).to_be_visible()
    sign_in(page, marketer["email"])
    expect(page.get_by_text(f"Welcome, {marketer['display_name']}.")).to_be_visible()
    expect(page.locator(".who")).to_have_text(f"{marketer['email']} (marketer)")
    expect(page).to_have_title("Footfall marketer console")
    token = tab_token(page)
    assert token, "the token is kept in sessionStorage"
    # Only for the tab: nothing in localStorage, cookies or the URL.
    assert token not in page.evaluate("JSON.stringify(localStorage)")
    assert page.context.cookies() == []
    assert token not in page.url
    # The token is a working bearer token of this marketer.
    me = requests.get(web.url + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert me.json()["email"] == marketer["email"]


def test_marketer_signs_in_in_chinese_and_the_glyphs_render(open_page, web):
    marketer = web.user("marketer", display_name="小王")
    page = open_page("/console/", locale="zh-CN")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("Footfall 营销控制台")
    expect(page.get_by_label("电子邮箱")).to_be_visible()
    expect(page.get_by_label("密码")).to_be_visible()
    sign_in(page, marketer["email"])
    expect(page.get_by_text("欢迎，小王。")).to_be_visible()
    expect(page.locator(".who")).to_have_text(f"{marketer['email']}（营销人员）")
    assert_glyphs_render(page, "h1")
    assert_glyphs_render(page, "main")


def test_the_chosen_language_is_remembered_and_the_session_kept_for_the_tab(open_page, web):
    marketer = web.user("marketer")
    page = open_page("/console/")
    sign_in(page, marketer["email"])
    expect(page.locator(".who")).to_have_text(f"{marketer['email']} (marketer)")
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("heading", level=1)).to_have_text("Footfall 营销控制台")
    # Placeholders that are catalogue texts follow the switch too.
    expect(page.locator(".who")).to_have_text(f"{marketer['email']}（营销人员）")
    expect(page).to_have_title("Footfall 营销控制台")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Footfall 营销控制台")
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()


def test_a_shopper_is_told_the_console_is_not_for_them(open_page, web):
    shopper = web.user("shopper")
    page = open_page("/console/")
    sign_in(page, shopper["email"])
    expect(page.get_by_role("heading", name="Not available with this account")).to_be_visible()
    expect(
        page.get_by_text(
            "This page is for: marketer / administrator. You are signed in as shopper."
        )
    ).to_be_visible()
    expect(page.get_by_role("navigation", name="Console sections")).to_have_count(0)
    token = tab_token(page)
    page.get_by_role("button", name="Sign in with another account").click()
    expect(page.get_by_label("Email")).to_be_visible()
    assert tab_token(page) is None
    me = requests.get(web.url + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert me.status_code == 401


def test_sign_out_revokes_the_token(open_page, web):
    marketer = web.user("admin")
    page = open_page("/console/")
    sign_in(page, marketer["email"])
    expect(page.get_by_role("navigation", name="Console sections")).to_be_visible()
    token = tab_token(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Email")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    assert tab_token(page) is None
    me = requests.get(web.url + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "session_revoked"


def test_a_wrong_password_is_shown_in_the_form_in_the_readers_language(open_page, web):
    marketer = web.user("marketer")
    page = open_page("/console/", locale="zh-CN")
    sign_in(page, marketer["email"], "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("邮箱或密码错误。")
    assert tab_token(page) is None


def test_an_error_naming_a_field_is_shown_next_to_it(open_page, web):
    page = open_page("/console/")
    sign_in(page, "not-an-email")
    email = page.get_by_label("Email")
    expect(email).to_have_attribute("aria-invalid", "true")
    note = page.locator("#sign-in-email + .field-error")
    expect(note).to_be_visible()
    expect(email).to_have_attribute("aria-describedby", note.get_attribute("id"))
    # The envelope's own message (the API names the field "email").
    response = requests.post(
        web.url + "/api/auth/login", json={"email": "not-an-email", "password": "x"}, timeout=5
    )
    error = response.json()["error"]
    assert error["field"] == "email"
    expect(note).to_have_text(error["message"])


def test_staff_sign_in_to_the_till(open_page, web):
    staff = web.user("staff", store_id="bund-1")
    page = open_page("/till/", width=PHONE)
    expect(page.get_by_role("heading", level=1)).to_have_text("Footfall till")
    sign_in(page, staff["email"])
    expect(page.get_by_text("Store: bund-1")).to_be_visible()
    expect(page.locator(".who")).to_have_text(f"{staff['email']} (store staff)")


def test_a_marketer_is_refused_at_the_till(open_page, web):
    marketer = web.user("marketer")
    page = open_page("/till/")
    sign_in(page, marketer["email"])
    expect(
        page.get_by_text("This page is for: store staff. You are signed in as marketer.")
    ).to_be_visible()


def test_money_and_times_follow_the_language_and_the_time_zone(open_page):
    page = open_page("/console/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    script = """async (lang) => {
      const i18n = await import('/static/js/i18n.js');
      await i18n.setLanguage(lang);
      // 2026-01-01T00:30:00Z is still 31 December in New York, already 08:30 in Shanghai.
      const when = Date.UTC(2026, 0, 1, 0, 30) / 1000;
      return [i18n.formatMoney(123456), i18n.formatMoney(5), i18n.formatMoney(-1999),
              i18n.formatTime(when, 'Asia/Shanghai'), i18n.formatTime(when, 'America/New_York')];
    }"""
    money, small, negative, shanghai, new_york = page.evaluate(script, "en")
    assert (money, small, negative) == ("¥1,234.56", "¥0.05", "-¥19.99")
    assert re.search(r"Jan 1, 2026.*8:30\s?AM \(Asia/Shanghai\)", shanghai), shanghai
    assert re.search(r"Dec 31, 2025.*7:30\s?PM \(America/New_York\)", new_york), new_york
    money, _, _, shanghai, _ = page.evaluate(script, "zh-CN")
    assert money == "¥1,234.56"
    assert re.search(r"2026年1月1日.*08:30 \(Asia/Shanghai\)", shanghai), shanghai


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
@pytest.mark.parametrize(
    ("path", "role", "locale"),
    [("/console/", "marketer", "en-US"), ("/till/", "staff", "zh-CN")],
)
def test_pages_have_no_serious_accessibility_violations(open_page, web, path, role, locale, width):
    user = web.user(role)
    page = open_page(path, width=width, locale=locale)
    expect(page.locator("#sign-in-email")).to_be_visible()
    assert_accessible(page)
    sign_in(page, user["email"])
    expect(page.get_by_role("button", name=re.compile("Sign out|退出登录"))).to_be_visible()
    assert_accessible(page)
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_the_npm_libraries_load_as_modules_in_the_browser(open_page):
    page = open_page("/till/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    loaded = page.evaluate(
        """async () => {
          const sio = await import('/vendor/socket.io-client/socket.io.esm.min.js');
          const leaflet = await import('/vendor/leaflet/leaflet-src.esm.js');
          return [typeof sio.io, typeof leaflet.map, leaflet.version];
        }"""
    )
    assert loaded[:2] == ["function", "function"]
    assert loaded[2].startswith("1.9")
