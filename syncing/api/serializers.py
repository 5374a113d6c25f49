"""The data sync service's request bodies and its SyncTask as JSON.

A sync task is a Task of kind ``sync.full_sync`` or ``sync.incremental_sync``; its id is shown as
``"task_<n>"`` (the data sync service's form) and paths accept ``task_<n>`` or plain ``<n>``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from syncing.sync import DATA_TYPE, FULL_KIND, INCREMENTAL_KIND, results_model
from syncing.task_kinds import validate_source_id
from taskcenter.api.envelope import StrictCharField
from taskcenter.api.serializers import SafeJSONField
from taskcenter.api.status_words import SYNC, word_for
from taskcenter.models import ExecutionStatus, Status, Task, TaskExecution

ID_PREFIX = "task_"
# The data sync service's task types and the kinds that run them.
KIND_OF = {"full_sync": FULL_KIND, "incremental_sync": INCREMENTAL_KIND}
TYPE_OF = {kind: name for name, kind in KIND_OF.items()}
# Set once, at creation: a task is about one data source and one interface.
FIXED_KEYS = frozenset({"data_source_id", "interface_id"})


def public_id(task_id: int) -> str:
    return f"{ID_PREFIX}{task_id}"


ID_FORM = re.compile(r"(?:task_)?([0-9]{1,18})")


def parse_id(raw: str) -> int | None:
    """``task_12`` or ``12`` -> 12; None for anything else (longer numbers would overflow)."""
    match = ID_FORM.fullmatch(raw)
    return int(match.group(1)) if match else None


def _time(value: datetime | None) -> str | None:
    # RFC 3339 in UTC, as Go's time.Time marshals it.
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@extend_schema_field(
    {
        "type": "object",
        # These two are set at the top level of a sync task, never inside its parameters.
        "not": {"anyOf": [{"required": [key]} for key in sorted(FIXED_KEYS)]},
    }
)
class JSONObjectField(SafeJSONField):
    """A JSON object (Go's map[string]interface{}) whose content both databases can store."""

    default_error_messages = {"not_object": "Must be a JSON object."}

    def to_internal_value(self, data: Any) -> dict:
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_object")
        return value


def _no_fixed_keys(value: dict, name: str) -> None:
    clash = sorted(FIXED_KEYS & set(value))
    if clash:
        raise serializers.ValidationError(
            {name: {key: [f"Set {key} at the top level, not in {name}."] for key in clash}}
        )


# validate_source_id as a pattern: 1-64 of these characters (maxLength), not only dots.
SOURCE_ID_PATTERN = "^[A-Za-z0-9_.:-]{0,63}[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,63}$"


@extend_schema_field({"type": "string", "pattern": SOURCE_ID_PATTERN, "maxLength": 64})
class IdentifierField(StrictCharField):
    pass


@extend_schema_field({"type": "string", "enum": sorted(KIND_OF)})
class SyncKindField(StrictCharField):
    pass


class CreateSyncTaskInput(serializers.Serializer):
    """CreateSyncTaskRequest: data_source_id and task_type required."""

    data_source_id = IdentifierField(max_length=64)
    task_type = SyncKindField(max_length=50, help_text="full_sync or incremental_sync.")
    interface_id = StrictCharField(max_length=64, required=False, allow_blank=True, default="")
    parameters = JSONObjectField(required=False, default=dict)

    def validate_data_source_id(self, value: str) -> str:
        return validate_source_id(value)

    def validate_task_type(self, value: str) -> str:
        # A plain string and this check rather than a ChoiceField: the schema's enum names of
        # "task_type" belong to the canonical API.
        if value not in KIND_OF:
            allowed = ", ".join(sorted(KIND_OF))
            raise serializers.ValidationError(f"Unknown task type {value!r}. Allowed: {allowed}.")
        return value

    def validate(self, attrs: dict) -> dict:
        _no_fixed_keys(attrs["parameters"], "parameters")
        return attrs


class UpdateSyncTaskInput(serializers.Serializer):
    """UpdateSyncTaskRequest: the keys of ``config`` replace those of the task's parameters."""

    config = JSONObjectField()

    def validate(self, attrs: dict) -> dict:
        _no_fixed_keys(attrs["config"], "config")
        return attrs


def _records_so_far(task: Task) -> int:
    return results_model()._default_manager.filter(task_id=task.pk, data_type=DATA_TYPE).count()


def live_progress(task: Task) -> dict[str, Any] | None:
    """What the engine knows of a running task now: its current attempt and how fast it goes."""
    if task.status != Status.RUNNING:
        return None
    execution = (
        TaskExecution.objects.filter(task_id=task.pk, attempt=task.total_attempts)
        .filter(status__in=(ExecutionStatus.RUNNING, ExecutionStatus.WAITING))
        .first()
    )
    now = timezone.now()
    live: dict[str, Any] = {
        "progress": task.progress,
        "message": task.progress_message,
        "records_so_far": _records_so_far(task),
        "attempt": task.total_attempts,
    }
    if execution is None:
        return {**live, "records_per_second": None, "worker_id": None, "heartbeat_at": None}
    elapsed = (now - execution.started_at).total_seconds()
    rate = execution.result_count / elapsed if elapsed > 0 else None
    return {
        **live,
        "records_this_attempt": execution.result_count,
        "records_per_second": round(rate, 3) if rate is not None else None,
        "worker_id": execution.worker_id,
        "heartbeat_at": _time(execution.heartbeat_at),
        "lease_expires_at": _time(execution.lease_expires_at),
        "attempt_started_at": _time(execution.started_at),
    }


def sync_task_data(task: Task, *, live: bool = False) -> dict[str, Any]:
    """One SyncTask; with ``live``, a running task's current attempt is merged in."""
    params = dict(task.parameters or {})
    data_source_id = task.data_source_id or params.get("data_source_id", "")
    interface_id = params.pop("interface_id", "")
    params.pop("data_source_id", None)
    result = task.result if isinstance(task.result, dict) else None
    data: dict[str, Any] = {
        "id": public_id(task.pk),
        "data_source_id": data_source_id,
        "interface_id": interface_id,
        "task_type": TYPE_OF.get(task.task_type, task.task_type),
        "status": word_for(task.status, SYNC),
        "parameters": params,
        "progress": task.progress,
        "progress_message": task.progress_message,
        "records_synced": result.get("records") if result else None,
        "watermark": result.get("watermark") if result else None,
        "result": task.result,
        "error_message": task.error_message,
        "attempts": task.attempts,
        "max_attempts": task.max_attempts,
        "created_at": _time(task.created_at),
        "updated_at": _time(task.updated_at),
        "submitted_at": _time(task.submitted_at),
        "started_at": _time(task.started_at),
        "finished_at": _time(task.finished_at),
    }
    if live:
        data["live"] = live_progress(task)
    return data


# --- documentation only ----------------------------------------------------------------------


class LiveProgressDoc(serializers.Serializer):
    progress = serializers.IntegerField()
    message = serializers.CharField()
    records_so_far = serializers.IntegerField()
    records_this_attempt = serializers.IntegerField(required=False)
    records_per_second = serializers.FloatField(allow_null=True)
    attempt = serializers.IntegerField()
    worker_id = serializers.CharField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    lease_expires_at = serializers.DateTimeField(required=False, allow_null=True)
    attempt_started_at = serializers.DateTimeField(required=False, allow_null=True)


class SyncTaskDoc(serializers.Serializer):
    """models.SyncTask as this dialect shows it."""

    id = serializers.CharField(help_text='"task_<n>"; paths accept it or the bare number.')
    data_source_id = serializers.CharField()
    interface_id = serializers.CharField()
    task_type = serializers.CharField(help_text="full_sync or incremental_sync.")
    status = serializers.ChoiceField(
        choices=["pending", "running", "completed", "failed", "paused", "cancelled"]
    )
    parameters = serializers.DictField(help_text="batch_size, timeout (PUT's config lands here).")
    progress = serializers.IntegerField()
    progress_message = serializers.CharField()
    records_synced = serializers.IntegerField(allow_null=True)
    watermark = serializers.CharField(allow_null=True)
    result = serializers.DictField(allow_null=True)
    error_message = serializers.CharField()
    attempts = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    live = LiveProgressDoc(
        required=False, allow_null=True, help_text="Detail only: a running task's attempt."
    )


class PaginationDoc(serializers.Serializer):
    page = serializers.IntegerField()
    size = serializers.IntegerField()
    total = serializers.IntegerField()
    total_pages = serializers.IntegerField()


class SyncTaskPageDoc(serializers.Serializer):
    """GetSyncTasksResponse."""

    tasks = SyncTaskDoc(many=True)
    pagination = PaginationDoc()
