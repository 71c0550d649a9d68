"""Bulk store import: 5,000 demo stores as CSV and GeoJSON, all-or-nothing, partial, refusals."""

from __future__ import annotations

import copy
import csv
import io
import json

import pytest

from geo import keys
from geo.demo import generate_stores, stores_to_csv, stores_to_geojson

from .helpers import assert_error

N = 5000
BOWTIE = {
    "type": "Polygon",
    "coordinates": [
        [[121.47, 31.23], [121.471, 31.231], [121.471, 31.23], [121.47, 31.231], [121.47, 31.23]]
    ],
}


@pytest.fixture(scope="module")
def stores() -> list[dict]:
    """The demo stores, shared by the module: tests copy before they change one."""
    return generate_stores(N)


@pytest.fixture(scope="module")
def demo_csv(stores) -> str:
    return stores_to_csv(stores)


@pytest.fixture
def marketer(auth):
    headers, _ = auth.headers("marketer")
    return headers


@pytest.fixture
def upload(client, marketer):
    def post(data, content_type: str = "text/csv", query: str = "", headers=None):
        if isinstance(data, str):
            data = data.encode()
        return client.post(
            f"/api/stores/import{query}",
            data=data,
            content_type=content_type,
            headers=marketer if headers is None else headers,
        )

    return post


def total(client, headers, **filters) -> int:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    response = client.get(f"/api/stores?limit=1&{query}", headers=headers)
    assert response.status_code == 200
    return response.get_json()["total"]


def edit_csv(text: str, edits: dict[int, dict[str, str]]) -> str:
    """Change cells of data rows (0-based store index -> {column: raw cell text})."""
    rows = list(csv.DictReader(io.StringIO(text)))
    for index, cells in edits.items():
        rows[index].update(cells)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def line_of(index: int) -> str:
    """The label of a data row: the header is line 1."""
    return f"line {index + 2}"


BEIJING_SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [
            [116.4064, 39.9032],
            [116.4084, 39.9032],
            [116.4084, 39.9052],
            [116.4064, 39.9052],
            [116.4064, 39.9032],
        ]
    ],
}

# Bad rows: (store index, cell edits, field, words in the reason)
BAD_ROWS = [
    (10, {"lat": "north"}, "lat", "not a number"),
    (20, {"lon": "181.5"}, "lon", "less than or equal to 180"),
    (30, {"fence": json.dumps(BOWTIE)}, "fence.coordinates[0]", "self-intersection"),
    (40, {"name": ""}, "name", "at least 1 character"),
    (50, {"id": "st-00001"}, "id", "duplicate id 'st-00001'"),
    (60, {"hours": '{"tz": "Asia/Shanghai", "weekly": '}, "hours", "not valid JSON"),
    # A Shanghai store with a fence drawn in Beijing, and with a circle centred there.
    (70, {"fence": json.dumps(BEIJING_SQUARE)}, "fence.coordinates", "from the store's point"),
    (
        80,
        {"fence": json.dumps({"type": "circle", "radius_m": 100, "center": [116.4074, 39.9042]})},
        "fence.center",
        "from the store's point",
    ),
]


@pytest.fixture(scope="module")
def bad_csv(demo_csv) -> str:
    return edit_csv(demo_csv, {i: cells for i, cells, _, _ in BAD_ROWS})


def check_bad_rows_reported(report: dict) -> None:
    assert report["received"] == N
    assert report["rejected"] == len(BAD_ROWS)
    assert [e["at"] for e in report["errors"]] == [line_of(i) for i, _, _, _ in BAD_ROWS]
    for error, (_, _, field, words) in zip(report["errors"], BAD_ROWS, strict=True):
        assert error["field"] == field, error
        assert words in error["reason"], error
    duplicate = next(e for e in report["errors"] if e["field"] == "id")
    assert "(also line 2)" in duplicate["reason"]  # the duplicate names the first


# -- CSV -------------------------------------------------------------------------------------
def test_import_5000_stores_from_csv(client, marketer, upload, stores, demo_csv, redis_client):
    response = upload(demo_csv)
    assert response.status_code == 201, response.get_json()
    assert response.get_json() == {"received": N, "written": N, "rejected": 0, "errors": []}
    assert total(client, marketer) == N
    assert redis_client.hlen(keys.STORES) == N
    assert redis_client.zcard(keys.STORE_LOC) == N

    first = stores[0]
    got = client.get(f"/api/stores/{first['id']}", headers=marketer).get_json()
    for field in ("name", "brand", "city", "lat", "lon", "address", "opening_hours"):
        assert got[field] == first[field], field
    assert got["fence"]["type"] == first["fence"]["type"]
    city = first["city"]
    assert total(client, marketer, city=city) == sum(1 for s in stores if s["city"] == city)


