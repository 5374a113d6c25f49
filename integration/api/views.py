"""The integration tasks table's endpoints: list, filter and create tasks as its rows.

``/api/integration/tasks`` shows the tasks that carry an ``integration_id``: one truth with the
canonical API and the admin, where the same tasks appear with their canonical status. Thin views:
validate, call ``lifecycle.create_task`` once, answer in ``taskcenter.api.envelope``'s envelope.
Users see their own tasks; staff see everyone's and may filter by ``user_id``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from integration.api.envelope import IntegrationView
from integration.api.serializers import (
    BIGINT_MAX,
    CreateIntegrationTaskInput,
    IntegrationTaskDoc,
    default_kind,
    integration_task_data,
)
from taskcenter import lifecycle
from taskcenter.api.authentication import authenticated_user
from taskcenter.api.envelope import TaskListPagination, ok
from taskcenter.api.envelope_schema import PAGE_PARAM, SIZE_PARAM, enveloped, errors
from taskcenter.api.status_words import INTEGRATION, statuses_for, words

ID_FILTERS = ("integration_id", "client_id", "template_id", "account_id", "user_id")

ROW = IntegrationTaskDoc()
PAGE = inline_serializer(
    "IntegrationTaskPage",
    {
        "tasks": IntegrationTaskDoc(many=True),
        "pagination": inline_serializer(
            "IntegrationPagination",
            {
                "page": serializers.IntegerField(),
                "size": serializers.IntegerField(),
                "total": serializers.IntegerField(),
                "total_pages": serializers.IntegerField(),
            },
        ),
    },
)


def _bigint_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > BIGINT_MAX:
        raise ValidationError({name: ["Must be a whole number from 0 to 2^63-1."]})
    return int(raw)


def _status_param(request: Request) -> list[str] | None:
    raw = request.query_params.get("status")
    if raw is None or raw == "":
        return None
    if raw.isascii() and raw.isdigit() and len(raw) <= 3:
        try:
            return statuses_for(int(raw), INTEGRATION)
        except KeyError:
            pass
    allowed = ", ".join(str(word) for word in words(INTEGRATION))
    raise ValidationError({"status": [f"Unknown status {raw!r}. Allowed: {allowed}."]})


class IntegrationTaskListView(IntegrationView):
    @extend_schema(
        operation_id="integration_tasks_list",
        parameters=[
            PAGE_PARAM,
            SIZE_PARAM,
            *[
                OpenApiParameter(name, {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX})
                for name in ID_FILTERS
            ],
            OpenApiParameter("status", OpenApiTypes.INT, enum=[0, 1, 2, 3]),
        ],
        responses={200: enveloped("IntegrationTaskPageEnvelope", PAGE), **errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        """Tasks as the table's rows, newest first, filtered by its indexed columns."""
        pagination = TaskListPagination()
        tasks = self.tasks()
        for name in ID_FILTERS:
            value = _bigint_param(request, name)
            if value is None:
                continue
            if name == "user_id":
                tasks = tasks.filter(owner_id=value)
            elif name == "account_id":
                tasks = tasks.filter(account_id=str(value))
            else:
                tasks = tasks.filter(**{name: value})
        statuses = _status_param(request)
        if statuses is not None:
            tasks = tasks.filter(status__in=statuses)
        rows = pagination.paginate_queryset(tasks, request, self)
        return ok(pagination.page_body([integration_task_data(task) for task in rows]))

    @extend_schema(
        request=CreateIntegrationTaskInput,
        responses={201: enveloped("IntegrationTaskEnvelope", ROW), **errors(400, 401)},
    )
    def post(self, request: Request) -> Response:
        """Create a task from a row (status 0), queued at once."""
        body = CreateIntegrationTaskInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        user = authenticated_user(request)
        owner = self._owner(user, data.get("user_id"))
        try:
            task = lifecycle.create_task(
                owner=owner,
                actor=user,
                task_type=data.get("task_type") or default_kind(),
                parameters=data["argument"],
                start=True,
                name=f"integration {data['integration_id']} template {data['template_id']}",
                integration_id=data["integration_id"],
                client_id=data["client_id"],
                template_id=data["template_id"],
                account_id=str(data["account_id"]),
            )
        except ValidationError as exc:
            # The kind checks "parameters"; this table calls them "argument".
            detail: Any = exc.detail
            if isinstance(detail, dict):
                detail = detail.get("parameters", detail)
            raise ValidationError({"argument": detail}) from None
        # The task as created, not read again: a worker may already have claimed it.
        return ok(integration_task_data(task), 201)

    @staticmethod
    def _owner(user: User, user_id: int | None) -> User:
        if user_id is None or user_id == user.pk:
            return user
        if not user.is_staff:
            raise ValidationError({"user_id": ["Only staff may create tasks for another user."]})
        owner = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        if owner is None:
            raise ValidationError({"user_id": ["No such user."]})
        return owner


class IntegrationTaskDetailView(IntegrationView):
    @extend_schema(responses={200: enveloped("IntegrationTaskDetail", ROW), **errors(401, 404)})
    def get(self, request: Request, task_id: str) -> Response:
        """One row."""
        pk = (
            int(task_id) if task_id.isascii() and task_id.isdigit() and len(task_id) <= 18 else None
        )
        task = self.tasks().filter(pk=pk).first() if pk is not None else None
        if task is None:
            raise NotFound(f"Task {task_id} not found")
        return ok(integration_task_data(task))
