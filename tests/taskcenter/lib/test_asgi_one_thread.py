"""``OneThreadASGIHandler``: a request crosses from the event loop to its thread once, and is
answered as Django's own ASGI handler answers it."""

from __future__ import annotations

import asyncio
import json

import asgiref.sync
import pytest
from django.core.handlers.asgi import ASGIHandler

from taskcenter.lib.asgi_one_thread import OneThreadASGIHandler
from taskcenter.models import ApiToken

pytestmark = pytest.mark.django_db(transaction=True)  # the request runs on threads of its own


def serve(app, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """One GET through an ASGI application: its status and body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"page_size=5",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    sent: list[dict] = []
    requested = False

    async def receive():
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays until the answer is sent

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return sent[0]["status"], body


def hand_overs(monkeypatch) -> dict[str, int]:
    """Counts of the loop-to-thread (``SyncToAsync``) and thread-to-loop (``AsyncToSync``)
    hand-overs made from now on."""
    counts = {"SyncToAsync": 0, "AsyncToSync": 0}
    for name in counts:
        cls = getattr(asgiref.sync, name)
        original = cls.__call__

        def counted(self, *args, __original=original, __name=name, **kwargs):
            counts[__name] += 1
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__call__", counted)
    return counts


def test_a_request_crosses_to_its_thread_once_where_djangos_handler_crosses_many_times(
    user, make_task, monkeypatch
):
    for _ in range(3):
        make_task()
    _, token = ApiToken.objects.issue(user)
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"accept", b"application/json")]
    ours, django_own = OneThreadASGIHandler(), ASGIHandler()

    counts = hand_overs(monkeypatch)
    status, body = serve(ours, "/api/v1/tasks", headers)
    ours_counted = dict(counts)
    counts.update(SyncToAsync=0, AsyncToSync=0)
    django_status, django_body = serve(django_own, "/api/v1/tasks", headers)

    assert status == django_status == 200
    assert json.loads(body)["total"] == json.loads(django_body)["total"] == 3
    # The middleware chain and the view on one thread: no way back to the loop in between.
    # The crossings left: request_started's receivers, the view's chain, the response's close.
    assert ours_counted == {"SyncToAsync": 3, "AsyncToSync": 0}
    # Django's own: a crossing each way per synchronous middleware and per MiddlewareMixin hook.
    assert counts["SyncToAsync"] >= 15  # 18 with Django 5.2 and this project's middleware
    assert counts["AsyncToSync"] >= 1
