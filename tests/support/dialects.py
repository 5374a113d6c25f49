"""The error envelope of each API dialect, by URL prefix, as its clients parse it."""

from __future__ import annotations

from typing import Any

PUBLISHING = "social-auto-upload publishing API"
GENERATION = "new-api task center"
SYNC = "data sync service"
INTEGRATION = "integration tasks table"
CANONICAL = "canonical API"

# A path under each dialect, for unknown-URL and crash checks.
PREFIXES = {
    PUBLISHING: "/",
    GENERATION: "/api/task/",
    SYNC: "/api/sync/",
    INTEGRATION: "/api/integration/",
    CANONICAL: "/api/v1/",
}


def dialect_of(path: str) -> str:
    matches = [(prefix, name) for name, prefix in PREFIXES.items() if path.startswith(prefix)]
    return max(matches)[1] if matches else CANONICAL


def assert_error_envelope(dialect: str, response: Any, status: int | None = None) -> dict:
    """The response is JSON in ``dialect``'s error envelope; returns the body."""
    if status is not None:
        assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response.content[:500]
    body = response.json()
    code = response.status_code
    if dialect == PUBLISHING:
        assert body["code"] == code, body
        assert isinstance(body["msg"], str), body
        assert body["msg"], body
        assert body["data"] is None or isinstance(body["data"], dict), body
    elif dialect == GENERATION:
        assert body["success"] is False, body
        assert isinstance(body["message"], str), body
        assert body["message"], body
    elif dialect in (SYNC, INTEGRATION):
        assert body["success"] is False, body
        assert isinstance(body["error"]["code"], str), body
        assert isinstance(body["error"]["message"], str), body
        assert body["error"]["message"], body
    else:
        assert set(body) >= {"detail"}, body
        assert isinstance(body["detail"], str | list), body
        assert body["detail"], body
    return body
