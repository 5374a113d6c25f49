"""The sandbox's request object, error and route table, shared by every platform area.

Each area (``twitter``, and the publishing, data-source and AI-generation areas) is one module
that registers its routes with ``@route(method, pattern)``; ``platform`` imports the areas and
dispatches. A handler takes a ``Request`` and returns a JSON-able body (status 200) or a
``(status, body)`` / ``(status, body, headers)`` tuple, or raises ``PlatformError``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Answer = Any
Handler = Callable[["Request"], Answer]

# The largest body a route may read at once; upload routes stream ``rfile`` instead.
MAX_JSON_BODY = 1 << 20


class PlatformError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any  # http.client.HTTPMessage: case-insensitive .get()
    rfile: Any
    params: dict[str, str]
    server: Any
    _body: bytes | None = field(default=None, repr=False)

    @property
    def account_id(self) -> str:
        return self.headers.get("X-Account-Id", "")

    @property
    def content_length(self) -> int:
        try:
            return max(0, int(self.headers.get("Content-Length") or 0))
        except ValueError:
            raise PlatformError(400, "Bad Content-Length") from None

    def body(self) -> bytes:
        """The whole body (bounded); routes that take large uploads read ``rfile`` themselves."""
        if self._body is None:
            length = self.content_length
            if length > MAX_JSON_BODY:
                raise PlatformError(413, "Body too large")
            self._body = self.rfile.read(length) if length else b""
        return self._body

    def json(self) -> dict:
        try:
            value = json.loads(self.body() or b"{}")
        except ValueError:
            raise PlatformError(400, "Body is not JSON") from None
        if not isinstance(value, dict):
            raise PlatformError(400, "Body must be a JSON object")
        return value

    def state(self, area: str, factory: Callable[[], Any]) -> Any:
        """Per-server state of one area (uploads, remote jobs...), created on first use."""
        return self.server.area_state(area, factory)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern
    handler: Handler


ROUTES: list[Route] = []
_routes_lock = threading.Lock()


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` for ``method`` and a full-match path regex with named groups."""

    def register(handler: Handler) -> Handler:
        with _routes_lock:
            ROUTES.append(Route(method.upper(), re.compile(pattern), handler))
        return handler

    return register


def resolve(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    """The handler for a request and its path parameters; 404 or 405 when there is none."""
    allowed = False
    for candidate in ROUTES:
        match = candidate.pattern.fullmatch(path)
        if match is None:
            continue
        if candidate.method == method:
            return candidate.handler, match.groupdict()
        allowed = True
    raise PlatformError(405 if allowed else 404, "Method not allowed" if allowed else "Not found")


def normalise(answer: Answer) -> tuple[int, Any, dict[str, str]]:
    if isinstance(answer, tuple):
        status, body, *rest = answer
        return status, body, rest[0] if rest else {}
    return 200, answer, {}
