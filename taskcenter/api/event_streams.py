"""``GET /api/v1/events/stream`` and ``GET /api/v1/tasks/{id}/stream``: task events as
Server-Sent Events, so a page updates in place instead of reloading.

The view itself is a DRF view like the rest of the API (token or session, throttles, the task
list's filters, errors as JSON naming the field); what it returns streams from an async
iterator, so under ASGI an open stream holds no thread, only a ``Subscription`` of the process's
one ``EventFeed``. Every message's ``id:`` is the event's id: ``EventSource`` sends the last one
back as ``Last-Event-ID`` when it reconnects, and the stream first replays what was missed.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import orjson
from django.core.handlers.asgi import ASGIRequest
from django.db import connection
from django.http import HttpResponseBase, StreamingHttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

from ..lib.asgi_handoff import Rest, hand_off
from ..lib.asgi_types import Send
from ..models import Task, TaskEvent
from .authentication import authenticated_user
from .body_errors import xget_exception_handler
from .event_feed import Batch, Event, Inbox, Subscription, feed
from .filters import INT64_MAX, TaskFilter
from .views import BAD_REQUEST, NOT_FOUND

HEARTBEAT = b": keep-alive\n\n"
# Where an event (a dict of its columns) keeps its encoded message once made.
FRAME = "_frame"
# What EventSource waits before reconnecting after the stream ends (milliseconds).
RETRY_MS = 2000
CONNECTED = b": connected\nretry: %d\n\n" % RETRY_MS

# One message's data (JSON), as ``event.data`` holds it.
STREAM_EVENT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "description": "The event's id; also the message's `id:`."},
        "task_id": {"type": "integer"},
        "execution_id": {"type": "integer", "nullable": True},
        "verb": {
            "type": "string",
            "description": "created, queued, started, progress, completed, failed, ...",
        },
        "actor": {"type": "string"},
        "from_status": {"type": "string"},
        "to_status": {"type": "string"},
        "data": {"type": "object", "description": "progress: {progress, message}; ..."},
        "at": {"type": "string", "format": "date-time"},
        "task": {
            "type": "object",
            "description": "The task as it is when the event is read.",
            "properties": {
                "status": {"type": "string"},
                "progress": {"type": "integer"},
                "progress_message": {"type": "string"},
            },
        },
        "result_count": {
            "type": "integer",
            "nullable": True,
            "description": "Results its attempt has saved so far (null: no attempt).",
        },
    },
}
STREAM_RESPONSE = OpenApiResponse(
    STREAM_EVENT,
    description="`text/event-stream`: one message per task event (`id:` the event id, `data:` "
    "the JSON above), `: keep-alive` comment lines every 15 s. Reconnect with `Last-Event-ID` "
    "(or `?last_event_id=`) to receive every event after that id first.",
)
LAST_EVENT_ID_PARAMS = [
    OpenApiParameter(
        "Last-Event-ID",
        {"type": "string", "pattern": "^[0-9]{1,19}$"},
        OpenApiParameter.HEADER,
        description="Resume after this event id (EventSource sends it when it reconnects).",
    ),
    OpenApiParameter(
        "last_event_id",
        {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
        OpenApiParameter.QUERY,
        description="As the header, for clients that cannot set headers; the header wins.",
    ),
]


def sse_message(event: Event) -> bytes:
    payload = {
        "id": event["id"],
        "task_id": event["task_id"],
        "execution_id": event["execution_id"],
        "verb": event["verb"],
        "actor": event["actor"],
        "from_status": event["from_status"],
        "to_status": event["to_status"],
        "data": event["data"],
        "at": event["at"],
        "task": {
            "status": event["task__status"],
            "progress": event["task__progress"],
            "progress_message": event["task__progress_message"],
        },
        "result_count": event["execution__result_count"],
    }
    return b"id: %d\ndata: %s\n\n" % (event["id"], orjson.dumps(payload))


def last_event_id(request: Request) -> int | None:
    """The id to resume after: the header EventSource sends on reconnecting, else the query's."""
    for name, raw in (
        ("Last-Event-ID", request.headers.get("Last-Event-ID")),
        ("last_event_id", request.query_params.get("last_event_id")),
    ):
        if raw is None or raw == "":
            continue
        text = raw.strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > INT64_MAX:
            raise ValidationError({name: ["Enter an event id (a whole number, 0 or more)."]})
        return int(text)
    return None


def _body(batches: list[Batch]) -> bytes:
    """What the batches taken at once write: their events' messages, a keep-alive for an empty
    one (the feed's heartbeat); None, the stream's end, writes nothing."""
    return b"".join(
        b"".join(_frame(event) for event in batch) if batch else HEARTBEAT
        for batch in batches
        if batch is not None
    )


def _frame(event: Event) -> bytes:
    """The event's message, made once per process: the feed hands the same event (one dict) to
    every stream that may see it, and a thousand streams would otherwise each encode it."""
    frame = event.get(FRAME)
    if frame is None:
        frame = event[FRAME] = sse_message(event)
    return frame


