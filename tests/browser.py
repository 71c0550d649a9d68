"""Browser tests: a real headless Chromium (npm @sparticuz/chromium, driven by pip playwright)
against a real gunicorn process on the test Redis.

`python3 dev.py setup` installs and unpacks the browser (dev.py install_js). The session's
`browser` comes from tests/conftest.py (one Playwright for every module); a test module imports
the other fixtures it uses from here (pytest passes them by name):

    from tests.browser import web, open_page  # noqa: F401

`open_page(path, width=..., locale=...)` opens a page of the app in a new browser context
(its own sessionStorage and localStorage); when a test fails, every page it opened is saved
as a screenshot under var/screenshots/ and the path is printed with the failure.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright

import config
from app import create_app
from app.sinks import redis_connect
from tests.servers import REPO_ROOT, SECRET_KEY, ServerProcess, shown_on_failure, start_gunicorn

BROWSER = REPO_ROOT / "node_modules" / ".footfall-browser" / "chromium"
AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
PASSWORD = "correct-horse-1"
PHONE = 390
DESKTOP = 1280


def font_config(folder: Path) -> Path:
    """Write a fontconfig file: the system's fonts plus Noto Sans SC (pip pylopdf-fonts-zh-cn),
    so that Chinese renders with real glyphs even on a machine without CJK fonts."""
    from pylopdf_fonts_zh_cn import sans_path

    path = folder / "fonts.conf"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <dir>{Path(sans_path()).parent}</dir>\n"
        f"  <cachedir>{folder / 'cache'}</cachedir>\n"
        "</fontconfig>\n",
        encoding="utf-8",
    )
    return path


def browser_env(folder: Path) -> dict[str, str]:
    """Return the browser's environment: this one plus a fontconfig file (font_config) written
    in `folder` (made if missing). Usable outside pytest (bench/console_bench.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "FONTCONFIG_FILE": str(font_config(folder))}


def launch_chromium(playwright: Any, env: dict[str, str], args: Sequence[str] = ()) -> Browser:
    """Launch the project's headless Chromium (node_modules/.footfall-browser) on a started
    sync Playwright, with extra command-line switches; the caller closes it. Usable outside
    pytest (bench/console_bench.py)."""
    return playwright.chromium.launch(
        executable_path=str(BROWSER),
        headless=True,
        # As root (containers, CI) Chromium refuses to start inside its sandbox.
        args=["--no-sandbox", *args],
        env=env,
    )


_shared: dict[str, Any] = {}


@pytest.fixture(scope="session")
def browser(tmp_path_factory) -> Iterator[Browser]:
    """One headless Chromium for the whole session.

    Registered once, in tests/conftest.py (a test module must not import it: a second sync
    Playwright cannot start while the first runs). Its Playwright stays in `_shared` for
    `launch_browser`.
    """
    if not BROWSER.exists():
        pytest.fail(f"no browser at {BROWSER}: run `python3 dev.py setup` (it unpacks it)")
    playwright = _shared["playwright"] = sync_playwright().start()
    _shared["env"] = browser_env(tmp_path_factory.mktemp("fonts"))
    launched = launch_chromium(playwright, _shared["env"])
    try:
        yield launched
    finally:
        launched.close()
        _shared.clear()
        playwright.stop()


def launch_browser(args: list[str]) -> Browser:
    """Launch another headless Chromium with extra command-line switches (e.g. a fake
    camera), on the session's Playwright; the caller closes it. Needs the `browser` fixture."""
    return launch_chromium(_shared["playwright"], _shared["env"], args)


