"""Small assertions shared by the API tests."""

from __future__ import annotations


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    """Check the status and the JSON error envelope, and return the error body."""
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert {"code", "message", "field"} <= set(error)
    assert error["code"] == code, error
    assert error["field"] == field, error
    assert isinstance(error["message"], str) and error["message"]
    return error


def bearer(token: str) -> dict:
    """Return the Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}
