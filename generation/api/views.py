"""Seed 004 dialect: the AI-generation task center's own routes, envelope and status words.

::

    GET  /api/task/self    the caller's generation tasks      (user)
    GET  /api/task/        everybody's, with channel_id       (staff only)
    POST /api/task/submit  create and submit a generation task (Task Center's addition)

Answers are ``{"success": true, "message": "", "data": ...}``; every error is
``{"success": false, "message": "..."}`` with a fitting HTTP status (400 names the field,
401 bad token or ``New-Api-User``, 402 quota, 403 not staff). Statuses are the GENERATION column
of ``taskcenter.api.status_words``; timestamps are epoch seconds (0 when not reached yet).

Thin: each view validates its input, reads tasks or calls ``lifecycle.create_task`` once, and
serializes. No state of its own: the tasks are the canonical ones in ``taskcenter``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation.api.serializers import (
    NEW_API_USER,
    GenerationListResponse,
    GenerationTaskResponse,
    SubmitRequest,
    errors,
)
from generation.task_kinds import GENERATION_KINDS
from taskcenter import lifecycle
from taskcenter.api.exceptions import flatten_errors
from taskcenter.api.pagination import MAX_PAGE
from taskcenter.api.parsers import SafeJSONParser
from taskcenter.api.status_words import GENERATION, statuses_for, word_for, words
from taskcenter.errors import InsufficientQuota, UnknownKind
from taskcenter.models import Task

# Task ids and channel ids are 64-bit columns: anything larger cannot name a row.
BIGINT_MAX = 2**63 - 1
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# 9999-12-31: later than any task, early enough for datetime.
MAX_TIMESTAMP = 253_402_300_799
USER_HEADER = "New-Api-User"


# --- auth ------------------------------------------------------------------------------------


class NewApiUserMatches(BasePermission):
    """``New-Api-User`` must name the user the token belongs to (seed 004 sends both)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        claimed = request.headers.get(USER_HEADER, "").strip()
        if not claimed:
            raise exceptions.AuthenticationFailed(f"The {USER_HEADER} header is required.")
        if claimed != str(request.user.pk):
            raise exceptions.AuthenticationFailed(
                f"{USER_HEADER} does not match the user of the token."
            )
        return True


class IsStaff(BasePermission):
    message = "Administrators only."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_staff)


# --- input -----------------------------------------------------------------------------------


@extend_schema_field(
    # Matched case-insensitively and trimmed; the schema names the canonical spelling.
    {"type": "string", "enum": [str(word) for word in words(GENERATION)]}
)
class StatusWordField(serializers.CharField):
    pass


class TaskListQuery(serializers.Serializer):
    p = serializers.IntegerField(
        min_value=1, max_value=MAX_PAGE, default=1, help_text="Page number, from 1."
    )
    page_size = serializers.IntegerField(
        min_value=1,
        default=DEFAULT_PAGE_SIZE,
        help_text=f"Tasks per page (default {DEFAULT_PAGE_SIZE}; above {MAX_PAGE_SIZE} is "
        f"{MAX_PAGE_SIZE}).",
    )
    platform = serializers.CharField(required=False, max_length=50)
    task_id = serializers.CharField(
        required=False, max_length=128, help_text="The platform's task id."
    )
    status = StatusWordField(
        required=False, max_length=32, help_text=f"One of {', '.join(map(str, words(GENERATION)))}."
    )
    action = serializers.CharField(required=False, max_length=50, help_text="song, lyrics, ...")
    start_timestamp = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_TIMESTAMP, help_text="Created at or after."
    )
    end_timestamp = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_TIMESTAMP, help_text="Created at or before."
    )

    def validate_page_size(self, value: int) -> int:
        return min(value, MAX_PAGE_SIZE)

    def validate_status(self, value: str) -> list[str]:
        try:
            return statuses_for(value.strip().upper(), GENERATION)
        except KeyError:
            allowed = ", ".join(map(str, words(GENERATION)))
            raise serializers.ValidationError(
                f"Unknown status {value!r}; use one of {allowed}."
            ) from None

    def validate(self, attrs: dict) -> dict:
        start, end = attrs.get("start_timestamp"), attrs.get("end_timestamp")
        if start is not None and end is not None and start > end:
            raise serializers.ValidationError(
                {"end_timestamp": "Must not be before start_timestamp."}
            )
        return attrs


class AdminTaskListQuery(TaskListQuery):
    channel_id = serializers.IntegerField(required=False, min_value=0, max_value=BIGINT_MAX)
    user_id = serializers.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)


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


