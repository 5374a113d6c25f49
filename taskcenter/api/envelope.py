"""The JSON envelope of the dialects that replace Go services (data sync, integration tasks).

Success::

    {"success": true, "data": <payload>}

Failure (the HTTP status carries the class of error as well)::

    {"success": false,
     "error": {"code": "invalid_argument", "message": "status: Unknown status ...",
               "fields": [{"field": "status", "message": "Unknown status ..."}]}}

``code`` is one word per HTTP status (``invalid_argument`` 400, ``unauthenticated`` 401,
``permission_denied`` 403, ``not_found`` 404, ``conflict`` 409, ...). A 409 also carries
``status``: the task's status now, in the dialect's own words; a 402 (the owner's quota cannot
pay for the task) carries ``needed`` and ``balance``. Field names in ``fields`` are
dotted paths (``parameters.batch_size``).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from taskcenter.api.status_words import word_for

from ..errors import InsufficientQuota, InvalidTransition
from .exceptions import api_exception_handler
from .pagination import NumberedPagination

CODES = {
    400: "invalid_argument",
    401: "unauthenticated",
    402: "payment_required",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
}


def ok(data: Any, status: int = 200) -> Response:
    """A success in the envelope."""
    return Response({"success": True, "data": data}, status=status)


def failure(
    http_status: int, message: str, *, fields: list[dict] | None = None, **extra: Any
) -> dict:
    error: dict[str, Any] = {"code": CODES.get(http_status, "error"), "message": message}
    if fields:
        error["fields"] = fields
    error.update(extra)
    return {"success": False, "error": error}


def _fields(detail: list[dict]) -> list[dict]:
    return [
        {"field": ".".join(str(part) for part in item["loc"]) or "body", "message": item["msg"]}
        for item in detail
    ]


def envelope_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Task Center's API errors, reshaped into the envelope; 409s name the dialect's status."""
    response = api_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data if isinstance(response.data, dict) else {"detail": response.data}
    detail = data.get("detail")
    view = context.get("view")
    if isinstance(detail, list):
        fields = _fields(detail)
        message = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "Invalid input"
        response.data = failure(response.status_code, message, fields=fields)
        return response
    extra: dict[str, Any] = {}
    if isinstance(exc, InsufficientQuota):
        extra = {"needed": exc.needed, "balance": exc.balance}
    elif isinstance(exc, InvalidTransition) and exc.current_status is not None:
        dialect = getattr(view, "status_dialect", None)
        status_now = word_for(exc.current_status, dialect) if dialect else exc.current_status
        extra["status"] = status_now
        describe = getattr(view, "describe_refusal", None)
        detail = describe(exc, status_now) if describe else detail
    response.data = failure(response.status_code, str(detail), **extra)
    return response


class EnvelopeAPIView(APIView):
    """An API view whose errors, authentication failures included, use the envelope."""

    status_dialect: str | None = None

    def get_exception_handler(self) -> Any:
        return envelope_exception_handler

    def describe_refusal(self, exc: InvalidTransition, status_now: Any) -> str:
        """The 409 message; dialects name the task in their own id form."""
        return f"Cannot {exc.action} task {exc.task_id}: it is {status_now}"


class StrictCharField(serializers.CharField):
    """A string that must arrive as a JSON string: a number is a type error, not coerced."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """An integer that must arrive as a JSON number (Go's int64), not a string or a bool."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class TaskListPagination(NumberedPagination):
    """The Go services' page of tasks, newest first (the data sync service and the integration
    tasks table page them alike): ``{"tasks": [...], "pagination": {page, size, total,
    total_pages}}``, inside ``ok``'s envelope."""

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list:
        return super().paginate_queryset(queryset.order_by("-created_at", "-id"), request, view)

    def page_body(self, tasks: list[dict]) -> dict[str, Any]:
        return {
            "tasks": tasks,
            "pagination": {
                "page": self.number,
                "size": self.size,
                "total": self.total,
                "total_pages": self.pages,
            },
        }
