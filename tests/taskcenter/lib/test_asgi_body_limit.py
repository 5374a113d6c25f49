"""``BodyLimit``: what the ASGI application sees of bodies over the limit (the whole server is
exercised by tests/project/test_dialect_errors.py's 510 MiB upload under ASGI)."""

from __future__ import annotations

import asyncio

from taskcenter.lib.asgi_body_limit import BodyLimit


def serve(*, max_bytes: int, headers: list, chunks: list[bytes]) -> tuple[list, list]:
    """One request whose body comes in ``chunks``: the messages the application read, and the
    ones nobody read."""
    incoming = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    seen: list = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def app(scope, receive, send):  # reads the body as Django does, then answers
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                return

    async def send(message):
        pass

    limited = BodyLimit(app, max_bytes=max_bytes, drain_bytes=1000)
    asyncio.run(limited({"type": "http", "headers": headers}, receive, send))
    return seen, incoming


def test_a_declared_body_over_the_limit_reaches_the_app_empty_and_is_drained_after():
    seen, unread = serve(max_bytes=10, headers=[(b"content-length", b"30")], chunks=[b"x" * 10] * 3)
    assert seen == [{"type": "http.request", "body": b"", "more_body": False}]
    assert unread == []


def test_a_body_within_the_limit_passes_whole():
    seen, _ = serve(
        max_bytes=100, headers=[(b"content-length", b"20")], chunks=[b"a" * 10, b"b" * 10]
    )
    assert [message["body"] for message in seen] == [b"a" * 10, b"b" * 10]


def test_a_body_without_a_length_that_grows_past_the_limit_ends_the_request():
    seen, _ = serve(max_bytes=15, headers=[], chunks=[b"a" * 10, b"b" * 10, b"c" * 10])
    assert [message["type"] for message in seen] == ["http.request", "http.disconnect"]
