"""The sandbox platform server: the third-party platforms Task Center talks to, over real HTTP.

Stdlib only, but for segno, which draws the QR codes of the login area (``sandbox.login``).
Each platform area is a module of routes (``sandbox.twitter`` for the scrape kinds; see
``sandbox.routing`` for how an area registers). Every API call needs
``Authorization: Bearer <token>``; ``X-Account-Id`` and ``X-Proxy-Id`` are recorded in the
request log. Errors are ``{"error": "..."}``: 401 bad token, 403 "Account suspended", 404
unknown path or object, 400 bad input, 429 with ``Retry-After``, 503.

Test and demo controls (no token; the command binds to loopback by default)::

    POST /_control   {"rate_limit_next": N, "retry_after": S, "fail_next": N, "slow_ms": X,
                      "suspend_account": "account-123" | [...], "reset": true}
    GET  /_control   the current switches
    GET  /_requests  the request log, oldest first
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from . import (
    datasource,  # noqa: F401
    generation,  # noqa: F401  (registers its routes)
    login,  # noqa: F401
    publishing,  # noqa: F401
    publishing_login_check,  # noqa: F401
    twitter,  # noqa: F401  (registers its routes)
)
from .routing import PlatformError, Request, normalise, resolve
from .twitter import decode_cursor, encode_cursor  # noqa: F401  (kept importable from here)

# A fixed, public token: the sandbox guards nothing, the check exercises the 401 path.
DEFAULT_TOKEN = "sandbox-token"  # noqa: S105
SUSPENDED = "Account suspended"


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


class _Handler(BaseHTTPRequestHandler):
    server: SandboxPlatform
    protocol_version = "HTTP/1.1"  # keep-alive: a provider's session reuses its connection
    # Headers and body go out in two writes; with Nagle's algorithm the body waited for the
    # client's delayed ACK of the headers, about 40 ms on every request of a kept connection.
    disable_nagle_algorithm = True

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

    def _control(self, parts) -> bool:
        """Serve the test controls; False when this is an API request."""
        if parts.path == "/_control" and self.command == "POST":
            try:
                length = int(self.headers.get("Content-Length") or 0)
                changes = json.loads(self.rfile.read(length) or b"{}") if length else {}
                if not isinstance(changes, dict):
                    raise ValueError("expected a JSON object")
                self.server.switches.apply(changes)
            except (ValueError, TypeError) as exc:
                self._send(400, {"error": f"Bad control request: {exc}"})
                return True
            self._send(200, self.server.switches.state())
            return True
        if parts.path == "/_control" and self.command == "GET":
            self._send(200, self.server.switches.state())
            return True
        if parts.path == "/_requests" and self.command == "GET":
            with self.server.switches.lock:
                self._send(200, list(self.server.switches.log))
            return True
        return False

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        if self._control(parts):
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
        request = Request(
            method=self.command,
            path=parts.path,
            query=query,
            headers=self.headers,
            rfile=self.rfile,
            params={},
            server=self.server,
        )
        status, body, headers = self._answer(request)
        entry["status"] = status
        with self.server.switches.lock:
            self.server.switches.log.append(entry)
        if status >= 400 and request._body is None and request.content_length:
            # Drain an unread body so the keep-alive connection stays usable.
            self.rfile.read(request.content_length)
        self._send(status, body, headers)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _answer(self, request: Request) -> tuple[int, Any, dict]:
        switches = self.server.switches
        if switches.slow_ms:
            time.sleep(switches.slow_ms / 1000)
        try:
            if self.headers.get("Authorization", "") != f"Bearer {self.server.token}":
                raise PlatformError(401, "Invalid or missing token")
            handler, request.params = resolve(request.method, request.path)
            fault = switches.injected_fault(request.account_id)
            if fault:
                raise fault
            return normalise(handler(request))
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
        self._areas: dict[str, Any] = {}
        self._thread: threading.Thread | None = None

    def area_state(self, area: str, factory: Callable[[], Any]) -> Any:
        """The state object of one platform area, created on first use (thread-safe)."""
        with self.switches.lock:
            if area not in self._areas:
                self._areas[area] = factory()
            return self._areas[area]

    @property
    def url(self) -> str:
        # An AF_INET(6) socket's name: (host, port, ...), the host a str (typeshed allows bytes).
        host, port = cast(tuple[str, int], self.server_address[:2])
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
