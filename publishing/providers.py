"""Publish providers: how the publish kind hands one video to one account on a platform.

A provider is chosen by ``settings.PUBLISHING["PROVIDER"]`` (a dotted path). The steps are
separate calls so that the kind can keep the remote id between them and poll without holding a
worker: ``upload`` (once per record; the remote id is kept on the task), ``processing_status``
(polled until "ready"), ``publish`` (idempotent on the platform's side). Errors are
``RetryableError`` for what may pass (5xx, 429, timeouts) and ``PermanentError`` for what will
not (expired login, rejected video); ``LoginExpired`` tells the kind to mark the account.

Adding an account is a login on the platform (``publishing.login``): ``start_login`` answers a
QR code for the person to scan, ``login_status`` is polled until the platform says how it went
(with the account's credentials once confirmed), ``cancel_login`` gives up on one.
``check_login`` asks the platform whether an account's saved login still works (social-auto-upload's
``/getValidAccounts``).
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings
from django.utils.module_loading import import_string

from taskcenter.errors import PermanentError, RetryableError
from taskcenter.kinds import platform_http

READY = "ready"
PUBLISHED = "published"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class LoginState:
    """Where a platform login stands, as ``login_status`` reports it."""

    WAITING = "waiting"
    CONFIRMED = "confirmed"
    REFUSED = "refused"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FINISHED = frozenset({CONFIRMED, REFUSED, EXPIRED, CANCELLED})


class LoginExpired(PermanentError):
    """The platform no longer accepts the account's login: a person must log in again."""


@dataclass(frozen=True)
class Upload:
    remote_id: str
    size: int


@dataclass(frozen=True)
class Publication:
    remote_id: str
    url: str


@dataclass(frozen=True)
class LoginChallenge:
    """A login the platform started: the QR code (PNG bytes) to show until it is answered."""

    login_id: str
    qr_png: bytes
    expires_in: float


@dataclass(frozen=True)
class LoginProgress:
    """``status`` is a ``LoginState``; ``credentials`` and ``nickname`` once confirmed."""

    status: str
    credentials: dict
    nickname: str = ""


class PublishProvider:
    """The interface; subclasses talk to one platform API (or one family of them)."""

    def upload(
        self, platform: str, account: str, path: Path, filename: str, *, key: str = ""
    ) -> Upload:
        """Upload the file; a repeated ``key`` answers with the video the first upload made.

        The key covers a worker that died after the platform stored the video but before the
        remote id was saved: the retry gets the same video back instead of a second copy.
        """
        raise NotImplementedError

    def processing_status(self, platform: str, account: str, remote_id: str) -> str:
        """ "processing", "ready" or "published"."""
        raise NotImplementedError

    def publish(
        self,
        platform: str,
        account: str,
        remote_id: str,
        *,
        title: str,
        tags: list[str],
        schedule_time: str | None,
        options: Mapping[str, Any] | None = None,
    ) -> Publication:
        """Publish an uploaded video, now or at ``schedule_time`` (ISO 8601); ``options`` are
        the platform's own settings (category, draft, product link...), passed as they are."""
        raise NotImplementedError

    def check_login(
        self, platform: str, account: str, credentials: Mapping[str, Any], *, timeout: float
    ) -> bool:
        """Whether the platform still accepts ``credentials`` for ``account``.

        False is the platform's verdict; a platform that cannot answer raises
        ``RetryableError`` (or ``PermanentError``), which says nothing about the login.
        """
        raise NotImplementedError

    def start_login(self, platform: str, account_name: str, *, account: str = "") -> LoginChallenge:
        """Start a QR-code login for ``account_name``; ``account`` is the id of the account it
        logs in again, if there is one."""
        raise NotImplementedError

    def login_status(self, platform: str, login_id: str) -> LoginProgress:
        raise NotImplementedError

    def cancel_login(self, platform: str, login_id: str) -> None:
        """Give up on a login nobody will wait for any more (the code stops working)."""
        raise NotImplementedError


def get_provider() -> PublishProvider:
    """A new instance of the configured provider (one per attempt: it may hold a session)."""
    return import_string(settings.PUBLISHING["PROVIDER"])()


