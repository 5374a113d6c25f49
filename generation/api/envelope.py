"""new-api's envelope: ``{"success", "message", "data"}``, errors with ``success: false``."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from taskcenter.api.exceptions import flatten_errors
from taskcenter.api.pagination import NumberedPagination
from taskcenter.errors import InsufficientQuota, UnknownKind


def envelope(data: Any = None, *, message: str = "", status: int = 200) -> Response:
    body: dict[str, Any] = {"success": status < 400, "message": message}
    if data is not None:
        body["data"] = data
    return Response(body, status=status)


def error_body(status: int, message: str) -> dict[str, Any]:
    """An error answered outside a view (unknown URL, body too large, crash), same envelope."""
    return {"success": False, "message": message}


def first_error(detail: Any) -> str:
    """``{"page_size": ["..."]}`` as ``"page_size: ..."``: one line naming the field."""
    errors = list(flatten_errors(detail))
    if not errors:
        return "Invalid request."
    parts = [
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"] for e in errors
    ]
    return "; ".join(parts)


def reshape_error(view: APIView, exc: Exception) -> Response | None:
    """The envelope's one error hook: any exception a view raises, as new-api answers it
    (401 bad token or ``New-Api-User``, 402 quota, 400 naming the field); ``None`` for the
    ones DRF handles (a crash stays a crash)."""
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response = envelope(message=str(exc.detail), status=401)
        header = view.get_authenticate_header(view.request)
        if header:
            response["WWW-Authenticate"] = header
        return response
    if isinstance(exc, InsufficientQuota):
        return envelope(message=str(exc), status=402)
    if isinstance(exc, UnknownKind):
        return envelope(message=f"action: {exc}", status=400)
    if isinstance(exc, exceptions.ValidationError):
        return envelope(message=first_error(exc.detail), status=400)
    if isinstance(exc, exceptions.APIException):
        response = envelope(message=str(exc.detail), status=exc.status_code)
        # DRF sets Throttled.wait in __init__; the stubs do not declare it.
        wait = getattr(exc, "wait", None) if isinstance(exc, exceptions.Throttled) else None
        if wait is not None:
            response["Retry-After"] = str(int(wait))
        return response
    return None


class TaskPagination(NumberedPagination):
    """new-api's page: ``{items, total, page, page_size}`` inside the envelope; the page number
    and size come validated by the list's query serializer (``p``, ``page_size``)."""

    def page_body(self, items: list[dict]) -> dict[str, Any]:
        return {"items": items, "total": self.total, "page": self.number, "page_size": self.size}
