"""The canonical ``/api/v1/publish-records``: the same records with canonical statuses, the
standard ``{items, total, page, size, pages}`` pages, and ``retry`` / ``cancel`` actions.

Scoped like the tasks API (a user's own records; staff all; another user's record is a 404);
lifecycle refusals are 409 ``{"detail", "status"}`` through the API's exception handler.
"""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from publishing.models import PublishTaskRecord
from publishing.platforms import PlatformType
from taskcenter import lifecycle
from taskcenter.api.filters import CharInFilter, InFilter, Int64Filter, TimeFilter
from taskcenter.api.serializers import BadRequestResponse, ConflictResponse, ErrorResponse
from taskcenter.api.views import ID_PATTERN
from taskcenter.models import Status

BAD_REQUEST = OpenApiResponse(BadRequestResponse, "Invalid input; `loc` names the field.")
NOT_FOUND = OpenApiResponse(ErrorResponse, "No such record, or not yours.")
CONFLICT = OpenApiResponse(ConflictResponse, "Not allowed in the record's current status.")


class PublishTaskRecordSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(source="task.status", choices=Status.choices, read_only=True)
    progress = serializers.IntegerField(source="task.progress", read_only=True)
    error_message = serializers.CharField(source="task.error_message", read_only=True)
    remote_id = serializers.CharField(source="task.external_id", read_only=True)
    attempts = serializers.IntegerField(source="task.attempts", read_only=True)
    updated_at = serializers.DateTimeField(source="task.updated_at", read_only=True)
    created_at = serializers.DateTimeField(source="create_time", read_only=True)
    task_id = serializers.IntegerField(read_only=True, help_text="The Task that executes it.")
    file_id = serializers.IntegerField(read_only=True, allow_null=True)
    account_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = PublishTaskRecord
        fields = [
            "id",
            "batch_id",
            "task_id",
            "filename",
            "file_id",
            "account_id",
            "account_name",
            "platform_name",
            "platform_type",
            "status",
            "progress",
            "attempts",
            "error_message",
            "remote_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PublishTaskRecordFilter(django_filters.FilterSet):
    status = InFilter(
        field_name="task__status",
        choices=Status.choices,
        help_text="One or more canonical statuses, comma-separated.",
    )
    platform_name = CharInFilter(help_text="douyin, tencent, ... (comma-separated).")
    platform_type = django_filters.TypedChoiceFilter(choices=PlatformType.choices, coerce=int)
    account_id = Int64Filter(field_name="account_id")
    account_name = django_filters.CharFilter(lookup_expr="icontains")
    filename = django_filters.CharFilter(lookup_expr="icontains")
    batch_id = django_filters.CharFilter(help_text="The batch (social-auto-upload's task_id).")
    created_after = TimeFilter(field_name="create_time", lookup_expr="gte")
    created_before = TimeFilter(field_name="create_time", lookup_expr="lt")

    class Meta:
        model = PublishTaskRecord
        fields: list[str] = []


@extend_schema_view(
    list=extend_schema(responses={200: PublishTaskRecordSerializer(many=True), 400: BAD_REQUEST}),
    retrieve=extend_schema(responses={200: PublishTaskRecordSerializer, 404: NOT_FOUND}),
)
class PublishTaskRecordViewSet(viewsets.ReadOnlyModelViewSet[PublishTaskRecord]):
    """Publish records (one file to one account) of the requesting user (staff: everyone's)."""

    queryset = PublishTaskRecord.objects.none()
    serializer_class = PublishTaskRecordSerializer
    filterset_class = PublishTaskRecordFilter
    lookup_value_regex = ID_PATTERN

    def get_queryset(self) -> QuerySet[PublishTaskRecord]:
        if getattr(self, "swagger_fake_view", False):
            return PublishTaskRecord.objects.none()
        records = PublishTaskRecord.objects.visible_to(self.request.user)
        return records.select_related("task").order_by("-create_time", "-id")

    def get_object(self) -> PublishTaskRecord:
        record = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        if record is None:
            raise NotFound("Publish record not found")
        return record

    def _transition(self, request: Request, move) -> Response:
        record = self.get_object()
        # The task as the action left it, not read again after the commit: a worker woken by
        # it may already have claimed it, and the answer would depend on that race.
        record.task = move(record.task_id, actor=request.user)
        return Response(self.get_serializer(record).data)

    @extend_schema(
        request=None,
        responses={200: PublishTaskRecordSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        """FAILED, CANCELLED or STOPPED -> QUEUED; an uploaded video is not uploaded again."""
        return self._transition(request, lifecycle.retry_task)

    @extend_schema(
        request=None,
        responses={200: PublishTaskRecordSerializer, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """PENDING, QUEUED, RUNNING or STOPPED -> CANCELLED."""
        return self._transition(request, lifecycle.cancel_task)
