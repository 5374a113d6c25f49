"""Folding finished tasks into per-minute rollups (``rollups``), from the reaper.

No task write pays for the charts: the reaper, every pass, recounts the recent minutes from the
task table (indexed on ``finished_at``) and replaces their rollup rows.

- The cursor (``RollupCursor.folded_until``) is the end of the last minute folded. A pass
  recomputes ``[folded_until - SETTLE, now's minute)``: a minute is rewritten on every pass
  until it ended ``SETTLE`` ago, so a task whose transaction took its ``finished_at`` just
  before the minute ended and committed just after it is still counted in it. After that the
  minute is frozen: retrying or pruning those tasks later does not rewrite history.
- Replacing (delete the span's rows, insert the recount) makes a pass idempotent: folding twice
  gives the same rows. The current minute is never folded (it is not over).
- A pass covers at most ``MAX_SPAN``, so it stays a short transaction (a reaper that was down
  catches up over several passes), and never reaches back past ``RETENTION``; rows older than
  that are deleted. A fresh installation (no cursor yet) starts ``FIRST_FOLD`` back.
- Each pass also stores one queue-depth sample for the current minute, read from the tallies
  (exact, and a few rows to sum instead of a count over the task table).

Two reapers folding at once: on PostgreSQL the second skips its pass (a try-lock), on SQLite
the write lock runs them one after the other and the second recounts the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncMinute
from django.utils import timezone

from taskcenter.models.rollups import (
    DurationRollup,
    QueueDepthSample,
    RollupCursor,
    ThroughputRollup,
)
from taskcenter.models.tallies import TaskTally
from taskcenter.models.tally_triggers import EXECUTIONS, _bin_sql
from taskcenter.models.tasks import ExecutionStatus, Status, Task, TaskExecution

CURSOR = "throughput"
SETTLE = dt.timedelta(minutes=2)
# At a million tasks a week (6,000 an hour) an hour's recount took about 1 s on a busy 2-core
# machine on PostgreSQL; a quiet pass (the last few minutes) 40 ms.
MAX_SPAN = dt.timedelta(hours=1)
RETENTION = dt.timedelta(days=8)
FIRST_FOLD = dt.timedelta(hours=24)
# "roll" in ASCII: the advisory lock that lets one fold run at a time on PostgreSQL.
ADVISORY_LOCK = 0x726F6C6C
FINISHED = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
UTC = dt.UTC


@dataclass
class RollupReport:
    start: dt.datetime | None = None  # the span recounted, [start, end)
    end: dt.datetime | None = None
    rows: int = 0  # throughput rows written
    pruned: int = 0
    busy: bool = False  # another fold held the lock


def floor_minute(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _try_lock() -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite: the IMMEDIATE transaction's write lock excludes other folds
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ADVISORY_LOCK])
        return bool(cursor.fetchone()[0])


def _recount(start: dt.datetime, end: dt.datetime) -> tuple[list, list]:
    """The span's rollup rows, counted from the task and execution tables."""
    outcomes = (
        Task.objects.filter(finished_at__gte=start, finished_at__lt=end, status__in=FINISHED)
        .annotate(bucket=TruncMinute("finished_at", tzinfo=UTC))
        .values("bucket", "task_type", "platform")
        .annotate(
            done=Count("id", filter=Q(status=Status.COMPLETED)),
            lost=Count("id", filter=Q(status=Status.FAILED)),
            called_off=Count("id", filter=Q(status=Status.CANCELLED)),
        )
        .order_by()
    )
    rows = {
        (row["bucket"], row["task_type"], row["platform"]): ThroughputRollup(
            minute=row["bucket"],
            task_type=row["task_type"],
            platform=row["platform"],
            completed=row["done"],
            failed=row["lost"],
            cancelled=row["called_off"],
        )
        for row in outcomes
    }
    # A completed task has exactly one COMPLETED execution (a COMPLETED task cannot run again):
    # its finishing attempt. Binned in SQL with the tallies' own CASE ladder.
    durations = (
        TaskExecution.objects.filter(
            status=ExecutionStatus.COMPLETED,
            duration__isnull=False,
            task__status=Status.COMPLETED,
            task__finished_at__gte=start,
            task__finished_at__lt=end,
        )
        .annotate(
            bucket=TruncMinute("task__finished_at", tzinfo=UTC),
            kind=F("task__task_type"),
            where=F("task__platform"),
            # Constant SQL built from our own table name and numbers: nothing from input.
            bin=RawSQL(_bin_sql(f'"{EXECUTIONS}"."duration"'), ()),  # noqa: S611
        )
        .values("bucket", "kind", "where", "bin")
        .annotate(n=Count("id"), total=Sum("duration"))
        .order_by()
    )
    bins: dict[tuple, int] = defaultdict(int)
    for row in durations:
        rollup = rows.get((row["bucket"], row["kind"], row["where"]))
        if rollup is not None:  # else the task moved on between the two reads
            rollup.timed += row["n"]
            rollup.duration_sum += row["total"]
            bins[(row["bucket"], row["kind"], row["bin"])] += row["n"]
    histogram = [
        DurationRollup(minute=minute, task_type=kind, bin=index, n=n)
        for (minute, kind, index), n in bins.items()
    ]
    return list(rows.values()), histogram