def test_bad_rows_reject_the_whole_file(client, marketer, upload, bad_csv, redis_client):
    existing = {
        "id": "st-keep",
        "name": "Keep",
        "brand": "B",
        "city": "Shanghai",
        "lat": 31.2,
        "lon": 121.4,
    }
    assert client.post("/api/stores", json=existing, headers=marketer).status_code == 201
    version = redis_client.get(keys.VERSION)

    response = upload(bad_csv)
    error = assert_error(response, 422, "import_rejected", line_of(BAD_ROWS[0][0]))
    assert "nothing was written" in error["message"]
    report = response.get_json()
    assert report["written"] == 0
    check_bad_rows_reported(report)

    assert total(client, marketer) == 1
    assert redis_client.hkeys(keys.STORES) == ["st-keep"]
    assert redis_client.get(keys.VERSION) == version


def test_partial_import_writes_only_the_good_rows(client, marketer, upload, bad_csv, stores):
    response = upload(bad_csv, query="?partial=true")
    assert response.status_code == 201, response.get_json()
    report = response.get_json()
    assert report["written"] == N - len(BAD_ROWS)
    check_bad_rows_reported(report)

    assert total(client, marketer) == N - len(BAD_ROWS)
    for index, _, _, _ in BAD_ROWS[:-1]:
        assert client.get(f"/api/stores/{stores[index]['id']}", headers=marketer).status_code == 404
    # The duplicate row lost: the first st-00001 is the one kept.
    kept = client.get("/api/stores/st-00001", headers=marketer).get_json()
    assert kept["name"] == stores[0]["name"]


def test_partial_import_with_only_bad_rows_writes_nothing(upload):
    text = "name,brand,city,lat,lon\nA,B,C,north,1\n,B,C,1,1\n"
    response = upload(text, query="?partial=true")
    assert_error(response, 422, "import_rejected", "line 2")
    assert response.get_json()["written"] == 0


def test_reimport_updates_in_place(client, marketer, upload, stores, redis_client):
    few = stores[:30]
    assert upload(stores_to_csv(few)).status_code == 201
    moved = copy.deepcopy(few)
    old_city = few[0]["city"]
    moved[0].update(city="Suzhou", name="Moved store", lat=31.30, lon=120.62)
    if moved[0]["fence"]["type"] != "circle":
        moved[0]["fence"] = {"type": "circle", "radius_m": 80}

    response = upload(stores_to_csv(moved))
    assert response.status_code == 201
    assert response.get_json()["written"] == 30
    assert total(client, marketer) == 30
    for index in (keys.IDS, keys.STORE_LOC):
        assert redis_client.zcard(index) == 30
    assert redis_client.hlen(keys.STORES) == 30

    got = client.get(f"/api/stores/{few[0]['id']}", headers=marketer).get_json()
    assert (got["name"], got["city"], got["lat"]) == ("Moved store", "Suzhou", 31.30)
    in_old = client.get(f"/api/stores?city={old_city}&limit=500", headers=marketer).get_json()
    assert few[0]["id"] not in [s["id"] for s in in_old["items"]]
    assert in_old["total"] == sum(1 for s in few[1:] if s["city"] == old_city)
    in_new = client.get("/api/stores?city=suzhou", headers=marketer).get_json()
    assert [s["id"] for s in in_new["items"]] == [few[0]["id"]]
    near = client.get(
        "/api/stores/nearby?lat=31.30&lon=120.62&radius_m=100", headers=marketer
    ).get_json()
    assert [s["id"] for s in near["items"]] == [few[0]["id"]]


def test_csv_columns_may_come_in_any_order_and_ids_are_optional(client, marketer, upload):
    text = "lon,lat,city,brand,name,tz\n121.47,31.23,Shanghai,Acme,First,Asia/Shanghai\n"
    response = upload(text)
    assert response.status_code == 201, response.get_json()
    item = client.get("/api/stores", headers=marketer).get_json()["items"][0]
    assert (item["lat"], item["lon"]) == (31.23, 121.47)
    assert item["opening_hours"] == {"tz": "Asia/Shanghai", "always": True}
    assert item["fence"]["radius_m"] == 100


def test_csv_with_a_byte_order_mark(client, marketer, upload, stores):
    response = upload(b"\xef\xbb\xbf" + stores_to_csv(stores[:3]).encode())
    assert response.status_code == 201, response.get_json()
    assert total(client, marketer) == 3


