"""Django's ASGI handler with each request's middleware and view run on one thread, as WSGI runs
them.

Django's own handler loads the middleware in async mode. Every middleware built on
``MiddlewareMixin`` (Django's, corsheaders', axes') then runs its ``process_request`` and
``process_response`` through ``sync_to_async``, and each synchronous one between them through
``async_to_sync``: 19 hand-overs between the event loop and the request's thread for one task
list request (tests/taskcenter/lib/test_asgi_one_thread.py counts them), each a wake-up of the
other side and a wait for it, on a loop that may be writing to a thousand event streams.

Here the whole chain is loaded in sync mode and a request crosses to its thread once: the loop
reads the body, the thread runs every middleware and the view, the loop sends the response (a
streaming body, an event stream's included, is still iterated on the loop): 3 hand-overs, and
the task list's p50 on an idle service 23.6 -> 20.2 ms, its p95 beside 1,000 streams 49.5 ->
44.3 ms (bench/live.py). Nothing in this project's middleware needs the async path: none
awaits anything.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponseBase


class OneThreadASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)  # not ASGIHandler's: it loads the middleware in async mode
        self.load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        # thread_sensitive: the request's own thread (ASGIHandler gives each request a
        # ThreadSensitiveContext), the one its request_started and request_finished receivers
        # run on, so its database connection is opened and closed by the same thread.
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