def epoch(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment else 0


def task_item(task: Task, *, admin: bool) -> dict[str, Any]:
    """One task as seed 004 lists it."""
    item: dict[str, Any] = {
        "id": task.pk,
        "created_at": epoch(task.created_at),
        "updated_at": epoch(task.updated_at),
        "task_id": task.external_id,
        "platform": task.platform,
        "user_id": task.owner_id,
    }
    if admin:
        item["channel_id"] = task.channel_id or 0
    item.update(
        {
            "quota": task.quota,
            "action": task.action,
            "status": word_for(task.status, GENERATION),
            "fail_reason": task.error_message,
            "submit_time": epoch(task.submitted_at),
            "start_time": epoch(task.started_at),
            "finish_time": epoch(task.finished_at),
            "progress": f"{task.progress}%",
            "properties": {
                "task_type": task.task_type,
                "remote_status": task.remote_status,
                "input": task.parameters,
            },
            "data": task.result if isinstance(task.result, dict) else {},
        }
    )
    return item


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


# --- views -----------------------------------------------------------------------------------


class GenerationView(APIView):
    """Base: seed 004's auth and its ``{success, message}`` error envelope."""

    permission_classes = [IsAuthenticated, NewApiUserMatches]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            response = envelope(message=str(exc.detail), status=401)
            header = self.get_authenticate_header(self.request)
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
            if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
                response["Retry-After"] = str(int(exc.wait))
            return response
        return super().handle_exception(exc)

    def list_response(self, request: Request, *, admin: bool) -> Response:
        query_class = AdminTaskListQuery if admin else TaskListQuery
        query = query_class(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        tasks = Task.objects.filter(task_type__in=GENERATION_KINDS)
        if not admin:
            tasks = tasks.filter(owner=request.user)
        for name, column in (
            ("platform", "platform"),
            ("task_id", "external_id"),
            ("action", "action"),
            ("channel_id", "channel_id"),
            ("user_id", "owner_id"),
        ):
            if params.get(name) not in (None, ""):
                tasks = tasks.filter(**{column: params[name]})
        if "status" in params:
            tasks = tasks.filter(status__in=params["status"])
        if "start_timestamp" in params:
            tasks = tasks.filter(
                created_at__gte=datetime.fromtimestamp(params["start_timestamp"], UTC)
            )
        if "end_timestamp" in params:
            tasks = tasks.filter(
                created_at__lte=datetime.fromtimestamp(params["end_timestamp"], UTC)
            )
        page, size = params["p"], params["page_size"]
        total = tasks.count()
        offset = (page - 1) * size
        rows = (
            tasks.order_by("-created_at", "-id")[offset : offset + size] if offset < total else []
        )
        items = [task_item(task, admin=admin) for task in rows]
        return envelope({"items": items, "total": total, "page": page, "page_size": size})


class SelfTaskList(GenerationView):
    @extend_schema(
        parameters=[TaskListQuery, NEW_API_USER],
        responses={200: GenerationListResponse, **errors(400)},
        summary="Seed 004: the caller's generation tasks",
        description="Send `Authorization: Bearer <token>` and `New-Api-User: <your user id>`.",
    )
    def get(self, request: Request) -> Response:
        return self.list_response(request, admin=False)


class AllTaskList(GenerationView):
    permission_classes = [IsAuthenticated, NewApiUserMatches, IsStaff]

    @extend_schema(
        parameters=[AdminTaskListQuery, NEW_API_USER],
        responses={200: GenerationListResponse, **errors(400, 403)},
        summary="Seed 004: every generation task (administrators)",
    )
    def get(self, request: Request) -> Response:
        return self.list_response(request, admin=True)


class SubmitTask(GenerationView):
    parser_classes = [SafeJSONParser]

    @extend_schema(
        parameters=[NEW_API_USER],
        request=SubmitRequest,
        responses={200: GenerationTaskResponse, **errors(400, 402)},
        summary="Seed 004: create and submit a generation task (charges quota)",
        description='Body: `{"action": "song", "prompt": "...", "platform": "suno"}`; other '
        "fields are the kind's parameters. 402 when the quota balance is short.",
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError("The body must be a JSON object.")
        data = SubmitInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        parameters = {
            key: value
            for key, value in request.data.items()
            if key not in ("platform", "action", "channel_id")
        }
        task = lifecycle.create_task(
            owner=request.user,
            actor=request.user,
            task_type=fields["task_type"],
            parameters=parameters,
            start=True,
            channel_id=fields.get("channel_id"),
        )
        return envelope(task_item(task, admin=False))
