"""The marketer console's stores view in a real Chromium: bulk import (all or nothing, good rows
only, 5,000 stores), the clustered map, the list's filters, a store's page, drawing fences with
Leaflet-Geoman (mouse events on the map), the server's fence errors on the map, GeoJSON export.

Every store a test makes lives in a city of its own, so the module's tests share one server.
"""

from __future__ import annotations

import json
import random
import re
import uuid

import pytest
import requests
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

SHANGHAI = (31.2304, 121.4737)
ZH_LINE_3 = "第 3 行"
CSV_HEADER = "id,name,brand,city,lat,lon,address,tz,hours,fence\n"


@pytest.fixture(scope="module")
def marketer(web):
    user = web.user("marketer")
    return {"user": user, "headers": web.login(user)}


def city_name() -> str:
    return f"Testcity-{uuid.uuid4().hex[:8]}"


def console(open_page, marketer, path="/console/#stores", **kwargs):
    page = open_page(path, **kwargs)
    sign_in(page, marketer["user"]["email"])
    return page


def api_get(web, marketer, path):
    response = requests.get(web.url + path, headers=marketer["headers"], timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def post_store(web, marketer, body):
    response = requests.post(
        web.url + "/api/stores", json=body, headers=marketer["headers"], timeout=5
    )
    assert response.status_code == 201, response.text
    return response.json()


def map_total(page) -> int:
    """The number of stores the overview map holds (its data-stores attribute)."""
    return int(page.locator("#stores-map").get_attribute("data-stores"))


def upload(page, name: str, content: str, *, partial: bool, mime: str = "text/csv") -> None:
    form = page.locator("#stores-import")
    form.get_by_label("CSV or GeoJSON file").set_input_files(
        {"name": name, "mimeType": mime, "buffer": content.encode()}
    )
    mode = "Good rows only: write the good ones" if partial else "All or nothing: write no store"
    form.get_by_label(mode).check()
    form.get_by_role("button", name="Import").click()


def test_import_with_bad_rows_all_or_nothing_then_good_rows_only(open_page, web, marketer):
    city = city_name()
    lat, lon = SHANGHAI
    csv = CSV_HEADER + "".join(
        [
            f"{city}-1,Good One,Acme,{city},{lat},{lon},1 Road,,,\n",
            f"{city}-2,Bad Lat,Acme,{city},north,{lon},2 Road,,,\n",  # line 3
            f"{city}-3,Good Two,Acme,{city},{lat + 0.01},{lon},3 Road,,,\n",
            f'{city}-4,Bad Fence,Acme,{city},{lat},{lon},4 Road,,,"{{""type"": ""circle""}}"\n',
            f"{city}-5,Good Three,Acme,{city},{lat},{lon + 0.01},5 Road,Asia/Shanghai,,\n",
        ]
    )
    page = console(open_page, marketer)
    expect(page.locator("#stores-map-status")).to_contain_text("stores on the map")
    before = map_total(page)

    upload(page, "stores.csv", csv, partial=False)
    result = page.locator("#stores-import-result")
    expect(result.get_by_role("heading")).to_have_text("Import refused")
    expect(result.locator(".import-counts")).to_have_text("Received 5, written 0, bad 2.")
    rows = page.locator("#stores-import-errors tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("td")).to_have_text(
        ["line 3", "lat", "column 'lat' is not a number: 'north'"]
    )
    expect(rows.nth(1).locator("td").nth(0)).to_have_text("line 5")
    expect(rows.nth(1).locator("td").nth(1)).to_have_text("fence.radius_m")
    expect(rows.nth(1).locator("td").nth(2)).to_have_text("radius_m is required")
    headers = page.locator("#stores-import-errors thead th")
    expect(headers).to_have_text(["Row", "Field", "Reason"])
    # A language switch translates the table where it can (the reasons are the API's words).
    page.get_by_label("Language").select_option("zh-CN")
    expect(rows.nth(0).locator("td").first).to_have_text(ZH_LINE_3)
    page.get_by_label("语言").select_option("en")
    expect(rows.nth(0).locator("td").first).to_have_text("line 3")
    # Nothing was written.
    assert api_get(web, marketer, f"/api/stores?city={city}")["items"] == []
    assert_accessible(page)

    upload(page, "stores.csv", csv, partial=True)
    expect(result.get_by_role("heading")).to_have_text("Import done")
    expect(result.locator(".import-counts")).to_have_text("Received 5, written 3, bad 2.")
    listed = api_get(web, marketer, f"/api/stores?city={city}")["items"]
    assert sorted(s["id"] for s in listed) == [f"{city}-1", f"{city}-3", f"{city}-5"]
    # The map and the list show them.
    expect(page.locator("#stores-map")).to_have_attribute("data-stores", str(before + 3))
    page.get_by_label("City").fill(city)
    page.get_by_role("button", name="Show stores").click()
    table = page.locator("#stores-table tbody tr")
    expect(table).to_have_count(3)
    expect(table.locator("td:first-child")).to_have_text(["Good One", "Good Two", "Good Three"])
    expect(page.locator("#stores-list-status")).to_have_text("3 of 3 stores shown.")


def test_a_5000_store_import_from_the_console_shows_clusters(open_page, web, marketer):
    city = city_name()
    rng = random.Random(5000)
    spread = [
        (SHANGHAI[0] + rng.uniform(-0.08, 0.08), SHANGHAI[1] + rng.uniform(-0.08, 0.08))
        for _ in range(5000)
    ]
    lines = [
        f"{city}-{n:04d},Store {n},Brand{n % 7},{city},{lat:.6f},{lon:.6f},"
        f"{n} Test Road,Asia/Shanghai,,\n"
        for n, (lat, lon) in enumerate(spread)
    ]
    page = console(open_page, marketer)
    expect(page.locator("#stores-map-status")).to_contain_text("stores on the map")
    before = map_total(page)
    upload(page, "five-thousand.csv", CSV_HEADER + "".join(lines), partial=False)
    result = page.locator("#stores-import-result")
    expect(result.locator(".import-counts")).to_have_text(
        "Received 5000, written 5000, bad 0.", timeout=60_000
    )
    total = before + 5000
    expect(page.locator("#stores-map")).to_have_attribute("data-stores", str(total))
    expect(page.locator("#stores-map-status")).to_have_text(f"{total} stores on the map.")
    # Clustered: every store is in view (the map fits them all), counted in a cluster or shown
    # as its own pin.
    expect(page.locator("#stores-map .marker-cluster").first).to_be_visible()
    page.wait_for_function(
        """(total) => {
          const clusters = [...document.querySelectorAll('#stores-map .marker-cluster')];
          const inClusters = clusters.reduce((sum, el) => sum + Number(el.textContent), 0);
          return inClusters + document.querySelectorAll('#stores-map .store-pin').length === total;
        }""",
        arg=total,
    )
    assert page.locator("#stores-map .marker-cluster").count() < 200
    # Zoomed out no fence is drawn; zoomed in (keyboard: +), only those of the stores in view.
    the_map = page.locator("#stores-map")
    expect(the_map).to_have_attribute("data-fences", "0")
    the_map.focus()
    while int(the_map.get_attribute("data-zoom")) < 15:
        zoom = int(the_map.get_attribute("data-zoom"))
        page.keyboard.press("Equal")
        expect(the_map).not_to_have_attribute("data-zoom", str(zoom))
    drawn = int(the_map.get_attribute("data-fences"))
    assert 0 < drawn < total // 4, drawn
    # The list pages through them 50 at a time.
    page.get_by_label("City").fill(city)
    page.get_by_role("button", name="Show stores").click()
    expect(page.locator("#stores-table tbody tr")).to_have_count(50)
    expect(page.locator("#stores-list-status")).to_have_text("50 of 5000 stores shown.")
    page.get_by_role("button", name="More stores").click()
    expect(page.locator("#stores-table tbody tr")).to_have_count(100)
    expect(page.locator("#stores-table tbody tr").nth(50)).to_have_attribute(
        "data-store-id", f"{city}-0050"
    )
    expect(page.locator(f"#stores-table tbody tr[data-store-id='{city}-0050'] a")).to_be_focused()


def test_list_filters_by_city_brand_and_open_now_and_opens_a_store_page(open_page, web, marketer):
    city = city_name()
    lat, lon = SHANGHAI
    closed = {"tz": "Asia/Shanghai", "weekly": {}}  # no day has hours: closed at any time
    weekday = {"tz": "Europe/London", "weekly": {"mon": [["09:00", "17:30"]]}}
    stores = [
        {"id": f"{city}-a", "name": "Always Acme", "brand": "Acme", "opening_hours": None},
        {"id": f"{city}-b", "name": "Closed Acme", "brand": "Acme", "opening_hours": closed},
        {"id": f"{city}-c", "name": "Bolt Round", "brand": "Bolt", "opening_hours": None},
        {"id": f"{city}-d", "name": "Weekday Acme", "brand": "Acme", "opening_hours": weekday},
    ]
    for n, body in enumerate(stores):
        post_store(web, marketer, {**body, "city": city, "lat": lat + n * 0.001, "lon": lon})
    weekday_open = api_get(web, marketer, f"/api/stores?city={city}")["items"][3]["open_now"]

    page = console(open_page, marketer, width=PHONE)
    rows = page.locator("#stores-table tbody tr")
    page.get_by_label("City").fill(city)
    page.keyboard.press("Enter")
    expect(rows).to_have_count(4)
    page.get_by_label("Brand").fill("acme")
    page.keyboard.press("Enter")
    expect(rows.locator("td:first-child")).to_have_text(
        ["Always Acme", "Closed Acme", "Weekday Acme"]
    )
    expect(rows.locator("td:last-child")).to_have_text(
        ["Open", "Closed", "Open" if weekday_open else "Closed"]
    )
    page.get_by_label("Open now").check()
    page.get_by_role("button", name="Show stores").click()
    expected = ["Always Acme"] + (["Weekday Acme"] if weekday_open else [])
    expect(rows.locator("td:first-child")).to_have_text(expected)
    expect(page.locator("#stores-list-status")).to_have_text(f"{len(expected)} stores shown.")
    assert_accessible(page)

    # A row's link opens the store's page: its hours in its own zone, its fence.
    rows.first.get_by_role("link").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{web.url}/console/#stores/{city}-a")
    expect(page.get_by_role("heading", name="Always Acme")).to_be_visible()
    expect(page.get_by_text("No opening hours given: treated as always open.")).to_be_visible()
    page.get_by_role("link", name="All stores").click()
    page.get_by_label("City").fill(city)
    page.keyboard.press("Enter")
    rows.filter(has_text="Weekday Acme").get_by_role("link").click()
    hours = page.locator("#store-hours")
    expect(hours.locator("caption")).to_have_text("Local times in Europe/London")
    expect(hours.locator("tr[data-day='mon'] td")).to_have_text("09:00–17:30")
    expect(hours.locator("tr[data-day='tue'] td")).to_have_text("Closed")
    expect(page.locator(".facts")).to_contain_text("(Europe/London)")
    expect(page.locator("#fence-json")).to_have_value(
        json.dumps(
            {"type": "circle", "radius_m": 100, "center": [lon, lat + 0.003]},
            separators=(",", ":"),
        )
    )
    assert_accessible(page)


def test_a_store_page_on_the_map_and_in_chinese(open_page, web, marketer):
    city = city_name()
    store = post_store(
        web,
        marketer,
        {
            "id": f"{city}-zh",
            "name": "南京路旗舰店",
            "brand": "Acme",
            "city": city,
            "lat": 22.5,
            "lon": 114.0,
            "opening_hours": {"tz": "Asia/Shanghai", "weekly": {"sat": [["10:00", "22:00"]]}},
        },
    )
    page = console(open_page, marketer, locale="zh-CN", width=PHONE)
    expect(page.get_by_role("heading", name="全部门店地图")).to_be_visible()
    expect(page.locator("#stores-map-status")).to_contain_text("地图上共")
    assert_glyphs_render(page, "main")
    assert_accessible(page)
    # The store's marker on the map opens its page (the map fits every store: this one, far
    # south, stands alone).
    pin = page.locator(f"#stores-map .store-pin[data-store-id='{store['id']}']")
    expect(pin).to_have_attribute("title", f"南京路旗舰店，{city}")
    pin.click()
    expect(page.get_by_role("heading", name="南京路旗舰店")).to_be_visible()
    expect(page.locator("#store-hours tr[data-day='sat'] td")).to_have_text("10:00–22:00")
    expect(page.locator("#store-hours tr[data-day='sun'] td")).to_have_text("休息")
    expect(page.get_by_role("button", name="绘制多边形")).to_be_visible()
    assert_glyphs_render(page, ".store-page")
    assert_accessible(page)
    page.set_viewport_size({"width": DESKTOP, "height": 800})
    assert_accessible(page)


def test_the_drawing_hints_follow_a_language_switch(open_page, web, marketer):
    city = city_name()
    store = post_store(
        web,
        marketer,
        {
            "id": f"{city}-hint",
            "name": "Hints",
            "brand": "Acme",
            "city": city,
            "lat": SHANGHAI[0],
            "lon": SHANGHAI[1],
        },
    )
    page = console(open_page, marketer, path=f"/console/#stores/{store['id']}")
    expect(page.get_by_role("heading", name="Hints")).to_be_visible()
    page.get_by_label("Language").select_option("zh-CN")
    page.get_by_role("button", name="绘制多边形").click()
    cx, cy = map_centre(page)
    page.mouse.move(cx, cy, steps=3)
    # Leaflet-Geoman's own hint, in its Chinese words ("click to place the first vertex").
    expect(page.locator("#fence-map .leaflet-tooltip")).to_have_text("单击放置首个顶点")
    # Leaving the page with the fence's handles out tears the editor down cleanly (nothing
    # logged).
    page.keyboard.press("Escape")
    expect(page.locator("#fence-map .marker-icon").first).to_be_visible()
    errors = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.get_by_role("navigation").get_by_role("link", name="门店").click()
    expect(page.get_by_role("heading", name="全部门店地图")).to_be_visible()
    assert errors == []


def map_centre(page, selector="#fence-map"):
    """The map's centre on the screen (scrolled into view first)."""
    page.locator(selector).scroll_into_view_if_needed()
    box = page.locator(selector).bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def click_ring(page, points):
    for x, y in points:
        page.mouse.move(x, y, steps=3)
        page.mouse.click(x, y)
    page.mouse.move(*points[0], steps=3)
    page.mouse.click(*points[0])  # the first corner again closes the ring


def test_draw_a_circle_then_a_polygon_with_a_hole_and_save(open_page, web, marketer):
    city = city_name()
    store = post_store(
        web,
        marketer,
        {
            "id": f"{city}-draw",
            "name": "Drawn",
            "brand": "Acme",
            "city": city,
            "lat": SHANGHAI[0],
            "lon": SHANGHAI[1],
        },
    )
    page = console(open_page, marketer, path=f"/console/#stores/{store['id']}")
    expect(page.get_by_role("heading", name="Drawn")).to_be_visible()
    cx, cy = map_centre(page)  # the map is centred on the store's 100 m circle

    # A circle, drawn with the mouse: the centre, then the radius.
    page.get_by_role("button", name="Draw a circle").click()
    page.mouse.move(cx, cy)
    page.mouse.click(cx, cy)
    page.mouse.move(cx + 60, cy, steps=6)
    page.mouse.click(cx + 60, cy)
    expect(page.locator("#fence-status")).to_have_text("Shape drawn. Save to keep it.")
    first = json.loads(page.locator("#fence-json").input_value())
    assert first["type"] == "circle" and 20 <= first["radius_m"] <= 400
    # Its radius handle (the handle away from the centre) dragged outwards widens it.
    handles = page.locator("#fence-map .leaflet-marker-icon.marker-icon")
    expect(handles).to_have_count(2)
    boxes = [handles.nth(k).bounding_box() for k in range(2)]
    hx, hy = max(
        ((b["x"] + b["width"] / 2, b["y"] + b["height"] / 2) for b in boxes),
        key=lambda point: abs(point[0] - cx) + abs(point[1] - cy),
    )
    page.mouse.move(hx, hy)
    page.mouse.down()
    page.mouse.move(hx + 40, hy, steps=8)
    page.mouse.up()
    expect(page.locator("#fence-json")).not_to_have_value(json.dumps(first, separators=(",", ":")))
    drawn = json.loads(page.locator("#fence-json").input_value())
    assert drawn["radius_m"] > first["radius_m"] and drawn["center"] == first["center"]
    expect(page.locator("#fence-radius")).to_have_value(str(drawn["radius_m"]))
    page.get_by_role("button", name="Save fence").click()
    expect(page.locator("#fence-status")).to_have_text("Fence saved.")
    saved = api_get(web, marketer, f"/api/stores/{store['id']}")["fence"]
    assert saved["type"] == "circle" and saved["radius_m"] == drawn["radius_m"]
    assert saved["center"] == pytest.approx(drawn["center"], abs=1e-6)

    # Escape stops drawing; then a polygon, and a hole cut into it (Geoman's cut mode, driven
    # by mouse clicks).
    page.get_by_role("button", name="Draw a polygon").click()
    page.keyboard.press("Escape")
    expect(page.locator("#fence-status")).to_have_text("Drawing stopped.")
    page.get_by_role("button", name="Draw a polygon").click()
    cx, cy = map_centre(page)  # where the map is now: clicking the buttons may have scrolled
    outer = [(cx - 90, cy - 90), (cx + 90, cy - 90), (cx + 90, cy + 90), (cx - 90, cy + 90)]
    click_ring(page, outer)
    expect(page.locator("#fence-status")).to_have_text("Shape drawn. Save to keep it.")
    assert json.loads(page.locator("#fence-json").input_value())["type"] == "Polygon"
    page.get_by_role("button", name="Cut a hole").click()
    cx, cy = map_centre(page)
    hole = [(cx - 30, cy - 30), (cx + 30, cy - 30), (cx + 30, cy + 30), (cx - 30, cy + 30)]
    click_ring(page, hole)
    expect(page.locator("#fence-status")).to_have_text("Hole cut. Save to keep it.")
    fence = json.loads(page.locator("#fence-json").input_value())
    assert fence["type"] == "Polygon" and len(fence["coordinates"]) == 2
    page.get_by_role("button", name="Save fence").click()
    expect(page.locator("#fence-status")).to_have_text("Fence saved.")
    saved = api_get(web, marketer, f"/api/stores/{store['id']}")["fence"]
    assert saved["type"] == "Polygon"
    assert [len(ring) for ring in saved["coordinates"]] == [5, 5]  # shell and hole, closed
    lon, lat = SHANGHAI[1], SHANGHAI[0]
    shell = saved["coordinates"][0]
    assert min(p[0] for p in shell) < lon < max(p[0] for p in shell)
    assert min(p[1] for p in shell) < lat < max(p[1] for p in shell)

    # Without a mouse: a radius for a circle.
    page.get_by_label("Circle radius (metres)").fill("250")
    page.get_by_role("button", name="Use a circle of this radius").click()
    page.get_by_role("button", name="Save fence").click()
    expect(page.locator("#fence-status")).to_have_text("Fence saved.")
    assert api_get(web, marketer, f"/api/stores/{store['id']}")["fence"]["radius_m"] == 250


def test_the_servers_fence_errors_show_on_the_map(open_page, web, marketer):
    city = city_name()
    lat, lon = SHANGHAI
    store = post_store(
        web,
        marketer,
        {
            "id": f"{city}-bad",
            "name": "Bowtie",
            "brand": "Acme",
            "city": city,
            "lat": lat,
            "lon": lon,
        },
    )
    page = console(open_page, marketer, path=f"/console/#stores/{store['id']}", width=PHONE)
    expect(page.get_by_role("heading", name="Bowtie")).to_be_visible()
    d = 0.0005
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [
                [lon - d, lat - d],
                [lon + d, lat + d],
                [lon + d, lat - d],
                [lon - d, lat + d],
                [lon - d, lat - d],
            ]
        ],
    }
    page.get_by_label("Fence as JSON").fill(json.dumps(bowtie))
    page.get_by_role("button", name="Save fence").click()
    alert = page.locator("#fence-error")
    expect(alert).to_have_text(
        re.compile(
            r"^fence\.coordinates\[0\]: invalid ring: "
            r"self-intersection near \[121\.4737\d*, 31\.2304\d*\]$"
        )
    )
    expect(alert.locator("p")).to_have_attribute("data-field", "fence.coordinates[0]")
    expect(page.get_by_label("Fence as JSON")).to_have_attribute("aria-invalid", "true")
    # On the map: the message anchored at the crossing, the ring outlined in red.
    tip = page.locator("#fence-map .fence-error-tip")
    expect(tip).to_have_text(alert.inner_text())
    expect(page.locator("#fence-map path.fence-error-ring")).to_have_count(1)
    tip_box, (cx, cy) = tip.bounding_box(), map_centre(page)
    # The crossing is the store's point, at the map's centre: the message stands above it.
    assert tip_box["x"] < cx < tip_box["x"] + tip_box["width"]
    assert tip_box["y"] + tip_box["height"] < cy
    assert api_get(web, marketer, f"/api/stores/{store['id']}")["fence"]["type"] == "circle"
    assert_accessible(page)

    # Too many vertices: the whole fence outlined, the field named.
    ring = [[lon + 0.001 * (k % 2) * 0.5, lat + k * 1e-6] for k in range(1001)]
    page.get_by_label("Fence as JSON").fill(
        json.dumps({"type": "Polygon", "coordinates": [[*ring, ring[0]]]})
    )
    page.get_by_role("button", name="Save fence").click()
    expect(alert).to_have_text("fence.coordinates: too many vertices: 1001 > 1000")
    expect(tip).to_have_count(1)  # the previous message fades out (Leaflet: 200 ms)
    expect(tip).to_have_text("fence.coordinates: too many vertices: 1001 > 1000")
    expect(page.locator("#fence-map path.fence-error-ring")).to_have_count(1)

    # A circle 3 km away: the message at its centre, naming fence.center.
    far = {"type": "circle", "radius_m": 50, "center": [lon + 0.03, lat]}
    page.get_by_label("Fence as JSON").fill(json.dumps(far))
    page.get_by_role("button", name="Save fence").click()
    expect(alert).to_have_text(re.compile(r"^fence\.center: the fence is \d+ m from the store"))
    expect(tip).to_have_count(1)
    expect(tip).to_have_text(alert.inner_text())
    expect(page.locator("#fence-map path.fence-error-ring")).to_have_count(0)
    assert api_get(web, marketer, f"/api/stores/{store['id']}")["fence"]["type"] == "circle"


