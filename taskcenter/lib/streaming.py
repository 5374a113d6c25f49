"""Streaming responses that hold no thread between their parts under ASGI.

Django serves a ``StreamingHttpResponse`` over a *synchronous* iterator under ASGI by reading
the whole iterator into a list first (``sync_to_async(list)``): a stream that sleeps between its
messages (a login waiting for a scan) would send nothing until it ended, and an export of a
million rows would be held in memory whole. This one takes its parts one at a time on the
request's own thread (thread-sensitive: the one its view ran on, where its database connection
lives and is closed when the response is), so the event loop sends each as it comes; the same
response still streams under WSGI (gunicorn on ``taskcenter.wsgi``, the test server).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse

_END = object()


def _next_part(iterator: Iterator[Any]) -> Any:
    return next(iterator, _END)


class ThreadedStreamingHttpResponse(StreamingHttpResponse):
    """A streaming response over a blocking iterator, each part fetched on the request's thread."""

    async def __aiter__(self) -> AsyncIterator[Any]:
        if self.is_async:
            async for part in self.streaming_content:  # type: ignore[union-attr]
                yield part
            return
        iterator = iter(self.streaming_content)  # type: ignore[arg-type]
        while True:
            fetch = asyncio.ensure_future(sync_to_async(_next_part)(iterator))
            try:
                part = await asyncio.shield(fetch)
            except asyncio.CancelledError:
                # The client left while a part was being made: let that call end before the
                # handler closes the iterator.
                await asyncio.wait([fetch])
                raise
            if part is _END:
                return
            yield part
