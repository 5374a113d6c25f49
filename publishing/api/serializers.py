"""Input checks and output shapes of the social-auto-upload endpoints (canonical: records.py)."""

from __future__ import annotations

import json
from datetime import time
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from publishing.models import PlatformAccount, PublishTaskRecord, VideoFile
from publishing.platforms import PLATFORM_LABELS, PlatformType
from publishing.schedule import DEFAULT_DAILY_TIMES
from publishing.task_kinds import MAX_PRODUCT_LINK, MAX_PRODUCT_TITLE, MAX_TAGS, MAX_TITLE
from taskcenter.api.envelope import StrictCharField
from taskcenter.api.serializers import SafeJSONField
from taskcenter.api.status_words import PUBLISHING, words
from taskcenter.models import Status

MAX_ID = 2**63 - 1
MAX_CREDENTIALS = 64 * 1024
RECORD_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # social-auto-upload's DATETIME text


def seed_time(value) -> str | None:
    return timezone.localtime(value).strftime(RECORD_TIME_FORMAT) if value else None


# --- output ---------------------------------------------------------------------------------


def record_data(record: PublishTaskRecord) -> dict[str, Any]:
    """One publish record as social-auto-upload's table has it (status and times from the task)."""
    return {
        "id": record.pk,
        "task_id": record.batch_id,
        "filename": record.filename,
        "file_id": record.file_id,
        "account_id": record.account_id,
        "account_name": record.account_name,
        "platform_name": record.platform_name,
        "platform_type": record.platform_type,
        "status": record.status,
        "create_time": seed_time(record.create_time),
        "update_time": seed_time(record.update_time),
        # A cancelled record shows why (/updatePublishTaskStatus's error_msg is the reason).
        "error_msg": record.error_msg
        or (
            getattr(record, "cancel_reason", None)
            if record.task.status == Status.CANCELLED
            else None
        )
        or None,
        "remote_id": record.remote_id or None,
    }


def file_data(video: VideoFile) -> dict[str, Any]:
    return {
        "id": video.pk,
        "filename": video.filename,
        "file_path": video.stored_name,
        "uuid": video.stored_name.split("_", 1)[0],
        # social-auto-upload's filesize column is megabytes with two decimals.
        "filesize": round(video.size / (1024 * 1024), 2),
        "size": video.size,
        "content_type": video.content_type,
        "upload_time": seed_time(video.created_at),
    }


def account_row(account: PlatformAccount) -> list[Any]:
    """One account as social-auto-upload's ``user_info`` row, which its front end reads by
    position: ``[id, type, filePath, userName, status]`` (status 1 logged in, 0 not)."""
    return [
        account.pk,
        account.platform_type,
        account.file_path,
        account.account_name,
        account.login_status,
    ]


def account_data(account: PlatformAccount) -> dict[str, Any]:
    """An account without its credentials (only ``/downloadCookie`` hands those to the owner)."""
    return {
        "id": account.pk,
        "filePath": account.file_path,
        "type": account.platform_type,
        "platform_name": account.platform_name,
        "platform_label": account.platform_label,
        "userName": account.account_name,
        "name": account.name,
        "status": account.login_status,
        "has_credentials": bool(account.credentials),
        "login_checked_at": seed_time(account.login_checked_at),
    }


# --- input ----------------------------------------------------------------------------------