class MultipartFile:
    """A multipart/form-data body with one file part, read from disk as the socket sends it.

    ``requests`` sends a file-like body with a length by calling ``read()`` in blocks, so the
    video is never held in memory whole (``files=`` would build the entire body first).
    """

    CHUNK = 256 * 1024

    def __init__(self, path: Path, filename: str, field: str = "file") -> None:
        self.boundary = uuid.uuid4().hex
        safe_name = filename.replace('"', "").replace("\r", "").replace("\n", "")
        self.head = (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{safe_name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.path = path
        self.size = os.path.getsize(path)
        self._parts = self._iter()
        self._chunk = b""
        self._offset = 0

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def _iter(self) -> Iterator[bytes]:
        yield self.head
        with self.path.open("rb") as source:
            while chunk := source.read(self.CHUNK):
                yield chunk
        yield self.tail

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (fewer at a chunk's end, as a socket read may); b"" at the end."""
        if size < 0:
            rest = [self._chunk[self._offset :], *self._parts]
            self._chunk, self._offset = b"", 0
            return b"".join(rest)
        while self._offset >= len(self._chunk):
            chunk = next(self._parts, None)
            if chunk is None:
                return b""
            self._chunk, self._offset = chunk, 0
        end = min(len(self._chunk), self._offset + size)
        out = self._chunk[self._offset : end]
        self._offset = end
        return out


def _segment(value: str) -> str:
    return quote(value, safe="")


class HttpProvider(PublishProvider):
    """Speaks the platform's JSON API at ``PUBLISHING["BASE_URL"]`` with a bearer token."""

    def __init__(self) -> None:
        self.client = platform_http.PlatformClient(settings.PUBLISHING)

    def _call(self, method: str, path: str, account: str, **kwargs: Any) -> dict:
        headers = {"X-Account-Id": account, **kwargs.pop("headers", {})}
        response, body = self.client.call(method, path, headers=headers, **kwargs)
        if response.status_code >= 300:
            _raise_for(response, body)
        if not isinstance(body.get("data"), dict):
            raise RetryableError("Platform returned a body without a data object")
        return body["data"]

    def upload(
        self, platform: str, account: str, path: Path, filename: str, *, key: str = ""
    ) -> Upload:
        if not path.is_file():
            raise PermanentError(f"The video file {filename!r} is no longer on disk")
        body = MultipartFile(path, filename)
        headers = {"Content-Type": body.content_type, "Content-Length": str(len(body))}
        if key:
            headers["Idempotency-Key"] = key
        data = self._call(
            "POST", f"/publish/{_segment(platform)}/uploads", account, data=body, headers=headers
        )
        remote_id = str(data.get("video_id") or "")
        if not remote_id:
            raise RetryableError("Platform accepted the upload without a video id")
        return Upload(remote_id=remote_id, size=int(data.get("size") or 0))

    def processing_status(self, platform: str, account: str, remote_id: str) -> str:
        path = f"/publish/{_segment(platform)}/videos/{_segment(remote_id)}"
        return str(self._call("GET", path, account).get("status") or "")

    def publish(
        self,
        platform: str,
        account: str,
        remote_id: str,
        *,
        title: str,
        tags: list[str],
        schedule_time: str | None,
        options: Mapping[str, Any] | None = None,
    ) -> Publication:
        path = f"/publish/{_segment(platform)}/videos/{_segment(remote_id)}/publish"
        payload = {**(options or {}), "title": title, "tags": tags, "schedule_time": schedule_time}
        data = self._call("POST", path, account, json=payload)
        return Publication(remote_id=remote_id, url=str(data.get("url") or ""))

    # Login calls are short: a login stream polls them while a person looks at the code.
    LOGIN_TIMEOUT = 10.0

    def _login_call(self, method: str, path: str, account: str = "", **kwargs: Any) -> dict:
        timeout = min(self.client.timeout, self.LOGIN_TIMEOUT)
        return self._call(method, path, account, timeout=timeout, **kwargs)

    def start_login(self, platform: str, account_name: str, *, account: str = "") -> LoginChallenge:
        payload = {"account_name": account_name, "account_id": account}
        data = self._login_call(
            "POST", f"/publish/{_segment(platform)}/logins", account, json=payload
        )
        login_id = str(data.get("login_id") or "")
        try:
            image = base64.b64decode(str(data.get("qr_png") or ""), validate=True)
        except (binascii.Error, ValueError):
            image = b""
        if not login_id or not image.startswith(PNG_SIGNATURE):
            raise PermanentError("The platform started a login without a login id or a PNG QR code")
        try:
            expires_in = float(data.get("expires_in") or 0)
        except (TypeError, ValueError):
            expires_in = 0.0
        return LoginChallenge(login_id=login_id, qr_png=image, expires_in=expires_in)

    def login_status(self, platform: str, login_id: str) -> LoginProgress:
        path = f"/publish/{_segment(platform)}/logins/{_segment(login_id)}"
        data = self._login_call("GET", path)
        status = str(data.get("status") or "")
        if status not in LoginState.FINISHED and status != LoginState.WAITING:
            raise RetryableError(f"The platform answered an unknown login status {status!r}")
        credentials = data.get("credentials")
        if status == LoginState.CONFIRMED and not (isinstance(credentials, dict) and credentials):
            raise PermanentError("The platform confirmed the login without credentials")
        return LoginProgress(
            status=status,
            credentials=credentials if isinstance(credentials, dict) else {},
            nickname=str(data.get("nickname") or "")[:100],
        )

    def cancel_login(self, platform: str, login_id: str) -> None:
        path = f"/publish/{_segment(platform)}/logins/{_segment(login_id)}/cancel"
        self._login_call("POST", path)

    def check_login(
        self, platform: str, account: str, credentials: Mapping[str, Any], *, timeout: float
    ) -> bool:
        path = f"/publish/{_segment(platform)}/accounts/check"
        try:
            data = self._call(
                "POST", path, account, json={"credentials": dict(credentials)}, timeout=timeout
            )
        except LoginExpired:
            return False
        return data.get("logged_in") is True


def _raise_for(response: requests.Response, body: dict) -> None:
    status = response.status_code
    message = str(body.get("error") or body.get("detail") or f"Platform returned HTTP {status}")
    if status in (401, 403):
        raise LoginExpired(f"{message} (HTTP {status})")
    if status == 429:
        raise RetryableError(message, retry_after=platform_http.retry_after(response))
    if status >= 500 or status in (408, 409):
        # 409: the platform is still processing the video; asking again later is the fix.
        raise RetryableError(f"{message} (HTTP {status})")
    raise PermanentError(f"{message} (HTTP {status})")
