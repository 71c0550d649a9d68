"""The consoles' pages and the npm libraries served from node_modules under /vendor/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.blueprints import pages

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"


@pytest.mark.parametrize(
    ("path", "module"),
    [("/console/", "console"), ("/till/", "till"), ("/studio/", "studio"), ("/app/", "app")],
)
def test_pages_are_served_without_a_token_and_revalidated(client, path, module):
    with client.get(path) as response:
        assert response.status_code == 200
        assert response.mimetype == "text/html"
        assert f'src="/static/{module}/{module}.js"' in response.get_data(as_text=True)
        assert response.headers["Cache-Control"] == "no-cache, max-age=0"
        assert response.headers["ETag"]


@pytest.mark.parametrize(
    ("path", "mimetype"),
    [
        ("/vendor/socket.io-client/socket.io.esm.min.js", "text/javascript"),
        ("/vendor/leaflet/leaflet.css", "text/css"),
        ("/vendor/leaflet/images/marker-icon.png", "image/png"),
        ("/vendor/leaflet-geoman/leaflet-geoman.js", "text/javascript"),  # a scoped package
        ("/vendor/chart.js/chart.umd.min.js", "text/javascript"),
    ],
)
def test_npm_libraries_are_served_with_caching_headers(client, path, mimetype):
    with client.get(path) as response:
        assert response.status_code == 200, response.get_json()
        assert response.mimetype == mimetype
        assert response.headers["Cache-Control"] == f"public, max-age={pages.VENDOR_MAX_AGE_S}"
        package, _, name = path.removeprefix("/vendor/").partition("/")
        file = ROOT / "node_modules" / "/".join(pages.VENDOR[package]) / name
        assert response.data == file.read_bytes()
        etag = response.headers["ETag"]
    with client.get(path, headers={"If-None-Match": etag}) as again:
        assert again.status_code == 304


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/vendor/left-pad/index.js", "package"),  # not a library the pages use
        ("/vendor/leaflet/no-such-file.js", "filename"),
        ("/vendor/leaflet/../package.json", "filename"),  # outside the served folder
        ("/vendor/leaflet/..%2F..%2F..%2Fpyproject.toml", "filename"),
        ("/vendor/socket.io-client/../../../pyproject.toml", None),  # normalised away
    ],
)
def test_only_the_listed_folders_are_served(client, path, field):
    with client.get(path) as response:
        assert response.status_code == 404
        error = response.get_json()["error"]
    assert error["code"] == "not_found"
    if field:
        assert error["field"] == field


def test_a_library_that_is_not_installed_is_a_503_envelope(client, monkeypatch):
    monkeypatch.setitem(pages.VENDOR, "not-installed-lib", ("not-installed-lib", "dist"))
    response = client.get("/vendor/not-installed-lib/index.js")
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "frontend_not_installed"
    assert "python3 dev.py setup" in error["message"]


def test_every_package_served_is_a_dependency_in_the_lockfile():
    manifest = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    for package, _folder in pages.VENDOR.values():
        assert package in manifest["dependencies"], package
        assert f"node_modules/{package}" in lock["packages"], package


def _catalogue(lang: str) -> dict[str, str]:
    return json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def test_both_catalogues_have_the_same_keys_and_placeholders():
    en, zh = _catalogue("en"), _catalogue("zh-CN")
    assert en.keys() == zh.keys()
    for key in en:
        placeholders = set(re.findall(r"\{(\w+)\}", en[key]))
        assert placeholders == set(re.findall(r"\{(\w+)\}", zh[key])), key
    assert all(value.strip() for value in [*en.values(), *zh.values()])


def test_every_key_the_modules_use_is_in_the_catalogue():
    # label(tag, "key"...), t("key"...), titleKey: "key" and `role.${...}` in static/**/*.js.
    keys: set[str] = set()
    for module in STATIC.glob("**/*.js"):
        if module.name == "shopper.js":
            continue  # the shopper demo page is not translated yet
        text = module.read_text(encoding="utf-8")
        keys |= set(re.findall(r"""\b(?:label\(\s*"\w+",|t\(|titleKey:)\s*"([\w.]+)\"""", text))
    assert {"auth.sign_in", "console.title", "till.title", "error.network"} <= keys
    catalogue = _catalogue("en")
    assert sorted(keys - catalogue.keys()) == []
    roles = {key for key in catalogue if key.startswith("role.")}
    assert roles == {
        f"role.{role}" for role in ("shopper", "staff", "marketer", "host", "admin")
    } | {"role.guest"}
