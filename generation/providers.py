"""Providers: how generation kinds submit a job to an AI platform and read its state.

Chosen by ``settings.GENERATION["PROVIDER"]`` (a dotted path). A provider raises
``RetryableError`` for what may pass (429, 5xx, timeouts, unreachable) and ``PermanentError``
for what will not (bad token, a prompt the platform refuses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.utils.module_loading import import_string

from taskcenter.errors import RetryableError
from taskcenter.kinds import platform_http

# The platform's words for a job that is over; anything else means "still going".
SUCCESS, FAILURE = "SUCCESS", "FAILURE"


@dataclass(frozen=True)
class RemoteJob:
    """What the platform says about one job."""

    remote_id: str
    status: str
    progress: str = "0%"
    fail_reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    client_ref: str = ""
    submitted_at: datetime | None = None  # when the platform accepted the job, if it says

    @property
    def percent(self) -> int:
        """``"45%"`` as 45 (0 when the platform sends something else)."""
        try:
            return max(0, min(100, int(float(self.progress.rstrip("%").strip() or 0))))
        except ValueError:
            return 0


class Provider:
    """The interface; subclasses talk to one platform API."""

    def submit(self, platform: str, action: str, params: dict[str, Any], *, client_ref: str) -> str:
        """Start a job; return the platform's id for it. Same ``client_ref``, same job."""
        raise NotImplementedError

    def fetch(self, remote_id: str) -> RemoteJob:
        raise NotImplementedError


def get_provider() -> Provider:
    """A new instance of the configured provider (one per attempt: it may hold a session)."""
    return import_string(settings.GENERATION["PROVIDER"])()


class HttpProvider(Provider):
    """Speaks the platform's JSON API at ``GENERATION["BASE_URL"]`` with a bearer token."""

    def __init__(self) -> None:
        self.client = platform_http.PlatformClient(settings.GENERATION)

    def submit(self, platform: str, action: str, params: dict[str, Any], *, client_ref: str) -> str:
        path = f"/api/generate/{quote(platform, safe='')}/{quote(action, safe='')}"
        body = self._call("POST", path, json={**params, "client_ref": client_ref})
        remote_id = body.get("task_id")
        if not isinstance(remote_id, str) or not remote_id:
            raise RetryableError("Platform accepted the job without a task id")
        return remote_id

    def fetch(self, remote_id: str) -> RemoteJob:
        body = self._call("GET", f"/api/generate/tasks/{quote(remote_id, safe='')}")
        data = body.get("data")
        if isinstance(data, list):
            # Suno-style platforms answer a song's clips as a bare list: keep them, as an object
            # like every result (new-api's page gets the list back from the dialect).
            data = {"clips": data}
        return RemoteJob(
            remote_id=remote_id,
            status=str(body.get("status") or "UNKNOWN")[:64],
            progress=str(body.get("progress") or "0%")[:16],
            fail_reason=str(body.get("fail_reason") or "")[:2000],
            data=data if isinstance(data, dict) else {},
            client_ref=str(body.get("client_ref") or ""),
            submitted_at=_epoch(body.get("submit_time")),
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> dict:
        response, body = self.client.call(method, path, **kwargs)
        platform_http.raise_for_status(response, body)
        return body


def _epoch(value: Any) -> datetime | None:
    """An epoch-seconds field of the platform as a datetime; None when absent or nonsense."""
    try:
        return datetime.fromtimestamp(float(value), UTC) if value else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None
