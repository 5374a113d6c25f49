"""Streaming responses that hold no thread between their parts under ASGI.

Django serves a ``StreamingHttpResponse`` over a *synchronous* iterator under ASGI by reading
the whole iterator into a list first (``sync_to_async(list)``): a stream that sleeps between its
messages (a login waiting for a scan) would send nothing until it ended. This one takes its
parts one at a time from a thread of the pool, so the event loop sends each as it comes, and the
same response still streams under WSGI (gunicorn, the test server) as before.
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
    """A streaming response over a blocking iterator, each part fetched on a pool thread."""

    async def __aiter__(self) -> AsyncIterator[Any]:
        if self.is_async:
            async for part in self.streaming_content:  # type: ignore[union-attr]
                yield part
            return
        iterator = iter(self.streaming_content)  # type: ignore[arg-type]
        while True:
            fetch = asyncio.ensure_future(
                sync_to_async(_next_part, thread_sensitive=False)(iterator)
            )
            try:
                part = await asyncio.shield(fetch)
            except asyncio.CancelledError:
                # The client left while a part was being made: let that call end before the
                # handler closes the iterator (closing a running generator is an error).
                await asyncio.wait([fetch])
                raise
            if part is _END:
                return
            yield part
