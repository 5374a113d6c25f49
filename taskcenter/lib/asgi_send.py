"""The connection's own ASGI ``send``, for a streaming response that writes its parts itself.

Django's ASGI handler sends a streaming response part by part from a loop of its own: for an
event stream, each batch passes two async generators, a split into 64 KiB chunks and that loop
before it reaches the server's ``send``. A thousand open streams each taking five batches a
second spend more CPU there than in writing to their sockets, and the API requests the same
process serves wait behind them. ``ExposeSend`` puts the ``send`` Django itself is given in a
context variable; the event streams' body (``api/event_streams.py``) takes it and sends each
batch directly, between Django's first part and its last, while Django waits for the next part.
"""

from __future__ import annotations

from contextvars import ContextVar

from .asgi_types import App, Receive, Scope, Send

# The ``send`` of the HTTP request being served in this context (None: not under ASGI).
connection_send: ContextVar[Send | None] = ContextVar("connection_send", default=None)


class ExposeSend:
    """ASGI middleware: the request's ``send`` in ``connection_send`` while the app serves it."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = connection_send.set(send)
        try:
            await self.app(scope, receive, send)
        finally:
            connection_send.reset(token)
