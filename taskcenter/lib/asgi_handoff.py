"""Responses that outlive their Django request: an event stream's body written by the ASGI layer.

Under ASGI, Django serves each request in a context of its own (``ThreadSensitiveContext``):
a thread for its synchronous middleware and view, that thread's database connection handler,
the request objects, the view's filters and querysets. A streaming response keeps all of it
until its last byte, so an event stream, open for hours, held about 200 KiB and an idle thread,
and a thousand of them left the garbage collector walking hundreds of thousands of objects
(pauses of 100-200 ms in the requests the same process serves).

Here the view answers as usual (its status, headers and first part go through every middleware)
and leaves the rest of the body to ``HandOff``: a coroutine function given the connection's
``send``, which the middleware runs once Django has finished the request (request_finished sent,
its connection closed, its thread gone). The rest of the stream holds only what that coroutine
holds. A client that disconnects cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from .asgi_types import App, Message, Receive, Scope, Send

# Writes the rest of a response's body through ``send`` (``more_body`` parts; the end is sent
# by the middleware once it returns).
Rest = Callable[[Send], Awaitable[None]]

# The request's hand-off slot: a list the view appends its ``Rest`` to (a list, so that the
# view's thread, which runs in a copy of this context, fills the same one).
_slot: ContextVar[list[Rest] | None] = ContextVar("asgi_handoff_slot", default=None)


def hand_off(rest: Rest) -> bool:
    """Called by a view whose streaming response is the first part of its body: ``rest`` writes
    the remainder after Django is done. False when nothing can take it (not under
    ``HandOffMiddleware``): the view then streams through Django as usual."""
    slot = _slot.get()
    if slot is None:
        return False
    slot.append(rest)
    return True


class HandOffMiddleware:
    """ASGI middleware: runs a view's hand-off after the app, in place of the response's end."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        slot: list[Rest] = []
        token = _slot.set(slot)

        async def until_rest(message: Message) -> None:
            if slot and message["type"] == "http.response.body" and not message.get("more_body"):
                # Django's end of the body: the hand-off goes on from here.
                if message.get("body"):
                    await send({**message, "more_body": True})
                return
            await send(message)

        try:
            await self.app(scope, receive, until_rest)
        finally:
            _slot.reset(token)
        if slot:
            await _serve(slot[0], receive, send)


async def _serve(rest: Rest, receive: Receive, send: Send) -> None:
    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    writing = asyncio.ensure_future(rest(send))
    watching = asyncio.ensure_future(disconnected())
    client_left = False
    try:
        done, _ = await asyncio.wait({writing, watching}, return_when=asyncio.FIRST_COMPLETED)
        client_left = watching in done
    finally:
        for task in (writing, watching):
            task.cancel()
        for task in (writing, watching):
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not client_left:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