def _sample_queue_depth(minute: dt.datetime) -> None:
    counts = dict(
        TaskTally.objects.filter(status__in=[Status.QUEUED, Status.RUNNING])
        .values_list("status")
        .annotate(total=Sum("n"))
        .values_list("status", "total")
        .order_by()
    )
    QueueDepthSample.objects.update_or_create(
        minute=minute,
        defaults={
            "queued": max(counts.get(Status.QUEUED, 0), 0),
            "running": max(counts.get(Status.RUNNING, 0), 0),
        },
    )


def _next_finished(since: dt.datetime, until: dt.datetime) -> dt.datetime:
    """The minute of the first task finished in ``[since, until)``, or ``until`` (an index
    lookup on ``finished_at``)."""
    first = (
        Task.objects.filter(finished_at__gte=since, finished_at__lt=until)
        .order_by("finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    return until if first is None else max(floor_minute(first), since)


def fold_rollups(*, now: dt.datetime | None = None) -> RollupReport:
    """One fold pass: recount the recent minutes, sample the queue, prune old rows."""
    current = floor_minute(now or timezone.now())
    oldest = current - RETENTION
    report = RollupReport()
    with transaction.atomic():
        if not _try_lock():
            report.busy = True
            return report
        cursor = RollupCursor.objects.filter(name=CURSOR).first()
        folded_until = cursor.folded_until if cursor else current - FIRST_FOLD
        start = max(folded_until - SETTLE, oldest)
        # A pass covers an hour of finished tasks, not of the clock: minutes in which nothing
        # finished (a fresh install's day back, a quiet night) are passed over in the same pass.
        # Nothing past the cursor was ever folded, so a skipped minute has no rows to replace.
        end = min(current, max(_next_finished(folded_until, current), start) + MAX_SPAN)
        if start < end:
            throughput, histogram = _recount(start, end)
            ThroughputRollup.objects.filter(minute__gte=start, minute__lt=end).delete()
            DurationRollup.objects.filter(minute__gte=start, minute__lt=end).delete()
            ThroughputRollup.objects.bulk_create(throughput, batch_size=500)
            DurationRollup.objects.bulk_create(histogram, batch_size=500)
            report.start, report.end, report.rows = start, end, len(throughput)
            RollupCursor.objects.update_or_create(
                name=CURSOR, defaults={"folded_until": max(folded_until, end)}
            )
        _sample_queue_depth(current)
        for model in (ThroughputRollup, DurationRollup, QueueDepthSample):
            report.pruned += model.objects.filter(minute__lt=oldest).delete()[0]
    return report


def fold_to_now(*, now: dt.datetime | None = None, max_passes: int = 400) -> list[RollupReport]:
    """Fold pass after pass until the cursor reaches ``now``'s minute (after a long pause)."""
    current = floor_minute(now or timezone.now())
    reports = []
    for _ in range(max_passes):
        report = fold_rollups(now=now)
        reports.append(report)
        if report.busy or report.end is None or report.end >= current:
            break
    return reports
