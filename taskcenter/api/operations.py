"""Staff-only views of the machinery: the worker processes (``/api/v1/workers``) and the queues
(``/api/v1/queues``). Anyone else gets 403, as on every administrators-only route; an
anonymous caller 401.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from ..execution import queues, worker_registry
from ..models import WaitingFor, WorkerProcess, WorkerState
from .serializers import BadRequestResponse, ErrorResponse

FORBIDDEN = OpenApiResponse(ErrorResponse, "Administrators only.")
BAD_REQUEST = OpenApiResponse(BadRequestResponse, "Invalid query parameter; named in the answer.")


class StaffOnly(IsAdminUser):
    message = "Administrators only."


class WorkerProcessSerializer(serializers.ModelSerializer):
    state = serializers.SerializerMethodField(
        help_text="alive (beating), dead (silent for a lease, never stopped) or stopped."
    )
    lost_attempts = serializers.SerializerMethodField(
        help_text="Its attempts the reaper recovered (executions LOST)."
    )
    running_attempts = serializers.ListField(
        child=serializers.IntegerField(), help_text="Ids of the task executions it runs now."
    )
    queues = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = WorkerProcess
        fields = [
            "id",
            "name",
            "state",
            "host",
            "pid",
            "engine",
            "queues",
            "concurrency",
            "busy",
            "running_attempts",
            "attempts_run",
            "attempts_deferred",
            "lost_attempts",
            "outcomes",
            "version",
            "started_at",
            "last_seen_at",
            "stopped_at",
        ]
        read_only_fields = fields

    def get_state(self, worker: WorkerProcess) -> str:
        return worker.state(silent_since=self.context["silent_since"])

    def get_lost_attempts(self, worker: WorkerProcess) -> int:
        return worker_registry.lost_attempts(worker).count()


class QueueDepthSerializer(serializers.Serializer):
    queue = serializers.CharField(help_text="The engine queue.")
    kind = serializers.CharField(help_text="The task type.")
    platform = serializers.CharField()
    account = serializers.CharField(help_text="The task's account id (empty: none).")
    waiting_for = serializers.ChoiceField(
        choices=["worker", WaitingFor.PLATFORM.value, WaitingFor.ACCOUNT.value],
        help_text="worker: QUEUED; platform: polling a remote job (poll-again); account: its "
        "platform account is busy or resting.",
    )
    count = serializers.IntegerField()
    oldest_age_seconds = serializers.FloatField(help_text="How long the oldest one has waited.")


STATE_PARAM = OpenApiParameter(
    "state", OpenApiTypes.STR, enum=[s.value for s in WorkerState], description="Only these."
)


class WorkerProcessViewSet(viewsets.ReadOnlyModelViewSet[WorkerProcess]):
    """Worker processes: alive, dead and stopped (kept for a week), newest first."""

    queryset = WorkerProcess.objects.none()
    serializer_class = WorkerProcessSerializer
    permission_classes = [IsAuthenticated, StaffOnly]
    filter_backends: list[Any] = []
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"

    def _silent_since(self) -> datetime:
        if not hasattr(self, "_silent"):
            self._silent = worker_registry.silent_since()
        return self._silent

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "silent_since": self._silent_since()}

    def get_queryset(self) -> QuerySet[WorkerProcess]:
        if getattr(self, "swagger_fake_view", False):
            return WorkerProcess.objects.none()
        workers = WorkerProcess.objects.order_by("-started_at", "id")
        state = self.request.query_params.get("state")
        if state in (None, ""):
            return workers
        silent = self._silent_since()
        if state == WorkerState.ALIVE:
            return workers.alive(silent_since=silent)
        if state == WorkerState.DEAD:
            return workers.dead(silent_since=silent)
        if state == WorkerState.STOPPED:
            return workers.stopped()
        raise ValidationError({"state": ["Must be one of alive, dead, stopped."]})

    def get_object(self) -> WorkerProcess:
        try:
            pk = uuid.UUID(self.kwargs["pk"])
        except ValueError:  # hex digits and dashes that make no uuid ("-" * 36)
            raise NotFound("Worker not found") from None
        worker = self.get_queryset().filter(pk=pk).first()
        if worker is None:
            raise NotFound("Worker not found")
        return worker

    @extend_schema(
        parameters=[STATE_PARAM],
        responses={
            200: WorkerProcessSerializer(many=True),
            400: BAD_REQUEST,
            403: FORBIDDEN,
        },
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        responses={
            200: WorkerProcessSerializer,
            403: FORBIDDEN,
            404: OpenApiResponse(ErrorResponse, "No such worker."),
        }
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().retrieve(request, *args, **kwargs)


class QueueViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[Any]):
    """Tasks waiting now, by queue, kind, platform, account and what they wait for: a worker
    (QUEUED), a remote platform (poll-again) or a busy account; the largest groups first."""

    serializer_class = QueueDepthSerializer
    permission_classes = [IsAuthenticated, StaffOnly]
    filter_backends: list[Any] = []

    @extend_schema(
        responses={200: QueueDepthSerializer(many=True), 400: BAD_REQUEST, 403: FORBIDDEN}
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rows = queues.depth_rows()
        # The paginators page any sequence; their signature says QuerySet.
        page = self.paginate_queryset(cast(QuerySet, rows))
        if page is None:
            return Response(QueueDepthSerializer(rows, many=True).data)
        return self.get_paginated_response(QueueDepthSerializer(page, many=True).data)
