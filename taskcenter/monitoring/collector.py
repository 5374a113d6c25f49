"""What the database knows, read when Prometheus scrapes: tasks by status and kind, the queue,
lost attempts and workers alive.

Every query here must stay cheap with a million tasks: task counts come from the trigger-kept
tallies (a few rows per key), the queue from the QUEUED rows alone (through the status index),
lost attempts from the executions' (status, lease) index.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from taskcenter.execution import worker_registry
from taskcenter.lib.db_outage import DATABASE_ERRORS
from taskcenter.models import Status, Task, TaskTally

logger = logging.getLogger(__name__)


def task_counts() -> dict[tuple[str, str], int]:
    """Tasks per (status, kind), exact, summed over owners, platforms and tally shards."""
    rows = (
        TaskTally.objects.order_by()
        .values_list("status", "task_type")
        .annotate(total=Sum("n"))
        .filter(total__gt=0)
    )
    return {(status, kind): total for status, kind, total in rows}


def queue_rows(now: datetime) -> list[tuple[str, int, datetime | None]]:
    """Per kind: QUEUED tasks that are due now, and since when the longest-waiting one has been.

    A task is due from its ``run_after`` (a back-off or a schedule) or, without one, from when
    it was queued (``updated_at``, which the queueing transition sets). One pass over the QUEUED
    rows, which the status index finds without reading the rest of the table.

    Not ``execution.queues.depth_rows()``: the admin's Queues page counts every QUEUED task
    (scheduled ones too) and splits them by what they wait for; an alert wants what is overdue.
    """
    rows = (
        Task.objects.filter(status=Status.QUEUED)
        .filter(Q(run_after__isnull=True) | Q(run_after__lte=now))
        .order_by()
        .values_list("task_type")
        .annotate(n=Count("id"), since=Min(Coalesce("run_after", "updated_at")))
    )
    return list(rows)


def _families() -> dict[str, GaugeMetricFamily]:
    return {
        "tasks": GaugeMetricFamily(
            "taskcenter_tasks",
            "Tasks in the database by status and kind (exact: the statistics tallies).",
            labels=["status", "kind"],
        ),
        "depth": GaugeMetricFamily(
            "taskcenter_queue_depth",
            "QUEUED tasks that are due now (run_after passed or unset), by kind.",
            labels=["kind"],
        ),
        "oldest": GaugeMetricFamily(
            "taskcenter_queue_oldest_age_seconds",
            "How long the longest-waiting due QUEUED task of each kind has been due.",
            labels=["kind"],
        ),
        "lost": GaugeMetricFamily(
            "taskcenter_lost_attempts",
            "Attempts recorded LOST (their worker vanished) among the executions kept.",
        ),
        "workers": GaugeMetricFamily("taskcenter_workers_alive", "Workers heartbeating now."),
    }


def _up(value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "taskcenter_metrics_database_up",
        "1 when the database answered this scrape's queries, 0 when it did not.",
        value=value,
    )


class TaskCenterCollector(Collector):
    """Builds the database's metric families at scrape time (nothing is cached between)."""

    def describe(self) -> Iterable[Metric]:
        # Names only, so registering this collector does not query the database.
        return [_up(1), *_families().values()]

    def collect(self) -> Iterable[Metric]:
        families = _families()
        try:
            self._fill(families)
        except DATABASE_ERRORS:
            logger.exception("Metrics: the database did not answer")
            return [_up(0)]
        return [_up(1), *families.values()]

    def _fill(self, families: dict[str, GaugeMetricFamily]) -> None:
        counts = task_counts()
        kinds = sorted({kind for _status, kind in counts})
        # Every status of every kind seen, zeros included, so a series drops to 0 rather than
        # vanishing when its last task moves on; the queue's series likewise.
        for kind in kinds:
            for status in Status.values:
                families["tasks"].add_metric([status, kind], counts.get((status, kind), 0))

        now = timezone.now()
        queued = {kind: (n, since) for kind, n, since in queue_rows(now)}
        for kind in sorted(set(kinds) | set(queued)):
            n, since = queued.get(kind, (0, None))
            age = max((now - since).total_seconds(), 0.0) if since else 0.0
            families["depth"].add_metric([kind], n)
            families["oldest"].add_metric([kind], age)

        # LOST executions among those kept (``prune_tasks`` lowers it), and fresh registry rows.
        families["lost"].add_metric([], worker_registry.lost_attempts_total())
        families["workers"].add_metric([], worker_registry.workers_alive())
