"""Aggregates for GET /api/v1/tasks/statistics, over an already filtered and scoped queryset.

Counts are ``GROUP BY`` queries. Percentiles avoid loading durations into Python: SQLite has no
percentile function, so each one is a count and then an ``ORDER BY duration LIMIT 1 OFFSET k``
(nearest rank), which works the same on PostgreSQL.
"""

from __future__ import annotations

import math
from typing import Any

from django.db.models import Count, QuerySet

from ..models import ExecutionStatus, Status, Task, TaskExecution

PERCENTILES = {"p50": 0.50, "p95": 0.95}


def _counts(tasks: QuerySet[Task], field: str) -> dict[str, int]:
    rows = tasks.order_by().values(field).annotate(n=Count("pk")).order_by(field)
    return {row[field] or "": row["n"] for row in rows}


def duration_percentiles(executions: QuerySet[TaskExecution]) -> dict[str, Any]:
    """Nearest-rank p50/p95 of ``duration`` over ``executions`` (NULL durations ignored)."""
    timed = executions.filter(duration__isnull=False).order_by()
    count = timed.count()
    result: dict[str, Any] = {"count": count}
    for name, fraction in PERCENTILES.items():
        if not count:
            result[name] = None
            continue
        rank = max(math.ceil(fraction * count), 1) - 1
        result[name] = (
            timed.order_by("duration").values_list("duration", flat=True)[rank : rank + 1].get()
        )
    return result


def task_statistics(tasks: QuerySet[Task]) -> dict[str, Any]:
    """Counts by status, type and platform, success rate and attempt durations of ``tasks``."""
    by_status = {status: 0 for status in Status.values}
    by_status.update(_counts(tasks, "status"))
    completed, failed = by_status[Status.COMPLETED], by_status[Status.FAILED]
    executions = TaskExecution.objects.filter(
        task__in=tasks.order_by().values("pk"), status=ExecutionStatus.COMPLETED
    )
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_type": _counts(tasks, "task_type"),
        "by_platform": _counts(tasks, "platform"),
        "success_rate": round(completed / (completed + failed), 4) if completed + failed else None,
        "duration": duration_percentiles(executions),
    }
