"""OpenAPI shapes of the envelope (``taskcenter.api.envelope``), for the dialects' schemas."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers


class EnvelopeFieldError(serializers.Serializer):
    field = serializers.CharField(help_text="Dotted path of the field, e.g. `parameters.timeout`.")
    message = serializers.CharField()


class EnvelopeError(serializers.Serializer):
    code = serializers.CharField(help_text="`invalid_argument`, `not_found`, `conflict`, ...")
    message = serializers.CharField()
    fields = EnvelopeFieldError(many=True, required=False)
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
