"""Thin views: validate input, call exactly one ``taskcenter.lifecycle`` function, serialize.

Lifecycle refusals (``InvalidTransition``) become 409 ``{"detail", "status"}`` in
``exceptions.api_exception_handler``. A body that fails validation (an unknown kind, a kind's
parameters included) is the XGet scraper API's 422 in FastAPI's shape (``body_errors``); bad
query parameters and headers stay 400. Every queryset is scoped to the requesting user (staff
see all) in ``get_queryset``, so another user's task is a 404 on every detail route and action;
ids the routes do not take are the same 404 (``unknown_ids``).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from .. import lifecycle
from ..models import Task, TaskExecution
from . import idempotency, owners, schema  # noqa: F401  (schema registers OpenAPI extensions)
from .authentication import authenticated_user
from .body_errors import BodyJSONParser, body_errors, xget_exception_handler
from .filters import TaskExecutionFilter, TaskFilter
from .serializers import (
    BATCH_MAX,
    BadRequestResponse,
    CancelInput,
    ConflictResponse,
    DeletedResponse,
    ErrorResponse,
    StatisticsResponse,
    TaskCloneInput,
    TaskCreateInput,
    TaskEventSerializer,
    TaskExecutionSerializer,
    TaskSerializer,
    TaskUpdateInput,
    UnprocessableResponse,
    ValidationErrorResponse,
)
from .statistics import TALLY_FILTERS, tallied_statistics, task_statistics

ID_PATTERN = "[0-9]{1,18}"  # longer ids would overflow the integer column: 404, not 500

BAD_REQUEST = OpenApiResponse(BadRequestResponse, "Invalid input; `loc` names the field.")
UNREADABLE = OpenApiResponse(
    ErrorResponse, "The body cannot be read: JSON nested too deeply, or not text."
)
BATCH_BAD_REQUEST = OpenApiResponse(
    BadRequestResponse, "An invalid `start` (named in `loc`), or a body that cannot be read."
)
EDIT_REFUSED = OpenApiResponse(
    BadRequestResponse,
    "The body cannot be read, or the task's kind is no longer known (a demo kind turned off).",
)
UNPROCESSABLE = OpenApiResponse(
    ValidationErrorResponse,
    "The body failed validation, in FastAPI's shape: `loc` starts with `body`.",
)
NOT_FOUND = OpenApiResponse(ErrorResponse, "No such task, or not yours.")
CONFLICT = OpenApiResponse(ConflictResponse, "Not allowed in the task's current status.")
START_PARAM = OpenApiParameter(
    "start", OpenApiTypes.BOOL, description="Queue at once; same as `start: true` in the body."
)


def _query_bool(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValidationError({name: ["Must be true or false."]})


def _create_kwargs(data: dict, *, start: bool | None = None) -> dict[str, Any]:
    fields = dict(data)
    if start is not None:
        fields["start"] = fields.get("start", False) or start
    return fields


@extend_schema_view(
    list=extend_schema(responses={200: TaskSerializer(many=True), 400: BAD_REQUEST}),
    retrieve=extend_schema(responses={200: TaskSerializer, 404: NOT_FOUND}),
)
class TaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[Task]):
    """Tasks of the requesting user (staff: everyone's)."""

    queryset = Task.objects.none()  # the schema generator's model hint; see get_queryset
    serializer_class = TaskSerializer
    filterset_class = TaskFilter
    lookup_value_regex = ID_PATTERN
    parser_classes = [BodyJSONParser, FormParser, MultiPartParser]

    def get_exception_handler(self) -> Any:
        return xget_exception_handler

    def get_queryset(self) -> QuerySet[Task]:
        if getattr(self, "swagger_fake_view", False):
            return Task.objects.none()
        return Task.objects.visible_to(self.request.user).select_related("owner")

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        # Only the browsable API asks for these: it renders its HTML forms from them.
        if self.action == "create":
            return TaskCreateInput
        if self.action in {"update", "partial_update"}:
            return TaskUpdateInput
        return TaskSerializer

    def get_object(self) -> Task:
        task = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if task is None:
            raise NotFound("Task not found")
        return task

    def _task_response(self, task: Task, code: int = status.HTTP_200_OK) -> Response:
        """The task as the call left it, not read again: after the commit a worker woken by it
        may already have claimed it, and the answer would depend on that race."""
        return Response(TaskSerializer(task, context=self.get_serializer_context()).data, code)

    @extend_schema(
        request=TaskCreateInput,
        parameters=[
            START_PARAM,
            OpenApiParameter(
                "Idempotency-Key",
                {"type": "string", "pattern": "^[!-~]{1,255}$"},
                OpenApiParameter.HEADER,
                description="Retrying with the same key and body returns the first task (200); "
                "the same key with another body is a 422.",
            ),
        ],
        responses={
            201: TaskSerializer,
            200: OpenApiResponse(TaskSerializer, "Replay of an earlier Idempotency-Key."),
            400: BAD_REQUEST,
            422: OpenApiResponse(UnprocessableResponse, "Invalid body, or a reused key."),
        },
    )
    def create(self, request: Request) -> Response:
        """Create a task, PENDING (or QUEUED with `start`); staff may create it for the user
        `user_id` names, who then owns it and pays its quota."""
        start = _query_bool(request, "start")
        key = idempotency.key_from(request)
        user = authenticated_user(request)
        data = TaskCreateInput(data=request.data)
        with body_errors(data, request.data):
            data.is_valid(raise_exception=True)
            fields = _create_kwargs(data.validated_data, start=start)
            owner = owners.task_owner(request, fields.pop("user_id", None))
            if key is None:
                task = lifecycle.create_task(owner=owner, actor=user, **fields)
                return self._task_response(task, status.HTTP_201_CREATED)
            digest = idempotency.request_hash(request, start)
            task, created = idempotency.create_once(request, key, digest, fields, owner=owner)
        response = self._task_response(task, status.HTTP_201_CREATED if created else 200)
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        request=TaskUpdateInput,
        responses={
            200: TaskSerializer,
            400: EDIT_REFUSED,
            404: NOT_FOUND,
            409: CONFLICT,
            422: UNPROCESSABLE,
        },
    )
    def update(self, request: Request, pk: str) -> Response:
        """Change the fields sent (PUT and PATCH alike); status and history are read-only."""
        task = self.get_object()
        data = TaskUpdateInput(data=request.data, partial=True)
        with body_errors(data, request.data, task_type=task.task_type):
            data.is_valid(raise_exception=True)
            if not data.validated_data:
                return self._task_response(task)
            changes = data.validated_data
            task = lifecycle.update_task(task, actor=authenticated_user(request), **changes)
        return self._task_response(task)

    @extend_schema(
        request=TaskUpdateInput,
        responses={
            200: TaskSerializer,
            400: EDIT_REFUSED,
            404: NOT_FOUND,
            409: CONFLICT,
            422: UNPROCESSABLE,
        },
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        """Change the fields sent; status and history are read-only."""
        return self.update(request, pk)

    @extend_schema(responses={200: DeletedResponse, 404: NOT_FOUND, 409: CONFLICT})
    def destroy(self, request: Request, pk: str) -> Response:
        """Delete a task with its executions, events and results (cancel a running one first)."""
        lifecycle.delete_task(self.get_object(), actor=authenticated_user(request))
        return Response({"message": "Task and related results deleted successfully"})

    @extend_schema(
        request={
            "application/json": {
                "type": "array",
                "minItems": 1,
                "maxItems": BATCH_MAX,
                "items": {"$ref": "#/components/schemas/TaskCreateInputRequest"},
            }
        },
        parameters=[START_PARAM],
        responses={
            200: TaskSerializer(many=True),
            400: BATCH_BAD_REQUEST,
            422: UNPROCESSABLE,
        },
        filters=False,  # a create: the list filters would be documented yet ignored
    )
    @action(detail=False, methods=["post"], parser_classes=[BodyJSONParser], pagination_class=None)
    def batch(self, request: Request) -> Response:
        """Create up to 100 tasks, all or nothing; items share a generated batch_id. Staff
        may give each item the `user_id` of the user it is for. `?start=true` queues every item,
        as `start: true` in each would."""
        start = _query_bool(request, "start")
        # DRF passes max_length and min_length to the list serializer that many=True makes;
        # the stubs' BaseSerializer.__init__ does not list them.
        items = TaskCreateInput(many=True, data=request.data, max_length=BATCH_MAX, min_length=1)  # type: ignore[call-arg]
        user = authenticated_user(request)
        batch_id = uuid.uuid4().hex
        # Errors are keyed by the item's index, which the error envelopes put in `loc`; DRF
        # takes any key there, the stubs only str.
        with body_errors(items, request.data):
            items.is_valid(raise_exception=True)
            rows = [_create_kwargs(fields, start=start) for fields in items.validated_data]
            refused: dict[int, Any] = {}
            for index, fields in enumerate(rows):
                try:
                    fields["owner"] = owners.task_owner(request, fields.pop("user_id", None))
                except ValidationError as exc:
                    refused[index] = exc.detail
                fields["batch_id"] = fields.get("batch_id") or batch_id
            if refused:
                raise ValidationError(refused)  # type: ignore[arg-type]
            # One transaction; an unknown kind or bad parameters of any item refuse them all,
            # each named by its index.
            tasks = lifecycle.create_tasks(rows, actor=user)
        # The tasks as written, their owners attached: the same fields a query would read.
        return Response(TaskSerializer(tasks, many=True).data)

    def _transition(self, request: Request, move: Any, **kwargs: Any) -> Response:
        task = self.get_object()
        moved = move(task, actor=authenticated_user(request), **kwargs)
        moved.owner = task.owner  # joined already: no second query for it
        return self._task_response(moved)

    @extend_schema(request=None, responses={200: TaskSerializer, 404: NOT_FOUND, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        """PENDING or STOPPED -> QUEUED."""
        return self._transition(request, lifecycle.start_task)

    @extend_schema(request=None, responses={200: TaskSerializer, 404: NOT_FOUND, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str) -> Response:
        """QUEUED or RUNNING -> STOPPED; a running handler stops at its next checkpoint."""
        return self._transition(request, lifecycle.stop_task)

    @extend_schema(
        request=CancelInput,
        responses={
            200: TaskSerializer,
            400: UNREADABLE,
            404: NOT_FOUND,
            409: CONFLICT,
            422: UNPROCESSABLE,
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """PENDING, QUEUED, RUNNING or STOPPED -> CANCELLED (terminal)."""
        data = CancelInput(data=request.data or {})
        with body_errors(data, request.data):
            data.is_valid(raise_exception=True)
        return self._transition(
            request, lifecycle.cancel_task, reason=data.validated_data["reason"]
        )

    @extend_schema(request=None, responses={200: TaskSerializer, 404: NOT_FOUND, 409: CONFLICT})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        """FAILED, CANCELLED or STOPPED -> QUEUED with fresh attempts."""
        return self._transition(request, lifecycle.retry_task)

    @extend_schema(
        request=TaskCloneInput,
        parameters=[START_PARAM],
        responses={201: TaskSerializer, 400: BAD_REQUEST, 404: NOT_FOUND, 422: UNPROCESSABLE},
    )
    @action(detail=True, methods=["post"])
    def clone(self, request: Request, pk: str) -> Response:
        """A new task from this one's type and parameters; body fields override them."""
        source = self.get_object()
        start = _query_bool(request, "start")
        data = TaskCloneInput(data=request.data or {})
        with body_errors(data, request.data, task_type=source.task_type):
            data.is_valid(raise_exception=True)
            task = self._clone(request, source, dict(data.validated_data), start=start)
        return self._task_response(task, status.HTTP_201_CREATED)

    def _clone(self, request: Request, source: Task, edits: dict, *, start: bool | None) -> Task:
        parameters = {**source.parameters, **(edits.pop("parameters", None) or {})}
        fields = {
            "name": source.name,
            "description": source.description,
            "account_id": source.account_id,
            "proxy_id": source.proxy_id,
            "priority": source.priority,
            "max_attempts": source.max_attempts,
            "platform": source.platform,
            "action": source.action,
            **edits,
        }
        user = authenticated_user(request)
        return lifecycle.create_task(
            owner=user,
            actor=user,
            task_type=source.task_type,
            parameters=parameters,
            **_create_kwargs(fields, start=start),
        )

    @extend_schema(
        responses={200: TaskEventSerializer(many=True), 400: BAD_REQUEST, 404: NOT_FOUND}
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def events(self, request: Request, pk: str) -> Response:
        """The task's audit trail, oldest first."""
        task = self.get_object()
        # The stubs tie paginate_queryset to the viewset's model; DRF pages any queryset.
        page = self.paginate_queryset(task.events.order_by("at", "id"))  # type: ignore[arg-type]
        return self.get_paginated_response(TaskEventSerializer(page, many=True).data)

    @extend_schema(responses={200: StatisticsResponse, 400: BAD_REQUEST})
    @action(detail=False, methods=["get"], pagination_class=None)
    def statistics(self, request: Request) -> Response:
        """Counts, success rate and durations of the tasks the list filters select.

        Filtered only by status, type, platform or user, the figures come from running totals
        and take milliseconds at any table size; durations are then ``approximate`` (within 9%).
        A time window or any other filter counts the matching rows.
        """
        tasks = self.filter_queryset(self.get_queryset())  # validates the filters: 400 first
        used = {key for key, value in request.query_params.items() if value != ""} - {"format"}
        if not used <= TALLY_FILTERS:
            return Response(task_statistics(tasks))
        filters = TaskFilter(request.query_params, queryset=tasks, request=request)
        filters.is_valid()
        values = filters.form.cleaned_data
        user = authenticated_user(request)
        owner_ids = None if user.is_staff else [user.pk]
        if values.get("user_id") is not None:
            owner_ids = [values["user_id"]] if owner_ids in (None, [values["user_id"]]) else []
        return Response(
            tallied_statistics(
                owner_ids=owner_ids,
                statuses=values.get("status") or None,
                task_types=values.get("task_type") or None,
                platforms=values.get("platform") or None,
            )
        )


@extend_schema_view(
    list=extend_schema(responses={200: TaskExecutionSerializer(many=True), 400: BAD_REQUEST}),
    retrieve=extend_schema(responses={200: TaskExecutionSerializer, 404: NOT_FOUND}),
)
class TaskExecutionViewSet(viewsets.ReadOnlyModelViewSet[TaskExecution]):
    """Attempts at running the requesting user's tasks (staff: everyone's)."""

    queryset = TaskExecution.objects.none()
    serializer_class = TaskExecutionSerializer
    filterset_class = TaskExecutionFilter
    lookup_value_regex = ID_PATTERN

    def get_queryset(self) -> QuerySet[TaskExecution]:
        if getattr(self, "swagger_fake_view", False):
            return TaskExecution.objects.none()
        return TaskExecution.objects.visible_to(self.request.user)

    def get_object(self) -> TaskExecution:
        execution = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if execution is None:
            raise NotFound("Execution not found")
        return execution

    @extend_schema(
        filters=False,
        responses={200: TaskExecutionSerializer(many=True), 404: NOT_FOUND},
    )
    @action(
        detail=False,
        methods=["get"],
        url_path=f"task/(?P<task_id>{ID_PATTERN})",
        filterset_class=None,
        pagination_class=None,
    )
    def for_task(self, request: Request, task_id: str) -> Response:
        """Every attempt of one task, newest first."""
        if not Task.objects.visible_to(request.user).filter(pk=task_id).exists():
            raise NotFound("Task not found")
        executions = self.get_queryset().filter(task_id=task_id).order_by("-attempt")
        return Response(self.get_serializer(executions, many=True).data)
