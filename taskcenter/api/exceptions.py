"""Every API error is ``{"detail": ...}``; validation errors list ``{loc, msg, type}`` per field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rest_framework import status
from rest_framework.exceptions import APIException, ErrorDetail, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

from taskcenter.lib.db_outage import (
    DATABASE_UNAVAILABLE,
    RETRY_AFTER_SECONDS,
    drop_broken_connection,
)

from ..errors import InsufficientQuota, InvalidTransition, UnknownKind

Loc = list[str | int]


def flatten_errors(detail: Any, loc: Loc | None = None) -> Iterator[dict[str, Any]]:
    """Turn DRF's nested error structure into the XGet scraper API's flat list of located messages.

    ``{"parameters": {"limit": ["..."]}}`` becomes ``[{"loc": ["parameters", "limit"], ...}]``;
    list positions (batch items) become integers in ``loc``.
    """
    loc = loc or []
    if isinstance(detail, dict):
        for key, value in detail.items():
            part: str | int = key if isinstance(key, int) else str(key)
            yield from flatten_errors(value, [*loc, part])
    elif isinstance(detail, list):
        # A list of messages for one field, or one entry per item of a list field.
        if all(isinstance(item, str | ErrorDetail) for item in detail):
            for item in detail:
                yield from flatten_errors(item, loc)
        else:
            for index, item in enumerate(detail):
                if item:  # valid items of a many=True serializer report {}
                    yield from flatten_errors(item, [*loc, index])
    else:
        code = getattr(detail, "code", None) or "invalid"
        yield {"loc": loc, "msg": str(detail), "type": str(code)}


def validation_response(detail: Any) -> Response:
    return Response({"detail": list(flatten_errors(detail))}, status=status.HTTP_400_BAD_REQUEST)


class DatabaseUnavailable(APIException):
    """The database is restarting or unreachable: a 503 the client may retry, not a 500."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; try again shortly."
    default_code = "database_unavailable"
    wait = RETRY_AFTER_SECONDS  # DRF sends it as Retry-After


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, reshaped; lifecycle refusals become 409 (402 when quota is short),
    unknown kinds 400, and a database that went away 503 with Retry-After."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        drop_broken_connection()  # the next request reconnects instead of failing again
        exc = DatabaseUnavailable()
    if isinstance(exc, InsufficientQuota):
        return Response(
            {"detail": str(exc), "needed": exc.needed, "balance": exc.balance},
            status=status.HTTP_402_PAYMENT_REQUIRED,
        )
    if isinstance(exc, InvalidTransition):
        if exc.current_status is None:
            return Response({"detail": "Task not found"}, status=status.HTTP_404_NOT_FOUND)
        return Response(
            {"detail": str(exc), "status": exc.current_status}, status=status.HTTP_409_CONFLICT
        )
    if isinstance(exc, UnknownKind):
        return validation_response({"task_type": [ErrorDetail(str(exc), code="unknown_kind")]})
    if isinstance(exc, ValidationError):
        return validation_response(exc.detail)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if not (isinstance(response.data, dict) and "detail" in response.data):
        response.data = {"detail": response.data}
    return response
