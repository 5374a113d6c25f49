"""new-api's task center dialect: its own routes, envelope and status words.

::

    GET  /api/task/self        the caller's generation tasks            (user)
    GET  /api/task/            everybody's, with channel_id and username (staff only)
    GET  /api/task/self/stats  the task log page's figures for the caller (user)
    GET  /api/task/stats       the same over everybody's tasks          (staff only)
    POST /api/task/submit      create and submit a generation task (Task Center's addition)

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

from django.db.models import CharField, QuerySet, Value
from django.db.models.functions import Concat
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation.api.envelope import TaskPagination, envelope, reshape_error
from generation.api.media_types import of_media_type
from generation.api.serializers import (
    NEW_API_USER,
    AdminStatsQuery,
    AdminTaskListQuery,
    GenerationListResponse,
    GenerationStatsResponse,
    GenerationTaskResponse,
    StatsQuery,
    SubmitInput,
    SubmitRequest,
    TaskFilterQuery,
    TaskListQuery,
    errors,
)
from generation.api.stats import task_stats
from generation.task_kinds import GENERATION_KINDS
from taskcenter import lifecycle
from taskcenter.api.authentication import authenticated_user
from taskcenter.api.parsers import SafeJSONParser
from taskcenter.api.status_words import GENERATION, word_for
from taskcenter.models import Task

USER_HEADER = "New-Api-User"


# --- auth ------------------------------------------------------------------------------------


class NewApiUserMatches(BasePermission):
    """``New-Api-User`` must name the user the token belongs to (new-api sends both)."""

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


# --- output ----------------------------------------------------------------------------------


def epoch(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment else 0


def task_data(task: Task) -> Any:
    """The result as new-api stores a task's ``data``: a Suno song's is the list of its clips
    (we keep ``{"clips": [...]}``, an object, like every result); the rest as the platform
    answered; null before it has."""
    result = task.result
    clips = result.get("clips") if isinstance(result, dict) else None
    if task.platform == "suno" and isinstance(clips, list):
        return clips
    return result


def task_item(task: Task, *, admin: bool) -> dict[str, Any]:
    """One task as new-api's task center lists it (``admin``: with channel and username)."""
    prompt = task.parameters.get("prompt") if isinstance(task.parameters, dict) else None
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
                # new-api keeps the prompt as text here; its page shows it in the prompt column.
                "input": prompt if isinstance(prompt, str) else "",
                "origin_model_name": f"{task.platform}_{task.action}".lower(),
                "task_type": task.task_type,
                "remote_status": task.remote_status,
                "parameters": task.parameters,
            },
        }
    )
    if admin:
        item["username"] = task.owner.get_username()
    item["data"] = task_data(task)
    return item


# --- input -----------------------------------------------------------------------------------


def of_generation_kinds(tasks: QuerySet[Task], *, by_range: bool) -> QuerySet[Task]:
    """``tasks`` of the generation kinds. With a ``created_at`` range (``by_range``) the kind is
    compared through an expression, which keeps the planner on the range's index: SQLite (no
    planner statistics in a Django application's file) would otherwise prefer the task_type
    index and read every generation task ever made, however short the range."""
    if not by_range:
        return tasks.filter(task_type__in=GENERATION_KINDS)
    kind = Concat("task_type", Value(""), output_field=CharField())
    return tasks.alias(kind=kind).filter(kind__in=GENERATION_KINDS)


def filtered_tasks(request: Request, params: dict[str, Any], *, admin: bool) -> QuerySet[Task]:
    """The generation tasks the validated ``params`` select: the caller's, or anyone's for
    ``admin``. The lists and the statistics read the same selection."""
    bounded = "start_timestamp" in params or "end_timestamp" in params
    tasks = of_generation_kinds(Task.objects.all(), by_range=bounded)
    if not admin:
        tasks = tasks.filter(owner=authenticated_user(request))
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
        tasks = tasks.filter(created_at__gte=datetime.fromtimestamp(params["start_timestamp"], UTC))
    if "end_timestamp" in params:
        tasks = tasks.filter(created_at__lte=datetime.fromtimestamp(params["end_timestamp"], UTC))
    return of_media_type(tasks, params["media_type"])


