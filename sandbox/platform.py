"""The sandbox platform server: a twitter-like JSON API over real HTTP, stdlib only.

API (every call needs ``Authorization: Bearer <token>``; ``X-Account-Id`` and ``X-Proxy-Id`` are
recorded in the request log; lists take ``?cursor=&count=`` and answer
``{"data": [...], "next_cursor": "..." | null}``)::

    GET /api/users/<username>                   {"data": {...profile...}}
    GET /api/users/<username>/tweets            ?include_replies=&include_retweets=
    GET /api/users/<username>/followers
    GET /api/users/<username>/following
    GET /api/search/tweets                      ?q=&lang=
    GET /api/hashtags/<tag>/tweets

Errors are ``{"error": "..."}``: 401 bad token, 403 "Account suspended", 404 unknown user or
path, 400 bad cursor or count, 429 with ``Retry-After``, 503.

Test and demo controls (no token; the command binds to loopback by default)::

    POST /_control   {"rate_limit_next": N, "retry_after": S, "fail_next": N, "slow_ms": X,
                      "suspend_account": "account-123" | [...], "reset": true}
    GET  /_control   the current switches
    GET  /_requests  the request log, oldest first
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from . import data

# A fixed, public token: the sandbox guards nothing, the check exercises the 401 path.
DEFAULT_TOKEN = "sandbox-token"  # noqa: S105
DEFAULT_COUNT = 20
MAX_COUNT = 100
USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
# Usernames with this prefix do not exist: a deterministic way to reach the 404 path.
MISSING_PREFIX = "gone_"
SUSPENDED = "Account suspended"


class PlatformError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        label, offset = raw.split(":")
        if label != "offset" or int(offset) < 0:
            raise ValueError(raw)
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise PlatformError(400, "Invalid cursor") from None


class Switches:
    """Fault switches and the request log, shared by the handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[dict] = []
        self.reset()

    def reset(self) -> None:
        self.rate_limit_next = 0
        self.retry_after = 2
        self.fail_next = 0
        self.slow_ms = 0
        self.suspended: set[str] = set()
        self.log.clear()

    def apply(self, changes: dict) -> None:
        with self.lock:
            if changes.get("reset"):
                self.reset()
            for name in ("rate_limit_next", "retry_after", "fail_next", "slow_ms"):
                if name in changes:
                    setattr(self, name, max(0, int(changes[name])))
            accounts = changes.get("suspend_account", [])
            self.suspended.update([accounts] if isinstance(accounts, str) else accounts)

    def state(self) -> dict:
        with self.lock:
            return {
                "rate_limit_next": self.rate_limit_next,
                "retry_after": self.retry_after,
                "fail_next": self.fail_next,
                "slow_ms": self.slow_ms,
                "suspended_accounts": sorted(self.suspended),
            }

    def injected_fault(self, account_id: str) -> PlatformError | None:
        """The fault this request must get, consuming one-shot switches."""
        with self.lock:
            if account_id and account_id in self.suspended:
                return PlatformError(403, SUSPENDED)
            if self.rate_limit_next:
                self.rate_limit_next -= 1
                return PlatformError(
                    429, "Rate limit exceeded", {"Retry-After": str(self.retry_after)}
                )
            if self.fail_next:
                self.fail_next -= 1
                return PlatformError(503, "Service temporarily unavailable")
        return None


def _page(items: list[dict], query: dict[str, str]) -> dict:
    offset = decode_cursor(query.get("cursor", ""))
    try:
        count = int(query.get("count") or DEFAULT_COUNT)
    except ValueError:
        raise PlatformError(400, "count must be an integer") from None
    if not 1 <= count <= MAX_COUNT:
        raise PlatformError(400, f"count must be between 1 and {MAX_COUNT}")
    end = offset + count
    next_cursor = encode_cursor(end) if end < len(items) else None
    return {"data": items[offset:end], "next_cursor": next_cursor}


