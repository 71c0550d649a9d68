"""The OpenAPI document describes responses as the server sends them, not only requests."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate as validate_spec

ERROR_STATUSES = ("400", "401", "403", "404", "409", "413", "422", "429", "500", "503")
ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}

# Operations whose success answer is not JSON, with its media type.
NON_JSON = {
    ("get", "/metrics"): "text/plain",
    ("get", "/api/campaigns/{campaign_id}/analytics.csv"): "text/csv",
    ("get", "/api/campaigns/{campaign_id}/heatmap.png"): "image/png",
    ("get", "/api/campaigns/{campaign_id}/offers/{offer_id}/card.png"): "image/png",
    ("get", "/api/wallet/{coupon_id}/qr.png"): "image/png",
    ("get", "/api/wallet/{coupon_id}/qr.svg"): "image/svg+xml",
    ("get", "/api/wallet/{coupon_id}/card.png"): "image/png",
    ("get", "/api/game/sprites/{campaign_id}/{species}.png"): "image/png",
    ("get", "/api/streams/{stream_id}/products/{product_id}/image.jpg"): "image/jpeg",
    ("get", "/api/streams/{stream_id}/products/{product_id}/thumb.jpg"): "image/jpeg",
    ("get", "/api/streams/{stream_id}/report/{part}.csv"): "text/csv",
    ("get", "/api/stores/export.geojson"): "application/geo+json",
    ("get", "/api/audit.csv"): "text/csv",
}


@pytest.fixture
def spec(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_the_document_is_valid_openapi(spec):
    validate_spec(spec)
    assert len(list(operations(spec))) >= 76


def test_every_operation_documents_its_success_answer(spec):
    for method, path, operation in operations(spec):
        success = {k: v for k, v in operation["responses"].items() if k.startswith("2")}
        assert success, (method, path)
        for status, response in success.items():
            content = response.get("content")
            assert content, (method, path, status)
            expected = NON_JSON.get((method, path), "application/json")
            assert list(content) == [expected], (method, path, content)
            schema = content[expected]["schema"]
            if expected == "application/json":
                # A named model, never an empty schema.
                assert schema["$ref"].startswith("#/components/schemas/"), (method, path)
                name = schema["$ref"].rsplit("/", 1)[1]
                assert spec["components"]["schemas"][name]["properties"], name


def test_every_error_is_documented_as_the_envelope(spec):
    for method, path, operation in operations(spec):
        responses = operation["responses"]
        for status in ERROR_STATUSES:
            assert status in responses, (method, path, status)
            schema = responses[status]["content"]["application/json"]["schema"]
            # The import's 422 also carries its row report; it is still an envelope.
            if (method, path, status) == ("post", "/api/stores/import", "422"):
                name = schema["$ref"].rsplit("/", 1)[1]
                assert "error" in spec["components"]["schemas"][name]["required"]
                continue
            assert schema == ENVELOPE, (method, path, status)
        for status in ("429", "503"):
            header = responses[status]["headers"]["Retry-After"]
            assert header["required"] is True
            assert header["schema"]["type"] == "integer"
    envelope = spec["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    body = spec["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"code", "message", "field"}
    # flask-openapi3's default (a list of pydantic errors) is not what the server sends.
    assert "ValidationErrorModel" not in spec["components"]["schemas"]


def test_the_422_in_the_document_is_what_the_server_sends(client, auth, spec):
    headers, _ = auth.headers()
    response = client.post("/api/location/fix", json={"lat": "north"}, headers=headers)
    assert response.status_code == 422
    body = response.get_json()
    envelope = spec["components"]["schemas"]["ErrorEnvelope"]
    assert set(envelope["required"]) <= set(body)
    assert set(spec["components"]["schemas"]["ErrorBody"]["required"]) <= set(body["error"])


def test_images_document_their_etag_and_not_modified(spec):
    for method, path in [
        ("get", "/api/game/sprites/{campaign_id}/{species}.png"),
        ("get", "/api/streams/{stream_id}/products/{product_id}/image.jpg"),
    ]:
        responses = spec["paths"][path][method]["responses"]
        assert responses["200"]["headers"]["ETag"]["required"] is True
        assert "304" in responses


def test_two_request_bodies_of_the_same_class_name_keep_their_own_schema(spec):
    # campaigns.VoidBody {reason} and redemptions.VoidBody {coupon_id, code, order_ref} once
    # shared one component, so one operation documented the other's body.
    def body_schema(path):
        ref = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        name = ref["schema"]["$ref"].rsplit("/", 1)[1]
        return spec["components"]["schemas"][name]

    assert set(body_schema("/api/coupons/{coupon_id}/void")["properties"]) == {"reason"}
    assert "coupon_id" in body_schema("/api/redemptions/void")["properties"]
