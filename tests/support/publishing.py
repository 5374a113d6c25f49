"""Helpers for the publishing tests: video bytes, uploads and accounts through the
social-auto-upload publishing API, and worker settings kept short so the suite stays fast.

The fixtures are in conftest.py files: ``media_root`` in ``tests/conftest.py`` (the dialect
tests use it too), the publishing area of the sandbox platform in ``tests/publishing``."""

from __future__ import annotations

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from sandbox.platform import SandboxPlatform

COOLDOWN = 0.2
POLL = 0.1
MAX_UPLOAD = 200_000


def mp4_bytes(size: int = 4096, marker: str = "") -> bytes:
    """Bytes that start like an MP4 file (an ``ftyp`` box), ``size`` long, unique per marker."""
    head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + marker.encode()
    return head + b"\x00" * max(0, size - len(head))


def video(name: str = "clip.mp4", size: int = 4096, content_type: str = "video/mp4", body=None):
    return SimpleUploadedFile(name, mp4_bytes(size, name) if body is None else body, content_type)


def upload(client: APIClient, name: str = "clip.mp4", **kwargs) -> dict:
    response = client.post("/uploadSave", {"file": video(name, **kwargs)}, format="multipart")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def add_account(client: APIClient, platform_type: int, user_name: str) -> dict:
    response = client.post(
        "/addAccount",
        {"type": platform_type, "userName": user_name, "credentials": {"cookie": "secret"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["data"]


def records(client: APIClient, **query) -> dict:
    response = client.get("/getPublishTaskRecords", {"page_size": 100, **query})
    assert response.status_code == 200, response.content
    return response.json()["data"]


def statuses(client: APIClient, **query) -> dict[int, str]:
    return {r["id"]: r["status"] for r in records(client, **query)["records"]}


def worker_env(platform: SandboxPlatform, media: Path, **overrides: object) -> dict[str, str]:
    """What a worker subprocess needs to publish through ``platform`` from ``media``."""
    env = {
        "PUBLISHING_BASE_URL": platform.url,
        "PUBLISHING_TOKEN": "sandbox-token",
        "PUBLISHING_MEDIA_ROOT": str(media),
        "PUBLISHING_ACCOUNT_COOLDOWN_SECONDS": str(COOLDOWN),
        "PUBLISHING_POLL_SECONDS": str(POLL),
        "PUBLISHING_RETRY_BASE_SECONDS": "0.2",
    }
    env.update({key: str(value) for key, value in overrides.items()})
    return env