def validated(request: Request, query_class: type[TaskFilterQuery]) -> dict[str, Any]:
    query = query_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return dict(query.validated_data)


# --- views -----------------------------------------------------------------------------------


class GenerationView(APIView):
    """Base: new-api's auth and its ``{success, message}`` error envelope."""

    permission_classes = [IsAuthenticated, NewApiUserMatches]

    def handle_exception(self, exc: Exception) -> Response:
        return reshape_error(self, exc) or super().handle_exception(exc)

    def list_response(self, request: Request, *, admin: bool) -> Response:
        params = validated(request, AdminTaskListQuery if admin else TaskListQuery)
        tasks = filtered_tasks(request, params, admin=admin)
        if admin:
            tasks = tasks.select_related("owner")
        pagination = TaskPagination()
        rows = pagination.paginate(
            tasks.order_by("-created_at", "-id"), number=params["p"], size=params["page_size"]
        )
        return envelope(pagination.page_body([task_item(task, admin=admin) for task in rows]))

    def stats_response(self, request: Request, *, admin: bool) -> Response:
        params = validated(request, AdminStatsQuery if admin else StatsQuery)
        tasks = filtered_tasks(request, params, admin=admin)
        return envelope(
            task_stats(tasks, start=params.get("start_timestamp"), end=params.get("end_timestamp"))
        )


class SelfTaskList(GenerationView):
    @extend_schema(
        parameters=[TaskListQuery, NEW_API_USER],
        responses={200: GenerationListResponse, **errors(400)},
        summary="new-api: the caller's generation tasks",
        description="Send `Authorization: Bearer <token>` and `New-Api-User: <your user id>`.",
    )
    def get(self, request: Request) -> Response:
        return self.list_response(request, admin=False)


class AllTaskList(GenerationView):
    permission_classes = [IsAuthenticated, NewApiUserMatches, IsStaff]

    @extend_schema(
        parameters=[AdminTaskListQuery, NEW_API_USER],
        responses={200: GenerationListResponse, **errors(400, 403)},
        summary="new-api: every generation task (administrators)",
    )
    def get(self, request: Request) -> Response:
        return self.list_response(request, admin=True)


STATS_DESCRIPTION = (
    "What the task log page's dashboard shows for the tasks the filters select: unfinished "
    "tasks, tasks per hour (a range within today) or per day, and running/success/failure in "
    "all, image and video tasks. Hours and days are in the server's time zone (TIME_ZONE)."
)


class SelfTaskStats(GenerationView):
    @extend_schema(
        parameters=[StatsQuery, NEW_API_USER],
        responses={200: GenerationStatsResponse, **errors(400)},
        summary="new-api: statistics of the caller's generation tasks",
        description=STATS_DESCRIPTION,
    )
    def get(self, request: Request) -> Response:
        return self.stats_response(request, admin=False)


class AllTaskStats(GenerationView):
    permission_classes = [IsAuthenticated, NewApiUserMatches, IsStaff]

    @extend_schema(
        parameters=[AdminStatsQuery, NEW_API_USER],
        responses={200: GenerationStatsResponse, **errors(400, 403)},
        summary="new-api: statistics of every generation task (administrators)",
        description=STATS_DESCRIPTION,
    )
    def get(self, request: Request) -> Response:
        return self.stats_response(request, admin=True)


class SubmitTask(GenerationView):
    parser_classes = [SafeJSONParser]

    @extend_schema(
        parameters=[NEW_API_USER],
        request=SubmitRequest,
        responses={200: GenerationTaskResponse, **errors(400, 402)},
        summary="new-api: create and submit a generation task (charges quota)",
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
        user = authenticated_user(request)
        task = lifecycle.create_task(
            owner=user,
            actor=user,
            task_type=fields["task_type"],
            parameters=parameters,
            start=True,
            channel_id=fields.get("channel_id"),
        )
        return envelope(task_item(task, admin=False))