async def _bodies(subscription: Subscription) -> AsyncIterator[bytes]:
    """The stream's messages as the feed hands them over, several batches at once when the
    stream was slower than the feed; subscribed once it is served (a response never sent leaves
    nothing behind), from the loop that serves it (under ASGI the view runs on a thread)."""
    events = feed()
    inbox = subscription.inbox = Inbox(asyncio.get_running_loop())
    events.subscribe(subscription)
    try:
        while True:
            batches = await inbox.take()
            events.taken(subscription, len(batches))
            body = _body(batches)
            if body:
                yield body
            if None in batches:
                return  # fell too far behind: the client reconnects and resumes by id
    finally:
        events.unsubscribe(subscription)


def rest_of_stream(subscription: Subscription) -> Rest:
    """The stream's body after its first part, written by the ASGI layer (``lib/asgi_handoff``)
    once Django has finished the request: an open stream holds no thread and no request."""

    async def write(send: Send) -> None:
        async for body in _bodies(subscription):
            await send({"type": "http.response.body", "body": body, "more_body": True})

    return write


async def stream_messages(subscription: Subscription) -> AsyncIterator[bytes]:
    """The whole body through Django, under an ASGI server without the hand-off."""
    yield CONNECTED
    async for body in _bodies(subscription):
        yield body


async def connected_only() -> AsyncIterator[bytes]:
    yield CONNECTED


def blocking_stream_messages(subscription: Subscription) -> Iterator[bytes]:
    """The same under WSGI (the test server, gunicorn on ``taskcenter.wsgi``): it holds its
    thread while open, which is why ``run_service`` serves ASGI."""
    events = feed()
    waiting: queue.SimpleQueue[Batch] = queue.SimpleQueue()
    subscription.deliver = waiting.put
    events.subscribe(subscription)
    try:
        yield CONNECTED
        while (batch := waiting.get()) is not None:
            events.taken(subscription)
            yield _body([batch])
    finally:
        events.unsubscribe(subscription)


class ErrorsAsJson(BaseContentNegotiation):
    """Refusals are JSON whatever ``Accept`` says (an EventSource accepts only the stream,
    which DRF does not render: the view returns it as a response of its own)."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, str(renderer.media_type)


class EventStreamView(GenericAPIView[Task]):
    """Task events of every task the caller may see, filtered as the task list is."""

    queryset = Task.objects.none()  # the schema generator's model hint
    filter_backends = [DjangoFilterBackend]
    filterset_class = TaskFilter
    pagination_class = None
    renderer_classes = [JSONRenderer]
    content_negotiation_class = ErrorsAsJson

    def get_exception_handler(self) -> Any:
        return xget_exception_handler

    def open_stream(self, request: Request, **selection: Any) -> HttpResponseBase:
        user = authenticated_user(request)
        after = last_event_id(request)
        if after is None:
            # Everything from now on: from the newest event there is now, so an event written
            # while the stream is being set up is not lost to the feed's first read.
            newest = TaskEvent.objects.order_by("-id").values_list("id", flat=True).first()
            after = newest or 0
        subscription = Subscription(
            user_id=user.pk,
            see_all=bool(user.is_staff and user.is_active),
            deliver=lambda batch: None,
            after=after,
            **selection,
        )
        served_by_asgi = isinstance(request._request, ASGIRequest)
        if served_by_asgi and not connection.in_atomic_block:
            # Django would close this request's connection only when the stream ends: an open
            # stream must not hold a database session (the feed reads for every stream).
            connection.close()
        messages: AsyncIterator[bytes] | Iterator[bytes]
        if not served_by_asgi:
            messages = blocking_stream_messages(subscription)
        elif hand_off(rest_of_stream(subscription)):
            messages = connected_only()
        else:
            messages = stream_messages(subscription)
        response = StreamingHttpResponse(messages, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response

    @extend_schema(
        operation_id="events_stream",
        parameters=LAST_EVENT_ID_PARAMS,
        filters=True,
        responses={(200, "text/event-stream"): STREAM_RESPONSE, 400: BAD_REQUEST},
        tags=["events"],
    )
    def get(self, request: Request) -> HttpResponseBase:
        """A Server-Sent Events stream of the events of the tasks the caller may see; the task
        list's filters select the tasks (applied to each task as it is when its event is read)."""
        user = authenticated_user(request)
        # The task list's own filter backend: the same parameters, the same 400s.
        tasks = self.filter_queryset(Task.objects.visible_to(user))
        used = {key for key, value in request.query_params.items() if value != ""}
        filtered = bool(used - {"last_event_id", "ordering", "format"})
        return self.open_stream(request, tasks=tasks.order_by() if filtered else None)


class TaskStreamView(EventStreamView):
    """The events of one task; another user's task is a 404, as its detail is."""

    @extend_schema(
        operation_id="tasks_stream",
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH),
            *LAST_EVENT_ID_PARAMS,
        ],
        filters=False,
        responses={
            (200, "text/event-stream"): STREAM_RESPONSE,
            400: BAD_REQUEST,
            404: NOT_FOUND,
        },
        tags=["tasks"],
    )
    def get(self, request: Request, pk: str) -> HttpResponseBase:  # type: ignore[override]
        """A Server-Sent Events stream of one task's events."""
        user = authenticated_user(request)
        if not Task.objects.visible_to(user).filter(pk=int(pk)).exists():
            raise NotFound("Task not found")
        return self.open_stream(request, task_id=int(pk))