# -- GeoJSON ---------------------------------------------------------------------------------
def test_import_5000_stores_from_geojson_with_a_bad_feature(client, marketer, upload, stores):
    doc = stores_to_geojson(stores)
    good = copy.deepcopy(doc["features"][7])
    doc["features"][7]["geometry"] = {
        "type": "LineString",
        "coordinates": [[121.47, 31.23], [121.48, 31.24]],
    }
    doc["features"][99]["properties"]["fence"] = BOWTIE
    response = upload(json.dumps(doc), "application/geo+json")
    assert_error(response, 422, "import_rejected", "features[7]")
    report = response.get_json()
    assert report["received"] == N and report["written"] == 0
    assert [(e["at"], e["field"]) for e in report["errors"]] == [
        ("features[7]", "geometry"),
        ("features[99]", "fence.coordinates[0]"),
    ]
    assert total(client, marketer) == 0

    doc["features"][7] = good
    del doc["features"][99]
    response = upload(json.dumps(doc), "application/geo+json")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["written"] == N - 1
    assert total(client, marketer) == N - 1
    store = stores[7]
    got = client.get(f"/api/stores/{store['id']}", headers=marketer).get_json()
    assert (got["lat"], got["lon"]) == (store["lat"], store["lon"])


def _feature(fid: str, coordinates, **props) -> dict:
    properties = {"name": f"Store {fid}", "brand": "Acme", "city": "Shanghai", **props}
    return {
        "type": "Feature",
        "id": fid,
        "geometry": {"type": "Point", "coordinates": coordinates},
        "properties": properties,
    }


@pytest.mark.parametrize("content_type", ["application/geo+json", "application/json"])
def test_geojson_coordinates_are_lon_lat(client, marketer, upload, content_type):
    doc = {
        "type": "FeatureCollection",
        "features": [
            _feature("st-lonlat", [121.47, 31.23]),
            _feature("st-alt", [121.48, 31.24, 12.5]),
        ],
    }
    response = upload(json.dumps(doc), content_type)
    assert response.status_code == 201, response.get_json()
    got = client.get("/api/stores/st-lonlat", headers=marketer).get_json()
    assert (got["lat"], got["lon"]) == (31.23, 121.47)
    assert got["fence"]["center"] == [121.47, 31.23]
    near = client.get(
        "/api/stores/nearby?lat=31.23&lon=121.47&radius_m=50", headers=marketer
    ).get_json()
    assert [s["id"] for s in near["items"]] == ["st-lonlat"]


@pytest.mark.parametrize(
    "feature, field",
    [
        pytest.param(None, "type", id="null"),
        pytest.param({"type": "Point", "coordinates": [1, 2]}, "type", id="geometry-not-feature"),
        pytest.param(_feature("x", [121.47]), "geometry", id="one-coordinate"),
        pytest.param({**_feature("x", [1, 2]), "geometry": None}, "geometry", id="no-geometry"),
        pytest.param(_feature("x", [31.23, 121.47]), "lat", id="lat-lon-swapped-out-of-range"),
        pytest.param(_feature("x", ["121", "31"], lat=31), "properties", id="lat-in-properties"),
        pytest.param(
            {**_feature("x", [1, 2]), "properties": [1]}, "properties", id="properties-list"
        ),
        pytest.param(_feature("x", [121.47, 31.23], colour="red"), "colour", id="unknown-prop"),
        pytest.param(
            _feature("x", [121.47, 31.23], opening_hours={"tz": "Nowhere"}),
            "opening_hours.weekly",
            id="bad-hours",
        ),
        pytest.param(
            _feature("x", [121.47, 31.23], fence=BEIJING_SQUARE),
            "fence.coordinates",
            id="shanghai-store-beijing-fence",
        ),
        # A Paris store whose fence was written [lat, lon]: it lands off Somalia.
        pytest.param(
            _feature(
                "x",
                [2.3522, 48.8566],
                fence={
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [48.8556, 2.3512],
                            [48.8576, 2.3512],
                            [48.8576, 2.3532],
                            [48.8556, 2.3532],
                            [48.8556, 2.3512],
                        ]
                    ],
                },
            ),
            "fence.coordinates",
            id="fence-lat-lon-swapped",
        ),
    ],
)
def test_bad_geojson_features_are_reported_by_index(upload, feature, field):
    doc = {"type": "FeatureCollection", "features": [_feature("st-ok", [121.47, 31.23]), feature]}
    response = upload(json.dumps(doc), "application/geo+json")
    assert_error(response, 422, "import_rejected", "features[1]")
    assert [(e["at"], e["field"]) for e in response.get_json()["errors"]] == [
        ("features[1]", field)
    ]


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"type": "Feature"}, "type"),
        ([], "type"),
        ({"type": "FeatureCollection"}, "features"),
        ({"type": "FeatureCollection", "features": {}}, "features"),
    ],
)
def test_geojson_that_is_not_a_feature_collection(upload, doc, field):
    assert_error(upload(json.dumps(doc), "application/geo+json"), 422, "invalid_geojson", field)


