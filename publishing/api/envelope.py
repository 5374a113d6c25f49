"""social-auto-upload's response envelope, ``{"code", "msg", "data"}``, on all its endpoints.

Success is ``code`` 200. An error answers its real HTTP status (400, 401, 404, 409, 413, ...)
with the same number in ``code``, a ``msg`` that names the field (``"page: Must be at least
1."``) and ``data.field``, so a social-auto-upload front end can show it as it is.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from publishing.media import UploadRejected
from taskcenter.api.pagination import NumberedPagination
from taskcenter.api.status_words import PUBLISHING, word_for
from taskcenter.errors import InvalidTransition

MAX_JSON_BODY = 1024 * 1024


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "too_large"


class EnvelopeSerializer(serializers.Serializer):
    """Schema of the envelope (``data`` varies by endpoint)."""

    code = serializers.IntegerField(help_text="200 on success, else the HTTP status.")
    msg = serializers.CharField(allow_null=True)
    # `data` is the social-auto-upload publishing API's field name. DRF's serializer metaclass
    # takes declared fields out of the class, so it does not hide Serializer.data; the stubs
    # cannot see that.
    data = serializers.JSONField(allow_null=True)  # type: ignore[assignment]  # a field, not Serializer.data


def ok(data: Any = None, msg: str | None = "success", code: int = status.HTTP_200_OK) -> Response:
    return Response({"code": 200, "msg": msg, "data": data}, status=code)


def error_body(status: int, message: str, *, field: str = "", data: dict | None = None) -> dict:
    """Every error of this envelope: ``{"code": <HTTP status>, "msg", "data"}``, the field it
    names (if any) in ``data.field``. Also what ``ERROR_ENVELOPES`` answers outside a view."""
    payload = dict(data or {})
    if field:
        payload["field"] = field
    return {"code": status, "msg": message, "data": payload or None}


def fail(code: int, msg: str, *, field: str = "", data: dict | None = None) -> Response:
    return Response(error_body(code, msg, field=field, data=data), status=code)


def _first_error(detail: Any, loc: list[str]) -> tuple[str, str]:
    """The first (field path, message) of a DRF error structure."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            return _first_error(value, [*loc, str(key)])
    if isinstance(detail, list) and detail:
        if all(isinstance(item, str) for item in detail):
            return ".".join(loc), str(detail[0])
        for index, item in enumerate(detail):
            if item:
                return _first_error(item, [*loc, str(index)])
    return ".".join(loc), str(detail)


def transition_refused(exc: InvalidTransition, *, record_id: int, action: str) -> Response:
    """A lifecycle refusal in social-auto-upload's words: 409 with the record's status word."""
    if exc.current_status is None:
        return fail(404, f"id: publish record {record_id} not found", field="id")
    word = word_for(exc.current_status, PUBLISHING)
    return fail(
        409,
        f"Cannot {action} publish record {record_id}: it is {word}",
        field="status",
        data={"id": record_id, "status": word},
    )


@extend_schema(tags=["publishing (social-auto-upload)"])
class SocialAutoUploadView(APIView):
    """Base of the social-auto-upload endpoints: the API's authentication, its envelope's errors."""

    max_body = MAX_JSON_BODY

    def initial(self, request, *args: Any, **kwargs: Any) -> None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise ValidationError({"Content-Length": ["Invalid Content-Length header."]}) from None
        if length > self.max_body:
            raise PayloadTooLarge(
                f"Request body is larger than the limit of {self.max_body} bytes."
            )
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        return reshape_error(exc) or reshape_response(super().handle_exception(exc))


def reshape_error(exc: Exception) -> Response | None:
    """The envelope's error hook for what DRF would answer with its own shape: an upload or
    body refused, naming the field (``"title: This field is required."``)."""
    if isinstance(exc, UploadRejected):
        return fail(exc.status, f"{exc.field}: {exc.message}", field=exc.field)
    if isinstance(exc, ValidationError):
        field, message = _first_error(exc.detail, [])
        return fail(400, f"{field}: {message}" if field else message, field=field)
    return None


def reshape_response(response: Response) -> Response:
    """DRF's answer to any other API error (401, 403, 405, 413, 429...) in this envelope."""
    detail = response.data.get("detail") if isinstance(response.data, dict) else None
    if isinstance(detail, list):  # the core's located errors: name the first field
        first = detail[0] if detail else {}
        field = ".".join(str(part) for part in first.get("loc", []))
        message = f"{field}: {first.get('msg', '')}" if field else str(first.get("msg", ""))
        response.data = error_body(response.status_code, message, data={"field": field})
    else:
        message = str(detail if detail is not None else response.data)
        response.data = error_body(response.status_code, message)
    return response


def upload_body_limit() -> int:
    # The file plus room for the multipart framing and a few form fields.
    return int(settings.PUBLISHING["MAX_UPLOAD_BYTES"]) + 64 * 1024


class RecordPagination(NumberedPagination):
    """social-auto-upload's page of publish records: ``{records, total, page, page_size,
    total_pages}`` inside ``ok``'s envelope; page and size come validated by the view's query
    serializer (a bad one is a 400 in this envelope naming it)."""

    def page_body(self, records: list[dict]) -> dict[str, Any]:
        return {
            "records": records,
            "total": self.total,
            "page": self.number,
            "page_size": self.size,
            "total_pages": self.pages,
        }
