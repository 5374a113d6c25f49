"""Recovery of work that a dead worker or a lossy engine dropped.

Two kinds of loss: an attempt whose worker stopped renewing its lease (handled by
``lifecycle.reap_lost_attempts``), and a QUEUED task whose engine job vanished (a flushed queue,
a pruned job, a worker killed between taking the job and claiming the task). The second kind
is dispatched again; a duplicate job is harmless because claiming is conditional.

Each pass also prunes the worker registry's rows of workers stopped or dead for longer than its
retention (``worker_registry.prune``), folds a bounded part of the statistics tallies' shards
back into one row per key (``taskcenter.models.tally_fold``): a few short transactions that
never wait for a writer, and recounts the last few minutes' finished tasks into the charts' rollups
(``taskcenter.models.rollup_fold``): one short transaction over an index range.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from taskcenter import lifecycle
from taskcenter.errors import InvalidTransition
from taskcenter.execution import dispatch, worker_registry
from taskcenter.models import Status, Task
from taskcenter.models.rollup_fold import fold_rollups
from taskcenter.models.tally_fold import fold_tallies

# Tally fold transactions per reaper pass, of up to 500 rows each: a pass every ten seconds or
# so folds far more than four workers' shards gather meanwhile. On PostgreSQL with a million
# tasks' tallies (25k rows) a pass with nothing to fold took 3 ms, one folding 1,680 rows 60 ms.
FOLD_BATCHES = 8


@dataclass
class ReaperReport:
    lost: int = 0
    requeued: int = 0
    failed: int = 0
    redispatched: int = 0
    folded: int = 0  # tally rows folded into shard 0 or deleted at zero
    workers_pruned: int = 0  # registry rows past their retention
    rolled_up: int = 0  # per-minute throughput rows rewritten for the charts

    def log(self, logger: logging.Logger) -> None:
        """A warning when the pass recovered anything (quiet passes say nothing)."""
        if self.lost or self.redispatched:
            logger.warning(
                "Reaper: %d lost attempt(s) (%d requeued, %d failed), %d orphan(s) re-dispatched",
                self.lost,
                self.requeued,
                self.failed,
                self.redispatched,
            )


def find_orphans(*, now: datetime | None = None, limit: int | None = 500) -> list[int]:
    """QUEUED tasks that waited too long and have no engine job waiting: lost by the engine."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.TASKCENTER["ORPHAN_AFTER_SECONDS"])
    stale_query = (
        Task.objects.filter(status=Status.QUEUED, updated_at__lt=cutoff)
        .filter(Q(run_after__isnull=True) | Q(run_after__lt=cutoff))
        .order_by("updated_at")
        .values_list("pk", flat=True)
    )
    stale = list(stale_query[:limit] if limit else stale_query)
    if not stale:
        return []
    waiting = dispatch.tasks_with_waiting_jobs(stale)
    return [pk for pk in stale if waiting is None or pk not in waiting]


def redispatch_orphans(*, now: datetime | None = None, limit: int = 500) -> int:
    """Enqueue the orphans found by ``find_orphans`` again; returns how many were."""
    now = now or timezone.now()
    redispatched = 0
    for pk in find_orphans(now=now, limit=limit):
        try:
            lifecycle.redispatch_task(pk, reason="engine job missing", now=now)
        except InvalidTransition:
            continue  # claimed, stopped or cancelled since we looked
        redispatched += 1
    return redispatched


def reap(*, now: datetime | None = None) -> ReaperReport:
    """One reaper pass: lost attempts first (they requeue tasks), then orphaned queued tasks,
    then a bounded tally fold, the registry's retention and the charts' rollup fold."""
    lost = lifecycle.reap_lost_attempts(now=now)
    return ReaperReport(
        lost=lost.lost,
        requeued=lost.requeued,
        failed=lost.failed,
        redispatched=redispatch_orphans(now=now),
        folded=fold_tallies(max_batches=FOLD_BATCHES).done,
        workers_pruned=worker_registry.prune(now=now),
        rolled_up=fold_rollups().rows,  # real time: tests pass a future `now` for leases
    )
