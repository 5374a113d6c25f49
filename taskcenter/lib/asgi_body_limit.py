"""Under ASGI, Django reads a request's whole body (to a temporary file) before any middleware
or view runs, so a body far over every limit would be written to disk before the 413 that
refuses it. ``BodyLimit`` wraps the ASGI application: a request that declares a body over
``max_bytes`` reaches Django without it (Django answers from the ``Content-Length`` header, the
413 in the URL's envelope), and the body is then read and dropped, up to ``drain_bytes``, so the
client, still sending, reads that answer instead of a reset (as ``DrainUnreadBodyMiddleware``
does under WSGI). A body without a length that grows past ``max_bytes`` ends the request.
"""

from __future__ import annotations

import asyncio

from .asgi_types import App, Message, Receive, Scope, Send


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # Django answers the malformed header itself
    return None


class BodyLimit:
    def __init__(self, app: App, *, max_bytes: int, drain_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length > self.max_bytes:
            await self._refuse_unread(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                return {"type": "http.disconnect"}
            return message

        return counted

    async def _refuse_unread(self, scope: Scope, receive: Receive, send: Send) -> None:
        handed_over = False
        finished = asyncio.Event()

        async def without_body() -> Message:
            nonlocal handed_over
            if not handed_over:
                handed_over = True
                return {"type": "http.request", "body": b"", "more_body": False}
            # Django then waits for the client to leave: until the answer is sent.
            await finished.wait()
            return {"type": "http.disconnect"}

        try:
            await self.app(scope, without_body, send)
        finally:
            finished.set()
        drained = 0
        while drained < self.drain_bytes:
            message = await receive()
            if message["type"] != "http.request":
                break
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
