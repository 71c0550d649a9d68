"""The consoles' pages and the npm libraries they load, served without a build step.

The consoles are plain ES modules under static/ (docs/frontend.md). Their third-party
libraries come from npm (package.json at the root, installed by `python3 dev.py setup`) and are
served from node_modules under /vendor/<package>/, only from the folders listed in VENDOR.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, send_from_directory
from werkzeug.exceptions import NotFound as HTTPNotFound

from core.errors import DomainError, NotFound

from ..auth import PUBLIC, roles

bp = Blueprint("pages", __name__)

# URL name -> (npm package, the one folder of it that browsers may load). Add a library here
# (and to package.json) to use it in a page: a page loads /vendor/<name>/<file>. The URL name
# is the package's own unless the package is scoped (an @scope/ has a slash).
VENDOR = {
    "socket.io-client": ("socket.io-client", "dist"),
    "leaflet": ("leaflet", "dist"),
    "jsqr": (
        "jsqr",
        "dist",
    ),  # QR decoder of the till's camera scan (a classic script: window.jsQR)
    # Leaflet plugins (classic scripts that extend window.L, loaded after leaflet.js):
    "leaflet.markercluster": ("leaflet.markercluster", "dist"),  # store clusters on the map
    "leaflet-geoman": ("@geoman-io/leaflet-geoman-free", "dist"),  # drawing and editing fences
    "chart.js": ("chart.js", "dist"),  # the funnel's charts (chart.umd.min.js: window.Chart)
    "hls.js": ("hls.js", "dist"),  # the studio's HLS preview (hls.min.mjs: an ES module)
}
# The lockfile pins every version, but a new install may change a file under the same URL:
# browsers revalidate after an hour (ETag / Last-Modified make that a 304).
VENDOR_MAX_AGE_S = 3600

# A page's path -> its HTML file under static/. Pages revalidate on every load (max_age 0 with
# an ETag), so a new deploy is seen at once; their modules come from /static/.
PAGES = {
    "console": "console/index.html",
    "till": "till/index.html",
    "studio": "studio/index.html",
    "app": "app/index.html",
}


def _root() -> Path:
    return Path(current_app.root_path).parent


def _page(name: str):
    static = Path(current_app.static_folder)
    return send_from_directory(static, PAGES[name], max_age=0)


@bp.get("/console/")
@roles(PUBLIC)  # the page is public; its API calls check the marketer or admin role
def console():
    return _page("console")


@bp.get("/till/")
@roles(PUBLIC)  # the page is public; its API calls check the staff role
def till():
    return _page("till")


@bp.get("/studio/")
@roles(PUBLIC)  # the page is public; its API calls and /host check the host (or admin) role
def studio():
    return _page("studio")


@bp.get("/app/")
@roles(PUBLIC)  # the shopper app; its API calls check the shopper role
def shopper_app():
    return _page("app")


@bp.get("/app/sw.js")
@roles(PUBLIC)
def shopper_app_worker():
    # Served under /app/ so that its scope is the app's (a worker controls only its folder).
    static = Path(current_app.static_folder)
    return send_from_directory(static, "app/sw.js", max_age=0, mimetype="text/javascript")


@bp.get("/app/manifest.webmanifest")
@roles(PUBLIC)
def shopper_app_manifest():
    static = Path(current_app.static_folder)
    return send_from_directory(
        static, "app/manifest.webmanifest", max_age=0, mimetype="application/manifest+json"
    )


@bp.get("/vendor/<package>/<path:filename>")
@roles(PUBLIC)
def vendor(package: str, filename: str):
    if package not in VENDOR:
        raise NotFound(f"no library {package!r} is served under /vendor/", field="package")
    npm_package, folder = VENDOR[package]
    directory = _root() / "node_modules" / npm_package / folder
    if not directory.is_dir():
        raise DomainError(
            f"the npm package {npm_package!r} is not installed: run `python3 dev.py setup`",
            code="frontend_not_installed",
            status=503,
        )
    try:
        # send_from_directory refuses paths that leave the folder (404).
        return send_from_directory(directory, filename, max_age=VENDOR_MAX_AGE_S)
    except HTTPNotFound:
        raise NotFound(f"{package} has no file {filename!r}", field="filename") from None