class IdField(serializers.IntegerField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


PLATFORM_TYPE_HELP = ", ".join(f"{int(code)} {PLATFORM_LABELS[code]}" for code in PlatformType)


@extend_schema_field({"type": "object", "additionalProperties": True})
class CredentialsField(SafeJSONField):
    """Login data: a JSON object (cookies, tokens)."""


class AccountInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=PlatformType.choices, help_text=PLATFORM_TYPE_HELP)
    userName = StrictCharField(max_length=100)
    name = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
    credentials = CredentialsField(
        required=False,
        default=dict,
        help_text="Login data (cookies, tokens) for the platform; stored, never returned.",
    )

    def validate_credentials(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        if len(json.dumps(value)) > MAX_CREDENTIALS:
            raise serializers.ValidationError(f"At most {MAX_CREDENTIALS} characters of JSON.")
        return value


class AccountUpdateInput(AccountInput):
    id = IdField()
    type = serializers.ChoiceField(choices=PlatformType.choices, required=False)
    userName = StrictCharField(max_length=100, required=False)
    name = StrictCharField(max_length=100, required=False, allow_blank=True)
    credentials = CredentialsField(required=False)


class IdInput(serializers.Serializer):
    id = IdField()


class RecordTargetInput(serializers.Serializer):
    """One record by ``id``, or a whole batch by its ``task_id``."""

    id = IdField(required=False)
    task_id = StrictCharField(max_length=64, required=False)

    def validate(self, attrs: dict) -> dict:
        if ("id" in attrs) == ("task_id" in attrs):
            raise serializers.ValidationError({"id": ["Give either id or task_id (a batch)."]})
        return attrs


# The words a client may set; the rest are the worker's and are refused with a 400 that says so.
PENDING_WORD = "待发布"
CANCELLED_WORD = "已取消"


@extend_schema_field({"type": "string", "enum": [PENDING_WORD, CANCELLED_WORD]})
class ClientStatusField(serializers.ChoiceField):
    pass


class RecordTargetSchema(OpenApiSerializerExtension):
    """Exactly one of ``id`` and ``task_id``: the schema says so, as ``validate()`` does."""

    target_class = RecordTargetInput

    def map_serializer(self, auto_schema: Any, direction: str) -> dict:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["oneOf"] = [
            {"required": [name], "not": {"required": [other]}}
            for name, other in (("id", "task_id"), ("task_id", "id"))
        ]
        return schema


class StatusUpdateInput(serializers.Serializer):
    id = IdField()
    status = ClientStatusField(choices=[str(w) for w in words(PUBLISHING)])
    error_msg = StrictCharField(
        max_length=1000, required=False, allow_blank=True, allow_null=True, default=""
    )


class RecordQuery(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=1_000_000_000, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=100, default=20)
    status = serializers.ChoiceField(
        choices=[str(w) for w in words(PUBLISHING)], required=False, allow_blank=True
    )
    platform_name = serializers.CharField(max_length=50, required=False, allow_blank=True)
    account_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    filename = serializers.CharField(max_length=255, required=False, allow_blank=True)
    task_id = serializers.CharField(max_length=64, required=False, allow_blank=True)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            # A name: not blank once trimmed, at most 300 characters, no NUL.
            {"type": "string", "pattern": "^\\s*[^\\s\\x00][^\\x00]{0,299}$"},
        ]
    }
)
class RefField(serializers.Field):
    """A file or account named by id (number or digits) or by name."""

    default_error_messages = {"invalid": "Must be an id or a name."}

    def to_internal_value(self, data: Any) -> int | str:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            if not 1 <= data <= MAX_ID:
                raise serializers.ValidationError("Must be a positive id.")
            return data
        if isinstance(data, str) and data.strip():
            value = data.strip()
            if "\x00" in value:
                raise serializers.ValidationError("Null characters are not allowed.")
            if value.isascii() and value.isdigit() and len(value) <= 18:
                return int(value)
            if len(value) > 300:
                raise serializers.ValidationError("Too long.")
            return value
        self.fail("invalid")
        return ""  # unreachable: fail() raises

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]}
)
class TagsField(serializers.Field):
    """A list of tags, or one string of tags separated by commas, spaces or '#'."""

    def to_internal_value(self, data: Any) -> list[str]:
        if data in (None, ""):
            return []
        if isinstance(data, str):
            items = [t for t in data.replace("#", " ").replace(",", " ").split() if t]
        elif isinstance(data, list) and all(isinstance(t, str) for t in data):
            items = [t.strip().lstrip("#") for t in data if t.strip().lstrip("#")]
        else:
            raise serializers.ValidationError("Must be a list of strings or one string.")
        if len(items) > MAX_TAGS:
            raise serializers.ValidationError(f"At most {MAX_TAGS} tags.")
        if any(len(t) > 50 for t in items):
            raise serializers.ValidationError("A tag is at most 50 characters.")
        if any("\x00" in t for t in items):
            raise serializers.ValidationError("Null characters are not allowed.")
        return items

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9]$"},
            {"type": "integer", "minimum": 0, "maximum": 23},
        ]
    }
)
class TimeOfDayField(serializers.Field):
    """A time of day as social-auto-upload's front end sends it, ``"10:00"``, or a whole hour
    as its backend's own default list has it (``10``)."""

    default_error_messages = {"invalid": 'Must be a time of day, "HH:MM" (or an hour, 0-23).'}

    def to_internal_value(self, data: Any) -> time:
        if isinstance(data, int) and not isinstance(data, bool) and 0 <= data <= 23:
            return time(data)
        if isinstance(data, str) and len(data) <= 5:
            hour, colon, minute = data.strip().partition(":")
            if (
                colon
                and hour.isascii()
                and hour.isdigit()
                and minute.isascii()
                and minute.isdigit()
                and len(minute) == 2
                and int(hour) <= 23
                and int(minute) <= 59
            ):
                return time(int(hour), int(minute))
        self.fail("invalid")
        return time()  # unreachable: fail() raises

    def to_representation(self, value: time) -> str:
        return value.strftime("%H:%M")