def _flag(query: dict[str, str], name: str) -> bool:
    return query.get(name, "").lower() in {"1", "true", "yes"}


def _username(raw: str) -> str:
    username = unquote(raw)
    if not USERNAME.match(username) or username.lower().startswith(MISSING_PREFIX):
        raise PlatformError(404, "User not found")
    return username


def route(path: str, query: dict[str, str]) -> dict:
    """The JSON body for an authorised API GET, or a ``PlatformError``."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "users"] and len(parts) in (3, 4):
        username = _username(parts[2])
        if len(parts) == 3:
            return {"data": data.user(username)}
        if parts[3] == "tweets":
            tweets = data.user_tweets(
                username,
                include_replies=_flag(query, "include_replies"),
                include_retweets=_flag(query, "include_retweets"),
            )
            return _page(tweets, query)
        if parts[3] in ("followers", "following"):
            return _page(data.related_users(username, parts[3]), query)
    if parts == ["api", "search", "tweets"]:
        q = query.get("q", "").strip()
        if not q:
            raise PlatformError(400, "q is required")
        return _page(data.search(q, lang=query.get("lang", "")), query)
    if len(parts) == 4 and parts[:2] == ["api", "hashtags"] and parts[3] == "tweets":
        return _page(data.search("#" + unquote(parts[2]).lstrip("#")), query)
    raise PlatformError(404, "Not found")


class _Handler(BaseHTTPRequestHandler):
    server: SandboxPlatform
    protocol_version = "HTTP/1.1"  # keep-alive: a provider's session reuses its connection

    def log_message(self, format, *args):  # the request log is read through /_requests
        pass

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _read_json(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        return body

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/_control":
            self._send(404, {"error": "Not found"})
            return
        try:
            self.server.switches.apply(self._read_json())
        except (ValueError, TypeError) as exc:
            self._send(400, {"error": f"Bad control request: {exc}"})
            return
        self._send(200, self.server.switches.state())

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/_control":
            self._send(200, self.server.switches.state())
            return
        if parts.path == "/_requests":
            with self.server.switches.lock:
                self._send(200, list(self.server.switches.log))
            return
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        entry = {
            "method": self.command,
            "path": parts.path,
            "query": query,
            "account_id": self.headers.get("X-Account-Id", ""),
            "proxy_id": self.headers.get("X-Proxy-Id", ""),
            "at": time.time(),
        }
        status, body, headers = self._answer(parts.path, query, entry["account_id"])
        entry["status"] = status
        with self.server.switches.lock:
            self.server.switches.log.append(entry)
        self._send(status, body, headers)

    def _answer(self, path: str, query: dict, account_id: str) -> tuple[int, dict, dict]:
        switches = self.server.switches
        if switches.slow_ms:
            time.sleep(switches.slow_ms / 1000)
        try:
            if self.headers.get("Authorization", "") != f"Bearer {self.server.token}":
                raise PlatformError(401, "Invalid or missing token")
            fault = switches.injected_fault(account_id)
            if fault:
                raise fault
            return 200, route(path, query), {}
        except PlatformError as error:
            return error.status, {"error": str(error)}, error.headers


class SandboxPlatform(ThreadingHTTPServer):
    """The server; also a context manager that serves from a thread (tests: port 0)."""

    daemon_threads = True

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, token: str = DEFAULT_TOKEN
    ) -> None:
        super().__init__((host, port), _Handler)
        self.token = token
        self.switches = Switches()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def control(self, **changes) -> None:
        """Set fault switches in-process (the same keys as ``POST /_control``)."""
        self.switches.apply(changes)

    @property
    def requests(self) -> list[dict]:
        """A copy of the API request log (controls are not logged)."""
        with self.switches.lock:
            return list(self.switches.log)

    def __enter__(self) -> SandboxPlatform:
        # A short poll interval: shutdown() waits for it, and tests start one server each.
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