def test_geojson_without_features_is_empty(upload):
    doc = {"type": "FeatureCollection", "features": []}
    assert_error(upload(json.dumps(doc), "application/geo+json"), 422, "empty_import", "file")


# -- refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, content_type, query, status, code, field",
    [
        pytest.param(b"", "text/csv", "", 422, "empty_import", "body", id="empty-csv"),
        pytest.param(
            b"", "application/geo+json", "", 422, "empty_import", "body", id="empty-geojson"
        ),
        pytest.param(
            b"id,name,brand,city,lat,lon\n",
            "text/csv",
            "",
            422,
            "empty_import",
            "file",
            id="header-only",
        ),
        pytest.param(
            b"<stores/>",
            "application/xml",
            "",
            415,
            "unsupported_media_type",
            "Content-Type",
            id="xml",
        ),
        pytest.param(
            b"name,brand",
            "application/octet-stream",
            "",
            415,
            "unsupported_media_type",
            "Content-Type",
            id="octet-stream",
        ),
        pytest.param(
            b"name,brand,city,lat,lon\nCaf\xe9,B,C,1,2\n",
            "text/csv",
            "",
            422,
            "invalid_encoding",
            "body",
            id="latin-1",
        ),
        pytest.param(
            b"name,brand,city,lat,lon,phone\nA,B,C,1,2,3\n",
            "text/csv",
            "",
            422,
            "invalid_csv",
            "file",
            id="unknown-column",
        ),
        pytest.param(
            b"name,brand,city,lat\nA,B,C,1\n",
            "text/csv",
            "",
            422,
            "invalid_csv",
            "file",
            id="missing-column",
        ),
        pytest.param(
            b'name,brand,city,lat,lon,fence\nA,B,C,1,2,"' + b"[" * 200_000 + b'"\n',
            "text/csv",
            "",
            422,
            "invalid_csv",
            "file",
            id="cell-over-csv-limit",
        ),
        pytest.param(
            b'name,brand,city,lat,lon,fence\nA,B,C,1,2,"' + b"[" * 50_000 + b'"\n',
            "text/csv",
            "",
            422,
            "import_rejected",
            "line 2",
            id="deeply-nested-cell",
        ),
        pytest.param(
            b"name,brand,city,lat,lon\nA,B,C,1,2\n",
            "application/geo+json",
            "",
            400,
            "malformed_json",
            "body",
            id="csv-sent-as-geojson",
        ),
        pytest.param(
            b"name,brand,city,lat,lon\nA,B,C,1,2\n",
            "text/plain",
            "?format=geojson",
            400,
            "malformed_json",
            "body",
            id="format-overrides-type",
        ),
        pytest.param(
            b"{}", "text/csv", "?format=xml", 422, "validation_error", "format", id="unknown-format"
        ),
        pytest.param(
            b"a", "text/csv", "?partial=maybe", 422, "validation_error", "partial", id="bad-partial"
        ),
    ],
)
def test_import_refusals(upload, redis_client, data, content_type, query, status, code, field):
    assert_error(upload(data, content_type, query), status, code, field)
    assert redis_client.hlen(keys.STORES) == 0


def test_format_query_overrides_the_content_type(client, marketer, upload):
    doc = {"type": "FeatureCollection", "features": [_feature("st-q", [121.47, 31.23])]}
    response = upload(json.dumps(doc), "text/plain", "?format=geojson")
    assert response.status_code == 201, response.get_json()
    assert total(client, marketer) == 1


def test_row_with_too_many_cells(upload):
    response = upload("name,brand,city,lat,lon\nA,B,C,1,2,extra\n")
    assert_error(response, 422, "import_rejected", "line 2")
    assert "more cells" in response.get_json()["errors"][0]["reason"]


# -- who may import --------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["shopper", "staff", "host"])
def test_import_refused_to_other_roles(auth, upload, redis_client, role):
    headers, _ = auth.headers(role, store_id="st-1" if role == "staff" else None)
    response = upload("name,brand,city,lat,lon\nA,B,C,1,2\n", headers=headers)
    assert_error(response, 403, "forbidden_role")
    assert redis_client.hlen(keys.STORES) == 0


def test_import_refused_to_anonymous(upload, redis_client):
    response = upload("name,brand,city,lat,lon\nA,B,C,1,2\n", headers={})
    assert_error(response, 401, "unauthorized")
    assert redis_client.hlen(keys.STORES) == 0


def test_admin_may_import(auth, upload):
    headers, _ = auth.headers("admin")
    response = upload("name,brand,city,lat,lon\nA,B,C,1,2\n", headers=headers)
    assert response.status_code == 201
