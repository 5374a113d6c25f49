"""Task-scoped routes whose id cannot name a task answer the XGet scraper API's 404.

The router takes ids of 1-18 digits (a longer number would overflow the integer column), and
the schema documents them so. The XGet scraper API types its ids as strings (its examples use
``task-abc123``) and answers any id it cannot find with ``{"detail": "Task not found"}``, on
every task-scoped path. Routes tried after the router's catch every other id and give the same
answer, after the same authentication and with the same methods (others are a 405), so a client
cannot tell an id it typed wrongly from a task it may not see. Without them such a path is an
unknown URL, whose answer is Django's ``{"detail": "Not found."}``.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, re_path
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.views import APIView

ANY_ID = "[^/]+"
TASK_NOT_FOUND = "Task not found"
EXECUTION_NOT_FOUND = "Execution not found"


@extend_schema_view(
    get=extend_schema(exclude=True),
    post=extend_schema(exclude=True),
    put=extend_schema(exclude=True),
    patch=extend_schema(exclude=True),
    delete=extend_schema(exclude=True),
)
class UnknownIdView(APIView):
    """404 ``message`` for every allowed method (``http_method_names``, set per route)."""

    message = TASK_NOT_FOUND

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # `format` may be the path's own parameter (an export's `csv`), not a renderer's name:
        # whatever it says, the answer is this JSON 404.
        return super().perform_content_negotiation(request, force=True)

    def _refuse(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        raise NotFound(self.message)

    get = post = put = patch = delete = _refuse


def unknown_id_route(
    regex: str, methods: tuple[str, ...], *, message: str = TASK_NOT_FOUND
) -> URLPattern:
    """A route for ``regex`` (with ``ANY_ID`` where the id goes) answering ``message``."""
    view = UnknownIdView.as_view(
        http_method_names=[method.lower() for method in methods], message=message
    )
    return re_path(regex, view)


def task_routes() -> list[URLPattern]:
    """The core's task-scoped paths (``/tasks/{id}``, its actions, a task's executions)."""
    return [
        # POST too: ``tasks/start`` is also an action whose id went missing (a client that
        # builds ``tasks/{id}/start`` from an empty id), an unknown URL: 404, as it was.
        unknown_id_route(rf"^tasks/(?P<id>{ANY_ID})$", ("GET", "POST", "PUT", "PATCH", "DELETE")),
        unknown_id_route(rf"^tasks/(?P<id>{ANY_ID})/(?:start|stop|cancel|retry|clone)$", ("POST",)),
        unknown_id_route(rf"^tasks/(?P<id>{ANY_ID})/events$", ("GET",)),
        unknown_id_route(rf"^task-executions/task/(?P<id>{ANY_ID})$", ("GET",)),
        unknown_id_route(
            rf"^task-executions/(?P<id>{ANY_ID})$", ("GET",), message=EXECUTION_NOT_FOUND
        ),
    ]