class Web:
    """The app under test: one gunicorn process, and accounts made directly in its Redis."""

    def __init__(self, server: ServerProcess, helper: Any) -> None:
        self.server = server
        self.url = server.url
        self.accounts = helper.extensions["accounts"]

    def user(self, role: str, **extra: Any) -> dict:
        """Create an account of a role (password PASSWORD) and return it."""
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.test"
        if role == "staff":
            extra.setdefault("store_id", "bund-1")
        return self.accounts.create_user(email, PASSWORD, role, **extra)

    def login(self, user: dict) -> dict:
        """Sign an account in through the server's API; return its Authorization header."""
        response = requests.post(
            self.url + "/api/auth/login",
            json={"email": user["email"], "password": PASSWORD},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture(scope="module")
def web(redis_server, tmp_path_factory, request) -> Iterator[Web]:
    """A gunicorn process on the test Redis (emptied first) for one test module.

    Maps draw no tiles (MAP_TILE_URL empty: tests never depend on a tile server); a module may
    set more of the server's environment in a module-level WEB_ENV dict.
    """
    client = redis_connect(redis_server)
    client.flushdb()
    client.close()
    env = {"MAP_TILE_URL": "", **getattr(request.module, "WEB_ENV", {})}
    server = start_gunicorn(redis_server, extra_env=env)
    helper = create_app(
        config.TestConfig(
            REDIS_URL=redis_server,
            SECRET_KEY=SECRET_KEY,
            VAR_DIR=tmp_path_factory.mktemp("helper") / "var",
        )
    )
    try:
        yield Web(server, helper)
    finally:
        helper.extensions["redis"].close()
        server.close()


def page_errors(page: Page, errors: list[str]) -> None:
    """Collect what a page throws, and what it logs as an error, into `errors`. The browser's
    own line for a refused request ("Failed to load resource") is not one: tests refuse
    requests on purpose, and the page shows them."""

    def logged(message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(f"{page.url}: console.error: {message.text}")

    page.on("console", logged)
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}\n{error.stack}"))


@pytest.fixture
def open_page(browser, web, request) -> Iterator[Callable[..., Page]]:
    """Open a path of the app in a fresh browser context of a given width and locale (and any
    other options of Playwright's new_context, e.g. geolocation and permissions).

    A test whose pages threw or logged an error fails at its end with what they said.
    """
    contexts = []
    errors: list[str] = []

    def opener(path: str, *, width: int = DESKTOP, locale: str = "en-US", **options) -> Page:
        # More of Playwright's context options may be passed along (geolocation, permissions).
        context = browser.new_context(
            viewport={"width": width, "height": 844 if width <= PHONE else 800},
            locale=locale,
            **options,
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page_errors(page, errors)
        page.goto(web.url + path)
        return page

    failed = request.session.testsfailed
    with shown_on_failure(request, web.server):
        yield opener
    if request.session.testsfailed != failed:
        save_screenshots(request.node.name, contexts)
    for context in contexts:
        context.close()
    if errors:
        pytest.fail("the page threw or logged errors:\n" + "\n".join(errors), pytrace=False)


def save_screenshots(test_name: str, contexts: list) -> None:
    """Save every open page of a failed test under var/screenshots/ and print where."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", test_name)
    pages = [page for context in contexts for page in context.pages]
    for number, page in enumerate(pages, 1):
        path = SCREENSHOTS / f"{stem}-{number}.png"
        try:
            page.screenshot(path=str(path), full_page=True)
        except Exception as exc:  # a crashed page: say so, keep the test's own failure
            print(f"screenshot of {page.url} failed: {exc}")
            continue
        print(f"screenshot of {page.url}: {path}")


def axe_violations(page: Page) -> list[dict]:
    """Run axe-core (npm) in the page; return its serious and critical violations."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    results = page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "targets": [node["target"] for node in violation["nodes"]],
        }
        for violation in results["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def assert_accessible(page: Page) -> None:
    """Fail with axe-core's findings when the page has a serious or critical violation."""
    violations = axe_violations(page)
    assert violations == [], violations


# Draw each character on a canvas in the font of `selector`; a character no font covers is
# drawn as the same "tofu" box as the noncharacter U+FFFF.
GLYPHS = """([selector, chars]) => {
  const font = getComputedStyle(document.querySelector(selector)).font;
  const canvas = document.createElement("canvas");
  canvas.width = 64; canvas.height = 64;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const draw = (ch) => {
    ctx.clearRect(0, 0, 64, 64);
    ctx.font = font.replace(/\\d+(\\.\\d+)?px/, "40px");
    ctx.textBaseline = "top";
    ctx.fillText(ch, 4, 4);
    return Array.from(ctx.getImageData(0, 0, 64, 64).data.filter((_, i) => i % 4 === 3)).join();
  };
  const tofu = draw("\\uffff");
  return chars.map((ch) => ({ ch, inked: /[1-9]/.test(draw(ch)), tofu: draw(ch) === tofu }));
}"""


def assert_glyphs_render(page: Page, selector: str) -> None:
    """Fail when a CJK character of the element's text has no glyph (drawn as a box)."""
    text = page.locator(selector).inner_text()
    chars = sorted({ch for ch in text if "\u4e00" <= ch <= "\u9fff"})
    assert chars, f"no Chinese characters in {selector}: {text!r}"
    drawn = page.evaluate(GLYPHS, [selector, chars])
    missing = [row["ch"] for row in drawn if row["tofu"] or not row["inked"]]
    assert missing == [], f"drawn as boxes in {selector}: {missing}"
