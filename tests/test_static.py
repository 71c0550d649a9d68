"""The shopper demo page: served by Flask without a token, and talking only to its own origin."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

STATIC = Path(__file__).resolve().parent.parent / "static"

ASSETS = {
    "index.html": ("text/html",),
    "shopper.js": ("text/javascript", "application/javascript"),
    "style.css": ("text/css",),
}

# Anything that names a host: scheme URLs and protocol-relative "//host" strings.
ABSOLUTE_URL = re.compile(r"""\b[a-z][a-z0-9+.-]*://|["'`(=]\s*//[\w.-]""", re.IGNORECASE)
API_PATH = re.compile(r"""["'`](/api/[^"'`?$\s]*)""")


class _Refs(HTMLParser):
    """Collect the src/href of every element of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.refs.append((tag, value))


def _page_refs() -> list[tuple[str, str]]:
    parser = _Refs()
    parser.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    return parser.refs


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_asset_is_served_without_a_token(client, name):
    # Static files are streamed from an open file: close the response, or the file leaks.
    with client.get(f"/static/{name}") as response:
        assert response.status_code == 200
        assert response.mimetype in ASSETS[name]
        assert response.mimetype_params.get("charset", "utf-8").lower() == "utf-8"
        assert response.get_data() == (STATIC / name).read_bytes()


def test_page_loads_its_own_script_and_stylesheet(client):
    refs = _page_refs()
    assert ("script", "shopper.js") in refs
    assert ("link", "style.css") in refs
    for tag, ref in refs:
        if ref.startswith("data:"):
            continue  # the empty favicon
        assert "//" not in ref and ":" not in ref, f"<{tag}> loads {ref} from elsewhere"
        with client.get(f"/static/{ref}") as response:
            assert response.status_code == 200, ref


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_assets_name_no_other_host(name):
    text = (STATIC / name).read_text(encoding="utf-8")
    found = ABSOLUTE_URL.findall(text)
    assert not found, f"{name} refers to other hosts: {found}"


def test_script_uses_the_official_socketio_client_from_this_origin(client):
    js = (STATIC / "shopper.js").read_text(encoding="utf-8")
    imports = re.findall(r"""^import .* from "([^"]+)";$""", js, re.MULTILINE)
    assert imports == ["/vendor/socket.io-client/socket.io.esm.min.js"]
    with client.get(imports[0]) as response:  # served from node_modules (npm), not pasted
        assert response.status_code == 200
        assert response.mimetype in ("text/javascript", "application/javascript")
    # io("/shopper") is the namespace on the page's own origin; no hand-made Engine.IO client.
    assert re.search(r"""\bio\("/shopper", \{""", js)
    assert "new WebSocket" not in js and "EIO=" not in js
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert '<script type="module" src="shopper.js"></script>' in html


def test_script_calls_only_api_routes_that_exist(app):
    js = (STATIC / "shopper.js").read_text(encoding="utf-8")
    paths = set(API_PATH.findall(js))
    assert {
        "/api/auth/login",
        "/api/location/fix",
        "/api/location/inside",
        "/api/location/trust",
        "/api/stores/nearby",
        "/api/me/consent",
    } <= paths
    adapter = app.url_map.bind("localhost")
    for path in sorted(paths):
        try:
            # A path built as `/api/wallet/${id}` is captured up to its trailing slash.
            adapter.match(path + "1-1" if path.endswith("/") else path)
        except MethodNotAllowed:
            pass  # the route exists for another method (POST/PUT)
        except NotFound:
            pytest.fail(f"shopper.js calls {path}, which the app does not serve")
