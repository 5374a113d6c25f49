"""OpenAPI descriptions of the new-api dialect (documentation only; the views build dicts)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers

from generation.api.media_types import ALL, MEDIA_TYPES
from generation.task_kinds import GENERATION_KINDS
from taskcenter.api.pagination import MAX_PAGE
from taskcenter.api.status_words import GENERATION, statuses_for, words

# Task ids and channel ids are 64-bit columns: anything larger cannot name a row.
BIGINT_MAX = 2**63 - 1
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# 9999-12-31: later than any task, early enough for datetime.
MAX_TIMESTAMP = 253_402_300_799
# The statistics answer one bucket per day of the range: about ten years at most.
MAX_STATS_DAYS = 3660

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


class TaskProperties(serializers.Serializer):
    input = serializers.CharField(help_text="The prompt ('' when the task has none).")
    origin_model_name = serializers.CharField(help_text='new-api\'s model name, e.g. "suno_song".')
    task_type = serializers.CharField(help_text="Task Center's kind, e.g. suno.song.")
    remote_status = serializers.CharField(help_text="The platform's own status word.")
    parameters = serializers.DictField(help_text="All the task's parameters.")


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
    properties = TaskProperties()
    username = serializers.CharField(required=False, help_text="Administrators' list only.")
    # `data` is new-api's field name. DRF's serializer metaclass takes declared
    # fields out of the class, so it does not hide Serializer.data; the stubs cannot see that.
    data = serializers.JSONField(  # type: ignore[assignment]  # a field, not Serializer.data
        allow_null=True,
        help_text="The platform's result as new-api stores it: for a Suno song the list of "
        "clips (audio_url, image_url, title, metadata ...), for lyrics the lyrics object; null "
        "until the platform has answered.",
    )


class GenerationTaskPage(serializers.Serializer):
    items = GenerationTaskItem(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()


class GenerationListResponse(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField(allow_blank=True)
    data = GenerationTaskPage()  # type: ignore[assignment]  # a field, not Serializer.data


class GenerationTaskResponse(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField(allow_blank=True)
    data = GenerationTaskItem()  # type: ignore[assignment]  # a field, not Serializer.data


class StatsBreakdown(serializers.Serializer):
    running = serializers.IntegerField(help_text="NOT_START, QUEUED or IN_PROGRESS.")
    success = serializers.IntegerField(help_text="SUCCESS.")
    failure = serializers.IntegerField(help_text="FAILURE (failed or cancelled).")


class DailyCount(serializers.Serializer):
    date = serializers.CharField(
        help_text='"HH:00" when the range lies within today, else "YYYY-MM-DD" (server time zone).'
    )
    total = serializers.IntegerField(help_text="Tasks created in that hour or day.")


class TaskStats(serializers.Serializer):
    running_count = serializers.IntegerField(help_text="Unfinished tasks in the range.")
    daily_counts = DailyCount(many=True)
    total_stats = StatsBreakdown()
    image_stats = StatsBreakdown()
    video_stats = StatsBreakdown()


class GenerationStatsResponse(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField(allow_blank=True)
    data = TaskStats()  # type: ignore[assignment]  # a field, not Serializer.data


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


# --- input ------------------------------------------------------------------------------------


@extend_schema_field(
    # Matched case-insensitively and trimmed; the schema names the canonical spelling.
    {"type": "string", "enum": [str(word) for word in words(GENERATION)]}
)
class StatusWordField(serializers.CharField):
    pass


@extend_schema_field({"type": "string", "enum": list(MEDIA_TYPES)})
class MediaTypeField(serializers.CharField):
    pass


class TaskFilterQuery(serializers.Serializer):
    """The filters the lists and the statistics share (an empty value means "not set")."""

    platform = serializers.CharField(required=False, max_length=50)
    status = StatusWordField(
        required=False, max_length=32, help_text=f"One of {', '.join(map(str, words(GENERATION)))}."
    )
    action = serializers.CharField(required=False, max_length=50, help_text="song, lyrics, ...")
    media_type = MediaTypeField(
        required=False,
        max_length=16,
        help_text="all (every task, the default), video or image: new-api's classes of actions.",
    )
    start_timestamp = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_TIMESTAMP,
        help_text="Created at or after (epoch seconds; 0 means not set).",
    )
    end_timestamp = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_TIMESTAMP,
        help_text="Created at or before (epoch seconds; 0 means not set).",
    )

    def validate_status(self, value: str) -> list[str]:
        try:
            return statuses_for(value.strip().upper(), GENERATION)
        except KeyError:
            allowed = ", ".join(map(str, words(GENERATION)))
            raise serializers.ValidationError(
                f"Unknown status {value!r}; use one of {allowed}."
            ) from None

    def validate_media_type(self, value: str) -> str:
        media_type = value.strip().lower() or ALL
        if media_type not in MEDIA_TYPES:
            raise serializers.ValidationError(
                f"Unknown media type {value!r}; use one of {', '.join(MEDIA_TYPES)}."
            )
        return media_type

    def validate(self, attrs: dict) -> dict:
        # new-api reads 0 as "no bound", as its page sends when a date is missing.
        for name in ("start_timestamp", "end_timestamp"):
            if attrs.get(name) == 0:
                del attrs[name]
        start, end = attrs.get("start_timestamp"), attrs.get("end_timestamp")
        if start is not None and end is not None and start > end:
            raise serializers.ValidationError(
                {"end_timestamp": "Must not be before start_timestamp."}
            )
        attrs.setdefault("media_type", ALL)
        return attrs


class TaskListQuery(TaskFilterQuery):
    p = serializers.IntegerField(
        min_value=1, max_value=MAX_PAGE, default=1, help_text="Page number, from 1."
    )
    page_size = serializers.IntegerField(
        min_value=1,
        default=DEFAULT_PAGE_SIZE,
        help_text=f"Tasks per page (default {DEFAULT_PAGE_SIZE}; above {MAX_PAGE_SIZE} is "
        f"{MAX_PAGE_SIZE}).",
    )
    task_id = serializers.CharField(
        required=False, max_length=128, help_text="The platform's task id."
    )

    def validate_page_size(self, value: int) -> int:
        return min(value, MAX_PAGE_SIZE)


class AdminTaskListQuery(TaskListQuery):
    channel_id = serializers.IntegerField(required=False, min_value=0, max_value=BIGINT_MAX)
    user_id = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)


class StatsQuery(TaskFilterQuery):
    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        start, end = attrs.get("start_timestamp"), attrs.get("end_timestamp")
        # One bucket per day of the range: keep the answer a sane size.
        if start is not None and end is not None and end - start > MAX_STATS_DAYS * 86_400:
            raise serializers.ValidationError(
                {"end_timestamp": f"At most {MAX_STATS_DAYS} days after start_timestamp."}
            )
        return attrs


class AdminStatsQuery(StatsQuery):
    channel_id = serializers.IntegerField(required=False, min_value=0, max_value=BIGINT_MAX)


class SubmitInput(serializers.Serializer):
    """Everything but these fields is the kind's parameters (``prompt`` ...)."""

    platform = serializers.CharField(max_length=50, default="suno")
    action = serializers.CharField(max_length=50, help_text="song or lyrics")
    channel_id = serializers.IntegerField(
        required=False, min_value=0, max_value=BIGINT_MAX, allow_null=True
    )

    def validate(self, attrs: dict) -> dict:
        task_type = f"{attrs['platform']}.{attrs['action']}"
        if task_type not in GENERATION_KINDS:
            known = ", ".join(kind.replace(".", "/") for kind in GENERATION_KINDS)
            raise serializers.ValidationError(
                {"action": f"Unknown platform/action {task_type.replace('.', '/')!r}; use {known}."}
            )
        attrs["task_type"] = task_type
        return attrs


# --- output ----------------------------------------------------------------------------------
