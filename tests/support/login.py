"""Helpers for the account login tests: the sandbox platform's person with the phone, and the
front end's reading of the first message."""

from __future__ import annotations

import base64

import requests

PNG_DATA_URL = "data:image/png;base64,"
AUTH = {"Authorization": "Bearer sandbox-token"}


def answer(platform, verb: str, **body) -> dict:
    response = requests.post(
        f"{platform.url}/publish/_logins/{verb}", json=body, headers=AUTH, timeout=5
    )
    assert response.status_code == 200, response.text
    return response.json()


def platform_logins(platform) -> list[dict]:
    return requests.get(f"{platform.url}/publish/_logins", headers=AUTH, timeout=5).json()


def read_qr_code(messages) -> bytes:
    """The first message, as the front end takes it: a data URL of the QR code's PNG."""
    first = next(messages)
    assert first.startswith(PNG_DATA_URL)
    assert len(first) > 100  # what the front end checks before it shows an image
    return base64.b64decode(first.removeprefix(PNG_DATA_URL), validate=True)