class PublishInput(serializers.Serializer):
    """``/postVideosToMultiplePlatforms``: files x accounts, accounts on any platforms.

    Files are named by id, name or stored ``file_path`` (what ``/upload`` answers), accounts by
    id, ``userName`` or ``filePath`` (what ``/getAccounts`` lists). A timed publish is either
    social-auto-upload's ``enableTimer`` with ``videosPerDay``, ``dailyTimes`` and
    ``startDays`` (one time per file, ``publishing.schedule``), or one ``scheduleTime`` for all.
    """

    fileList = serializers.ListField(child=RefField(), min_length=1, max_length=100)
    accountList = serializers.ListField(child=RefField(), min_length=1, max_length=100)
    title = StrictCharField(max_length=MAX_TITLE)
    tags = TagsField(required=False, default=list)
    enableTimer = serializers.BooleanField(required=False, default=False)
    videosPerDay = serializers.IntegerField(required=False, default=1, min_value=1, max_value=24)
    dailyTimes = serializers.ListField(
        child=TimeOfDayField(),
        required=False,
        default=lambda: list(DEFAULT_DAILY_TIMES),
        min_length=1,
        max_length=24,
    )
    startDays = serializers.IntegerField(required=False, default=0, min_value=0, max_value=3650)
    scheduleTime = serializers.DateTimeField(required=False, allow_null=True, default=None)
    category = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        max_value=2**31 - 1,
        help_text="Platform category; social-auto-upload's front end sends 1 for original "
        "content, 0 for none.",
    )
    productLink = StrictCharField(
        required=False, allow_blank=True, default="", max_length=MAX_PRODUCT_LINK
    )
    productTitle = StrictCharField(
        required=False, allow_blank=True, default="", max_length=MAX_PRODUCT_TITLE
    )
    isDraft = serializers.BooleanField(required=False, default=False)
    thumbnail = StrictCharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=300,
        help_text="A cover image; not supported (only videos are uploaded), so only empty.",
    )

    def validate_thumbnail(self, value: str) -> str:
        if value:
            raise serializers.ValidationError(
                "Cover images are not supported: uploads are videos only; leave it empty."
            )
        return value

    def validate(self, attrs: dict) -> dict:
        if attrs["videosPerDay"] > len(attrs["dailyTimes"]):
            raise serializers.ValidationError(
                {
                    "videosPerDay": [
                        f"{attrs['videosPerDay']} videos a day need as many dailyTimes; "
                        f"{len(attrs['dailyTimes'])} given."
                    ]
                }
            )
        if attrs["category"] == 0:  # the front end's "not original": no category
            attrs["category"] = None
        return attrs


def publish_options(data: dict[str, Any]) -> dict[str, Any]:
    """The platform settings every record of a publish passes on (``task_kinds.OPTIONS``), from
    a validated ``PublishInput``."""
    return {
        "category": data["category"],
        "is_draft": data["isDraft"],
        "product_link": data["productLink"],
        "product_title": data["productTitle"],
    }


class PostVideoInput(PublishInput):
    """``/postVideo``: the same, with every account on the platform ``type``."""

    type = serializers.ChoiceField(choices=PlatformType.choices, help_text=PLATFORM_TYPE_HELP)


class UploadCookieInput(serializers.Serializer):
    """``/uploadCookie``'s form fields beside the file (the front end's account row)."""

    id = IdField()
    platform = StrictCharField(
        max_length=50, help_text="The account's platform: label (抖音), name or type code."
    )
