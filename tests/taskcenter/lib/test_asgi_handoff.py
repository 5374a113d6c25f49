"""``HandOffMiddleware``: a view's hand-off runs after the application, in place of its body's
end (the event streams over real HTTP are in tests/taskcenter/api/test_event_streams.py)."""

from __future__ import annotations

import asyncio
import threading

from asgiref.sync import sync_to_async

from taskcenter.lib.asgi_handoff import HandOffMiddleware, hand_off

START = {"type": "http.response.start", "status": 200, "headers": []}


def serve(app, *, disconnect_after: float | None = None) -> list:
    """One HTTP request through the middleware: the messages the server was sent."""
    sent: list = []

    async def receive():
        if disconnect_after is None:
            await asyncio.Event().wait()  # the client stays
        await asyncio.sleep(disconnect_after)
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(HandOffMiddleware(app)({"type": "http"}, receive, send))
    return sent


def test_the_rest_is_written_after_the_app_and_the_end_after_the_rest():
    finished = []

    async def rest(send):
        assert finished == ["app"]  # Django is done before the rest begins
        for part in (b"two", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})

    async def app(scope, receive, send):
        # The view runs on a thread, as Django's synchronous views do under ASGI.
        assert await sync_to_async(hand_off, thread_sensitive=False)(rest)
        await send(START)
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        finished.append("app")

    sent = serve(app)

    assert sent[0] == START
    assert [(m["body"], m["more_body"]) for m in sent[1:]] == [
        (b"one", True),
        (b"two", True),
        (b"three", True),
        (b"", False),
    ]


def test_a_client_that_leaves_cancels_the_rest_and_gets_no_end():
    cancelled = threading.Event()

    async def rest(send):
        try:
            await send({"type": "http.response.body", "body": b"two", "more_body": True})
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def app(scope, receive, send):
        hand_off(rest)
        await send(START)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    sent = serve(app, disconnect_after=0.05)

    assert cancelled.is_set()
    assert [m.get("body") for m in sent[1:]] == [b"two"]


def test_without_a_hand_off_every_message_passes_as_it_is():
    async def app(scope, receive, send):
        await send(START)
        await send({"type": "http.response.body", "body": b"all", "more_body": False})

    assert serve(app) == [START, {"type": "http.response.body", "body": b"all", "more_body": False}]


def test_outside_the_middleware_a_view_is_told_to_stream_itself():
    assert hand_off(lambda send: asyncio.sleep(0)) is False