def test_geojson_import_then_export_downloads_the_filtered_stores(open_page, web, marketer):
    city = city_name()
    features = [
        {
            "type": "Feature",
            "id": f"{city}-{n}",
            "geometry": {"type": "Point", "coordinates": [SHANGHAI[1] + n * 0.001, SHANGHAI[0]]},
            "properties": {"name": f"Export {n}", "brand": "Acme", "city": city},
        }
        for n in range(3)
    ]
    bad = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": []}}
    collection = {"type": "FeatureCollection", "features": [features[0], bad, *features[1:]]}
    page = console(open_page, marketer)
    upload(
        page,
        "stores.geojson",
        json.dumps(collection),
        partial=True,
        mime="application/geo+json",
    )
    result = page.locator("#stores-import-result")
    expect(result.locator(".import-counts")).to_have_text("Received 4, written 3, bad 1.")
    expect(page.locator("#stores-import-errors tbody tr td")).to_have_text(
        ["feature 1", "geometry", "geometry must be a Point [lon, lat]"]
    )
    page.get_by_label("City").fill(city)
    page.get_by_role("button", name="Show stores").click()
    expect(page.locator("#stores-table tbody tr")).to_have_count(3)
    with page.expect_download() as info:
        page.get_by_role("button", name="Download GeoJSON").click()
    download = info.value
    assert download.suggested_filename == f"stores-{city}.geojson"
    doc = json.loads(download.path().read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection"
    points = [f for f in doc["features"] if f["geometry"]["type"] == "Point"]
    assert sorted(f["id"] for f in points) == [f"{city}-{n}" for n in range(3)]
    fences = [f for f in doc["features"] if f["properties"].get("role") == "fence"]
    assert {f["properties"]["store_id"] for f in fences} == {f"{city}-{n}" for n in range(3)}
    # The token went in a header, never in a URL.
    token = page.evaluate("sessionStorage.getItem('footfall.token')")
    assert token not in download.url
    expect(page.locator("#stores-export + p")).to_have_text("The file is downloaded.")
