"""GET /api/sync/tasks/statistics: stored counts merged with what the engine is doing now.

``by_status`` and ``by_type`` count the stored tasks. ``engine`` is live: attempts a worker holds
right now (a RUNNING task whose worker died still counts as stored "running" until the reaper
notices, but not here), tasks due to be claimed now, and throughput over the last
``window_minutes``: tasks that finished and records copied, per minute.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from syncing.api.serializers import TYPE_OF
from taskcenter.api.status_words import SYNC, word_for, words
from taskcenter.models import FINISHED_STATUSES, ExecutionStatus, Status, Task, TaskExecution

from .sync import DATA_TYPE, results_model


def _per_minute(count: int, minutes: int) -> float:
    return round(count / minutes, 3)


def sync_statistics(tasks: QuerySet[Task], *, window_minutes: int) -> dict[str, Any]:
    """Counts of ``tasks`` (already scoped) by status word and type, and live engine figures."""
    now = timezone.now()
    since = now - timedelta(minutes=window_minutes)
    by_status: dict[str, int] = {str(word): 0 for word in words(SYNC)}
    by_type: dict[str, int] = dict.fromkeys(TYPE_OF.values(), 0)
    for status, task_type, n in (
        tasks.order_by().values_list("status", "task_type").annotate(n=Count("pk"))
    ):
        by_status[str(word_for(status, SYNC))] += n
        name = TYPE_OF.get(task_type, task_type)
        by_type[name] = by_type.get(name, 0) + n

    held = TaskExecution.objects.filter(
        task__in=tasks.order_by().values("pk"),
        status=ExecutionStatus.RUNNING,
        lease_expires_at__gt=now,
    )
    running_now = held.count()
    workers_now = held.order_by().values("worker_id").distinct().count()
    queued_now = (
        tasks.filter(status=Status.QUEUED)
        .filter(Q(run_after__isnull=True) | Q(run_after__lte=now))
        .count()
    )
    finished = tasks.filter(finished_at__gte=since, status__in=FINISHED_STATUSES)
    finished_counts = dict(
        finished.order_by().values_list("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    tasks_finished = sum(finished_counts.values())
    records = (
        results_model()
        ._default_manager.filter(
            task__in=tasks.order_by().values("pk"), data_type=DATA_TYPE, created_at__gte=since
        )
        .count()
    )
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_type": by_type,
        "engine": {
            "running_now": running_now,
            "queued_now": queued_now,
            "workers_now": workers_now,
            "window_minutes": window_minutes,
            "tasks_finished": tasks_finished,
            "tasks_completed": finished_counts.get(Status.COMPLETED, 0),
            "tasks_failed": finished_counts.get(Status.FAILED, 0),
            "tasks_finished_per_minute": _per_minute(tasks_finished, window_minutes),
            "records_copied": records,
            "records_per_minute": _per_minute(records, window_minutes),
        },
        "generated_at": now.isoformat().replace("+00:00", "Z"),
    }
