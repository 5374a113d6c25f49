"""OpenAPI shapes of the envelope (``taskcenter.api.envelope``), for the dialects' schemas."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from .pagination import DEFAULT_SIZE, MAX_PAGE, MAX_SIZE, whole_number_schema


def bounded_int(name: str, minimum: int, maximum: int, default: int, description: str) -> Any:
    """A query integer with the bounds the server enforces (outside them: a 400 naming it);
    empty means the default."""
    return OpenApiParameter(
        name, whole_number_schema(minimum, maximum, default), description=description
    )


PAGE_PARAM = bounded_int("page", 1, MAX_PAGE, 1, "From 1 (default 1); past the end: empty.")
SIZE_PARAM = bounded_int(
    "size", 1, MAX_SIZE, DEFAULT_SIZE, f"1-{MAX_SIZE} (default {DEFAULT_SIZE})."
)


class EnvelopeFieldError(serializers.Serializer):
    field = serializers.CharField(help_text="Dotted path of the field, e.g. `parameters.timeout`.")
    message = serializers.CharField()


class EnvelopeError(serializers.Serializer):
    code = serializers.CharField(help_text="`invalid_argument`, `not_found`, `conflict`, ...")
    message = serializers.CharField()
    # DRF's serializer metaclass takes declared fields out of the class, so this one does not
    # replace Serializer.fields; the stubs cannot see that.
    fields = EnvelopeFieldError(many=True, required=False)  # type: ignore[assignment]
    status = serializers.CharField(
        required=False, help_text="On a 409: the task's status now, in the dialect's words."
    )


class EnvelopeErrorResponse(serializers.Serializer):
    success = serializers.BooleanField(default=False)
    error = EnvelopeError()


def enveloped(name: str, data: Any) -> Any:
    """The success envelope around ``data`` (a serializer instance or field)."""
    return inline_serializer(
        name, {"success": serializers.BooleanField(default=True), "data": data}
    )


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    text = {
        400: "Invalid input; `error.fields` names each bad field.",
        401: "Missing or invalid credentials.",
        404: "No such task, or not yours.",
        409: "Not allowed in the task's current status (`error.status`).",
    }
    return {code: OpenApiResponse(EnvelopeErrorResponse, text.get(code, "")) for code in codes}
