"""OpenAPI descriptions of the seed 004 dialect (documentation only; the views build dicts)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

NEW_API_USER = OpenApiParameter(
    "New-Api-User",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    required=True,
    description="Your user id; must be the user the Bearer token belongs to (else 401).",
)


class GenerationError(serializers.Serializer):
    success = serializers.BooleanField(help_text="Always false.")
    message = serializers.CharField(help_text="What was wrong, naming the field for a 400.")


class GenerationTaskItem(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.IntegerField(help_text="Epoch seconds.")
    updated_at = serializers.IntegerField(help_text="Epoch seconds.")
    task_id = serializers.CharField(help_text="The platform's task id ('' until submitted).")
    platform = serializers.CharField()
    user_id = serializers.IntegerField()
    channel_id = serializers.IntegerField(required=False, help_text="Administrators' list only.")
    quota = serializers.IntegerField(help_text="Quota charged.")
    action = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["NOT_START", "SUBMITTED", "QUEUED", "IN_PROGRESS", "FAILURE", "SUCCESS", "UNKNOWN"]
    )
    fail_reason = serializers.CharField()
    submit_time = serializers.IntegerField(help_text="Epoch seconds; 0 if not yet.")
    start_time = serializers.IntegerField(help_text="Epoch seconds; 0 if not yet.")
    finish_time = serializers.IntegerField(help_text="Epoch seconds; 0 if not yet.")
    progress = serializers.CharField(help_text='Percent as text, e.g. "45%".')
    properties = serializers.DictField()
    data = serializers.DictField(help_text="The platform's result.")


class GenerationTaskPage(serializers.Serializer):
    items = GenerationTaskItem(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()


class GenerationListResponse(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField(allow_blank=True)
    data = GenerationTaskPage()


class GenerationTaskResponse(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField(allow_blank=True)
    data = GenerationTaskItem()


class SubmitRequest(serializers.Serializer):
    platform = serializers.CharField(required=False, default="suno")
    action = serializers.ChoiceField(choices=["song", "lyrics"])
    prompt = serializers.CharField(max_length=3000)
    title = serializers.CharField(required=False, max_length=120)
    tags = serializers.CharField(required=False, max_length=200)
    make_instrumental = serializers.BooleanField(required=False)
    channel_id = serializers.IntegerField(required=False, min_value=0)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The envelope error responses for ``codes`` (plus 401 and 429, which every route has)."""
    descriptions = {
        400: "Bad input; the message names the field.",
        401: "No or bad token, or New-Api-User missing or not the token's user.",
        402: "The quota balance cannot pay for the task; nothing was created.",
        403: "Administrators only.",
        429: "Too many requests.",
    }
    return {
        code: OpenApiResponse(GenerationError, descriptions[code])
        for code in sorted({*codes, 401, 429})
    }
