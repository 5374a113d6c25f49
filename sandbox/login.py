"""The QR-code login of the video platforms, played for the publishing login stream.

A platform login is what social-auto-upload does in a browser: open the platform's creator page,
show its QR code, wait until the person scans it with the platform's app and says yes, and keep
the cookies the page then holds. Here the platform answers over HTTP::

    POST /publish/<platform>/logins                {"account_name", "account_id"?}
                                                   -> 201 {"data": {"login_id", "qr_png" (base64),
                                                      "qr_content", "expires_in"}}
    GET  /publish/<platform>/logins/<login_id>     -> {"data": {"login_id", "status", ...}}
                                                   status: waiting | confirmed | refused |
                                                   expired | cancelled; once confirmed also
                                                   "credentials" (cookies, as a browser's storage
                                                   state) and "nickname"
    POST /publish/<platform>/logins/<login_id>/cancel
                                                   the client gave up: the code stops working

``qr_png`` is a real PNG of a QR code whose text is ``qr_content``. ``account_id`` names an
account the caller already has: confirming its login also restores it in the publishing area
if that area had expired it.

Controls (with the bearer token, like the API), standing for the person with the phone::

    POST /publish/_logins/confirm   {"login_id": ...} or {"account_name": ...} (the newest login
                                    still waiting for that name), optional "nickname"
    POST /publish/_logins/refuse    the same keys: the person said no
    POST /publish/_logins/control   {"confirm_after_ms": X, "refuse_after_ms": X,
                                     "expire_after_ms": X, "start_fail_next": N, "reset": true}
    GET  /publish/_logins           every login, oldest first (no credentials)

``confirm_after_ms`` (or ``refuse_after_ms``) makes every new login confirm (refuse) by itself
that long after it started; 0, the default, waits for a control call. A login nobody answers
expires after ``expire_after_ms`` (default two minutes). ``start_fail_next`` answers the next N
starts with 503.
"""

from __future__ import annotations

import base64
import io
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import segno

from .publishing import PLATFORM, PLATFORMS
from .publishing import area_of as publishing_area_of
from .routing import PlatformError, Request, route

AREA = "publishing-login"
MAX_NAME = 100
WAITING, CONFIRMED, REFUSED, EXPIRED, CANCELLED = (
    "waiting",
    "confirmed",
    "refused",
    "expired",
    "cancelled",
)
SWITCHES = ("confirm_after_ms", "refuse_after_ms", "expire_after_ms", "start_fail_next")
DEFAULT_EXPIRE_MS = 120_000
LOGIN_ID = "(?P<login_id>[0-9a-f]{1,32})"


@dataclass
class Login:
    login_id: str
    platform: str
    account_name: str
    account_id: str
    started: float
    qr_content: str = ""
    status: str = WAITING
    confirm_at: float | None = None
    refuse_at: float | None = None
    expire_at: float = 0.0
    nickname: str = ""
    credentials: dict = field(default_factory=dict)
    finished: float | None = None

    def public(self) -> dict:
        """What the log shows: everything but the credentials."""
        return {
            "login_id": self.login_id,
            "platform": self.platform,
            "account_name": self.account_name,
            "account_id": self.account_id,
            "status": self.status,
            "qr_content": self.qr_content,
            "started": self.started,
            "finished": self.finished,
        }


