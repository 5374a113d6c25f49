"""The data sync service's endpoints (``/api/sync/tasks`` ...): thin views over the lifecycle.

Each view validates its input, calls exactly one lifecycle function and answers in the envelope
of ``taskcenter.api.envelope``. Tasks are scoped to their owner (staff see all) and to the sync
kinds, so another user's task, or a task of another kind, is a 404.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from syncing.api.envelope import SyncView
from syncing.api.serializers import (
    KIND_OF,
    CreateSyncTaskInput,
    SyncTaskDoc,
    SyncTaskPageDoc,
    UpdateSyncTaskInput,
    sync_task_data,
)
from syncing.statistics import sync_statistics
from taskcenter import lifecycle
from taskcenter.api.authentication import authenticated_user
from taskcenter.api.envelope import TaskListPagination, ok
from taskcenter.api.envelope_schema import (
    PAGE_PARAM,
    SIZE_PARAM,
    bounded_int,
    enveloped,
    errors,
)
from taskcenter.api.pagination import _positive_int
from taskcenter.api.status_words import SYNC, statuses_for, words

DEFAULT_WINDOW_MINUTES = 5
MAX_WINDOW_MINUTES = 24 * 60

TASK = enveloped("SyncTaskEnvelope", SyncTaskDoc())
LIST_PARAMS = [
    PAGE_PARAM,
    SIZE_PARAM,
    OpenApiParameter("data_source_id", OpenApiTypes.STR),
    OpenApiParameter(
        "status", OpenApiTypes.STR, enum=[str(w) for w in words(SYNC)], description="A status word."
    ),
    OpenApiParameter("task_type", OpenApiTypes.STR, enum=sorted(KIND_OF)),
]


def _status_filter(request: Request) -> list[str] | None:
    raw = request.query_params.get("status")
    if raw is None or raw == "":
        return None
    try:
        return statuses_for(raw.strip().lower(), SYNC)
    except KeyError:
        allowed = ", ".join(str(word) for word in words(SYNC))
        raise ValidationError(
            {"status": [f"Unknown status {raw!r}. Allowed: {allowed}."]}
        ) from None


def _data_source_filter(request: Request) -> str | None:
    raw = request.query_params.get("data_source_id")
    if raw is None or raw == "":
        return None
    # PostgreSQL cannot even compare a string holding NUL; no stored id is longer than 64.
    if len(raw) > 64 or "\x00" in raw:
        raise ValidationError({"data_source_id": ["Must be at most 64 characters, without NUL."]})
    return raw


def _task_type_filter(request: Request) -> str | None:
    raw = request.query_params.get("task_type")
    if raw is None or raw == "":
        return None
    if raw not in KIND_OF:
        allowed = ", ".join(sorted(KIND_OF))
        raise ValidationError({"task_type": [f"Unknown task type {raw!r}. Allowed: {allowed}."]})
    return KIND_OF[raw]


class SyncTaskListView(SyncView):
    @extend_schema(
        operation_id="sync_tasks_list",
        parameters=LIST_PARAMS,
        responses={200: enveloped("SyncTaskPageEnvelope", SyncTaskPageDoc()), **errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        """GetSyncTasks: ``page``, ``size``, ``data_source_id``, ``status``, ``task_type``."""
        pagination = TaskListPagination()
        tasks = self.tasks()
        statuses = _status_filter(request)
        if statuses is not None:
            tasks = tasks.filter(status__in=statuses)
        data_source_id = _data_source_filter(request)
        if data_source_id:
            tasks = tasks.filter(data_source_id=data_source_id)
        kind = _task_type_filter(request)
        if kind:
            tasks = tasks.filter(task_type=kind)
        rows = pagination.paginate_queryset(tasks, request, self)
        return ok(pagination.page_body([sync_task_data(task) for task in rows]))

    @extend_schema(request=CreateSyncTaskInput, responses={201: TASK, **errors(400, 401)})
    def post(self, request: Request) -> Response:
        """CreateSyncTask: create the task and submit it to the engine (QUEUED)."""
        body = CreateSyncTaskInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        parameters = {
            **data["parameters"],
            "data_source_id": data["data_source_id"],
            "interface_id": data["interface_id"],
        }
        user = authenticated_user(request)
        task = lifecycle.create_task(
            owner=user,
            actor=user,
            task_type=KIND_OF[data["task_type"]],
            parameters=parameters,
            start=True,
            name=f"{data['task_type']} {data['data_source_id']}",
        )
        return self.task_response(task, 201)


class SyncTaskDetailView(SyncView):
    @extend_schema(responses={200: TASK, **errors(401, 404)})
    def get(self, request: Request, task_id: str) -> Response:
        """GetSyncTask, with live progress merged in while it runs."""
        return ok(sync_task_data(self.get_task(task_id), live=True))

    @extend_schema(request=UpdateSyncTaskInput, responses={200: TASK, **errors(400, 401, 404, 409)})
    def put(self, request: Request, task_id: str) -> Response:
        """UpdateSyncTask: change the config of a task no worker has picked up yet."""
        task = self.get_task(task_id)
        body = UpdateSyncTaskInput(data=request.data)
        body.is_valid(raise_exception=True)
        config = body.validated_data["config"]
        try:
            task = lifecycle.reconfigure_unclaimed_task(
                task, config=config, actor=authenticated_user(request)
            )
        except ValidationError as exc:
            # The kind names the merged "parameters"; the client sent "config".
            detail = (
                exc.detail.get("parameters", exc.detail)
                if isinstance(exc.detail, dict)
                else exc.detail
            )
            raise ValidationError({"config": detail}) from None
        return self.task_response(task)


class SyncTaskCancelView(SyncView):
    @extend_schema(request=None, responses={200: TASK, **errors(401, 404, 409)})
    def post(self, request: Request, task_id: str) -> Response:
        """CancelSyncTask: a running sync stops at its next page."""
        task = lifecycle.cancel_task(self.get_task(task_id), actor=authenticated_user(request))
        return self.task_response(task)


class SyncTaskRetryView(SyncView):
    @extend_schema(request=None, responses={200: TASK, **errors(401, 404, 409)})
    def post(self, request: Request, task_id: str) -> Response:
        """RetrySyncTask: a failed, cancelled or paused task is queued again (same id)."""
        task = lifecycle.retry_task(self.get_task(task_id), actor=authenticated_user(request))
        return self.task_response(task)


class SyncStatisticsView(SyncView):
    @extend_schema(
        parameters=[
            bounded_int(
                "window",
                1,
                MAX_WINDOW_MINUTES,
                DEFAULT_WINDOW_MINUTES,
                f"Minutes, 1-{MAX_WINDOW_MINUTES} (default {DEFAULT_WINDOW_MINUTES}).",
            ),
            OpenApiParameter("data_source_id", OpenApiTypes.STR),
        ],
        responses={
            200: enveloped("SyncStatisticsEnvelope", serializers.DictField()),
            **errors(400, 401),
        },
    )
    def get(self, request: Request) -> Response:
        """Stored counts by status and type, and live engine figures (``window`` minutes)."""
        window = _positive_int(request, "window", DEFAULT_WINDOW_MINUTES, MAX_WINDOW_MINUTES)
        tasks = self.tasks()
        data_source_id = _data_source_filter(request)
        if data_source_id:
            tasks = tasks.filter(data_source_id=data_source_id)
        return ok(sync_statistics(tasks, window_minutes=window))
