"""Aggregates for GET /api/v1/tasks/statistics, over an already filtered and scoped queryset.

The counts come from one ``GROUP BY status, task_type, platform`` query, summed in Python: one
pass over the matched rows instead of three. Percentiles avoid loading durations into Python:
SQLite has no percentile function, so each one is a count and then an ``ORDER BY duration LIMIT 1
OFFSET k`` (nearest rank), which works the same on PostgreSQL.

That costs time in proportion to the tasks selected, which for a wide selection (no filter at
all: the whole table) no index can make cheap. So when the filters are only the ones the
trigger-kept tallies are keyed on (status, type, platform, owner), the answer is read from
``TaskTally`` and ``DurationTally`` instead (see ``taskcenter.models.tally_triggers``):
exact counts, and percentiles from a log-scale histogram, flagged ``approximate``. Time
windows and the other filters take the row path, where the created_at and filter indexes
bound the work.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from django.db.models import Count, QuerySet, Sum

from taskcenter.models.tally_triggers import bin_value

from ..models import DurationTally, ExecutionStatus, Status, Task, TaskExecution, TaskTally

PERCENTILES = {"p50": 0.50, "p95": 0.95}
# The list filters the tallies are keyed on; any other filter takes the row path.
TALLY_FILTERS = frozenset({"status", "task_type", "platform", "user_id"})


def _grouped_counts(tasks: QuerySet[Task]) -> tuple[Counter, Counter, Counter]:
    by_status: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    by_platform: Counter[str] = Counter()
    fields = ("status", "task_type", "platform")
    rows = tasks.order_by().values_list(*fields).annotate(n=Count("pk"))
    for status, task_type, platform, n in rows:
        by_status[status or ""] += n
        by_type[task_type or ""] += n
        by_platform[platform or ""] += n
    return by_status, by_type, by_platform


def duration_percentiles(executions: QuerySet[TaskExecution]) -> dict[str, Any]:
    """Nearest-rank p50/p95 of ``duration`` over ``executions`` (NULL durations ignored)."""
    timed = executions.filter(duration__isnull=False).order_by()
    count = timed.count()
    result: dict[str, Any] = {"count": count, "approximate": False}
    for name, fraction in PERCENTILES.items():
        if not count:
            result[name] = None
            continue
        rank = max(math.ceil(fraction * count), 1) - 1
        result[name] = (
            timed.order_by("duration").values_list("duration", flat=True)[rank : rank + 1].get()
        )
    return result


def histogram_percentiles(bins: dict[int, int]) -> dict[str, Any]:
    """Nearest-rank p50/p95 from a duration histogram: the value of the bin holding the rank."""
    count = sum(bins.values())
    result: dict[str, Any] = {"count": count, "approximate": True}
    for name, fraction in PERCENTILES.items():
        result[name] = None
        if not count:
            continue
        rank, seen = max(math.ceil(fraction * count), 1), 0
        for index in sorted(bins):
            seen += bins[index]
            if seen >= rank:
                result[name] = round(bin_value(index), 6)
                break
    return result


def _summary(counts: Counter, by_type: Counter, by_platform: Counter, duration: dict) -> dict:
    by_status = {status: counts.get(status, 0) for status in Status.values}
    by_status.update((status, n) for status, n in counts.items() if status not in by_status)
    completed, failed = by_status[Status.COMPLETED], by_status[Status.FAILED]
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_type": dict(sorted(by_type.items())),
        "by_platform": dict(sorted(by_platform.items())),
        "success_rate": round(completed / (completed + failed), 4) if completed + failed else None,
        "duration": duration,
    }


def tallied_statistics(
    *,
    owner_ids: list[int] | None = None,
    statuses: list[str] | None = None,
    task_types: list[str] | None = None,
    platforms: list[str] | None = None,
) -> dict[str, Any]:
    """The statistics of the tasks these filters select, read from the trigger-kept tallies.

    ``None`` means "no filter"; an empty list selects nothing.
    """
    tallies, durations = TaskTally.objects.all(), DurationTally.objects.all()
    for field, values in (
        ("owner_id", owner_ids),
        ("task_type", task_types),
        ("platform", platforms),
    ):
        if values is not None:
            tallies = tallies.filter(**{f"{field}__in": values})
            durations = durations.filter(**{f"{field}__in": values})
    if statuses is not None:
        tallies = tallies.filter(status__in=statuses)
        if Status.COMPLETED not in statuses:
            # Only a completed task has a completed attempt: none of these tasks has a duration.
            durations = durations.none()
    by_status: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    by_platform: Counter[str] = Counter()
    rows = (
        tallies.order_by()
        .values_list("status", "task_type", "platform")
        .annotate(total=Sum("n"))
        .filter(total__gt=0)
    )
    for status, task_type, platform, n in rows:
        by_status[status] += n
        by_type[task_type] += n
        by_platform[platform] += n
    bins = dict(
        durations.order_by().values_list("bin").annotate(total=Sum("n")).filter(total__gt=0)
    )
    return _summary(by_status, by_type, by_platform, histogram_percentiles(bins))


def task_statistics(tasks: QuerySet[Task]) -> dict[str, Any]:
    """Counts by status, type and platform, success rate and attempt durations of ``tasks``."""
    counts, by_type, by_platform = _grouped_counts(tasks)
    executions = TaskExecution.objects.filter(
        task__in=tasks.order_by().values("pk"), status=ExecutionStatus.COMPLETED
    )
    return _summary(counts, by_type, by_platform, duration_percentiles(executions))