@dataclass
class LoginArea:
    """Logins in progress and done, and the switches that answer them without a person."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    logins: dict[str, Login] = field(default_factory=dict)
    confirm_after_ms: int = 0
    refuse_after_ms: int = 0
    expire_after_ms: int = DEFAULT_EXPIRE_MS
    start_fail_next: int = 0

    def apply(self, changes: dict) -> dict:
        with self.lock:
            if changes.get("reset"):
                self.logins.clear()
                self.confirm_after_ms = self.refuse_after_ms = self.start_fail_next = 0
                self.expire_after_ms = DEFAULT_EXPIRE_MS
            for name in SWITCHES:
                if name in changes:
                    setattr(self, name, max(0, int(changes[name])))
            return self._switches()

    def _switches(self) -> dict:
        return {name: getattr(self, name) for name in SWITCHES}

    def settle(self, login: Login, now: float) -> None:
        """Apply what time decides (an automatic answer, the code's expiry); under the lock."""
        if login.status != WAITING:
            return
        if login.refuse_at is not None and now >= login.refuse_at:
            self.finish(login, REFUSED, now)
        elif login.confirm_at is not None and now >= login.confirm_at:
            self.finish(login, CONFIRMED, now)
        elif now >= login.expire_at:
            self.finish(login, EXPIRED, now)

    def finish(self, login: Login, status: str, now: float, nickname: str = "") -> None:
        login.status, login.finished = status, now
        if status == CONFIRMED:
            login.nickname = nickname or login.nickname or login.account_name
            login.credentials = _storage_state(login.platform)


def _storage_state(platform: str) -> dict:
    """Cookies as a browser's storage state, the shape social-auto-upload keeps per account."""
    return {
        "cookies": [
            {
                "name": "sessionid",
                "value": secrets.token_hex(16),
                "domain": f".{platform}.example",
                "path": "/",
                "httpOnly": True,
                "secure": True,
            }
        ],
        "origins": [],
    }


def area_of(server: Any) -> LoginArea:
    """The login area's state on a running ``SandboxPlatform`` (tests use it in-process)."""
    return server.area_state(AREA, LoginArea)


def _area(request: Request) -> LoginArea:
    return request.state(AREA, LoginArea)


def qr_png(content: str) -> bytes:
    """A PNG of the QR code of ``content``, big enough to scan from a screen."""
    buffer = io.BytesIO()
    segno.make(content, error="m").save(buffer, kind="png", scale=6, border=4)
    return buffer.getvalue()


def _text(body: dict, name: str, *, required: bool) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise PlatformError(400, f"{name} must be a string")
    value = str(value).strip()
    if required and not value:
        raise PlatformError(400, f"{name} is required")
    if len(value) > MAX_NAME or "\x00" in value:
        raise PlatformError(400, f"{name} is not a valid name")
    return value


def _platform(request: Request) -> str:
    platform = request.params["platform"]
    if platform not in PLATFORMS:
        raise PlatformError(404, f"Unknown platform {platform!r}")
    return platform


def _login(request: Request, area: LoginArea, platform: str) -> Login:
    with area.lock:
        login = area.logins.get(request.params["login_id"])
        if login is None or login.platform != platform:
            raise PlatformError(404, "Login not found")
        area.settle(login, time.time())
        return login


def _state(login: Login) -> dict:
    data: dict[str, Any] = {"login_id": login.login_id, "status": login.status}
    if login.status == CONFIRMED:
        data.update(credentials=login.credentials, nickname=login.nickname)
    return data


# --- the platform's API -----------------------------------------------------------------------


@route("POST", rf"/publish/{PLATFORM}/logins")
def start_login(request: Request) -> tuple[int, dict]:
    area = _area(request)
    platform = _platform(request)
    body = request.json()
    account_name = _text(body, "account_name", required=True)
    account_id = _text(body, "account_id", required=False)
    now = time.time()
    with area.lock:
        if area.start_fail_next:
            area.start_fail_next -= 1
            raise PlatformError(503, "Login service temporarily unavailable")
        login_id = secrets.token_hex(8)
        login = Login(
            login_id=login_id,
            platform=platform,
            account_name=account_name,
            account_id=account_id,
            started=now,
            confirm_at=now + area.confirm_after_ms / 1000 if area.confirm_after_ms else None,
            refuse_at=now + area.refuse_after_ms / 1000 if area.refuse_after_ms else None,
            expire_at=now + area.expire_after_ms / 1000,
            qr_content=f"https://{platform}.example/qr-login/{login_id}",
        )
        area.logins[login.login_id] = login
        expires_in = area.expire_after_ms / 1000
    return 201, {
        "data": {
            "login_id": login.login_id,
            "qr_png": base64.b64encode(qr_png(login.qr_content)).decode(),
            "qr_content": login.qr_content,
            "expires_in": expires_in,
        }
    }


@route("GET", rf"/publish/{PLATFORM}/logins/{LOGIN_ID}")
def login_status(request: Request) -> dict:
    area = _area(request)
    login = _login(request, area, _platform(request))
    with area.lock:
        data = _state(login)
    if login.status == CONFIRMED and login.account_id:
        # The account's new login works for publishing again.
        publishing_area_of(request.server).apply({"restore_login": [login.account_id]})
    return {"data": data}


@route("POST", rf"/publish/{PLATFORM}/logins/{LOGIN_ID}/cancel")
def cancel_login(request: Request) -> dict:
    area = _area(request)
    login = _login(request, area, _platform(request))
    with area.lock:
        if login.status == WAITING:
            area.finish(login, CANCELLED, time.time())
        return {"data": {"login_id": login.login_id, "status": login.status}}


# --- the person with the phone, and the switches ---------------------------------------------


def _answer(request: Request, status: str) -> dict:
    area = _area(request)
    body = request.json()
    login_id = _text(body, "login_id", required=False)
    account_name = _text(body, "account_name", required=False)
    nickname = _text(body, "nickname", required=False)
    if not login_id and not account_name:
        raise PlatformError(400, "login_id or account_name is required")
    now = time.time()
    with area.lock:
        for each in area.logins.values():
            area.settle(each, now)
        login: Login | None
        if login_id:
            login = area.logins.get(login_id)
        else:
            waiting = [
                candidate
                for candidate in area.logins.values()
                if candidate.account_name == account_name and candidate.status == WAITING
            ]
            login = max(waiting, key=lambda candidate: candidate.started) if waiting else None
        if login is None:
            raise PlatformError(404, "No such login waiting")
        if login.status != WAITING:
            raise PlatformError(409, f"The login is {login.status}")
        area.finish(login, status, now, nickname)
        return login.public()


@route("POST", r"/publish/_logins/confirm")
def confirm(request: Request) -> dict:
    return _answer(request, CONFIRMED)


@route("POST", r"/publish/_logins/refuse")
def refuse(request: Request) -> dict:
    return _answer(request, REFUSED)


@route("POST", r"/publish/_logins/control")
def control(request: Request) -> dict:
    try:
        return _area(request).apply(request.json())
    except (TypeError, ValueError) as exc:
        raise PlatformError(400, f"Bad control request: {exc}") from None


@route("GET", r"/publish/_logins")
def logins(request: Request) -> list:
    area = _area(request)
    now = time.time()
    with area.lock:
        for login in area.logins.values():
            area.settle(login, now)
        return [login.public() for login in area.logins.values()]
