"""Recovery of work that a dead worker or a lossy engine dropped.

Two kinds of loss: an attempt whose worker stopped renewing its lease (handled by
``lifecycle.reap_lost_attempts``), and a QUEUED task whose engine job vanished (a flushed queue,
a pruned job, a worker killed between taking the job and claiming the task). The second kind
is dispatched again; a duplicate job is harmless because claiming is conditional.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from . import dispatch, lifecycle
from .errors import InvalidTransition
from .models import Status, Task


@dataclass
class ReaperReport:
    lost: int = 0
    requeued: int = 0
    failed: int = 0
    redispatched: int = 0


def redispatch_orphans(*, now: datetime | None = None, limit: int = 500) -> int:
    """Enqueue again QUEUED tasks that have waited too long and have no engine job waiting."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.TASKCENTER["ORPHAN_AFTER_SECONDS"])
    stale = list(
        Task.objects.filter(status=Status.QUEUED, updated_at__lt=cutoff)
        .filter(Q(run_after__isnull=True) | Q(run_after__lt=cutoff))
        .order_by("updated_at")
        .values_list("pk", "priority")[:limit]
    )
    if not stale:
        return 0
    waiting = dispatch.tasks_with_waiting_jobs([pk for pk, _ in stale])
    redispatched = 0
    for pk, _ in stale:
        if waiting is not None and pk in waiting:
            continue
        try:
            lifecycle.redispatch_task(pk, reason="engine job missing", now=now)
        except InvalidTransition:
            continue  # claimed, stopped or cancelled since we looked
        redispatched += 1
    return redispatched


def reap(*, now: datetime | None = None) -> ReaperReport:
    lost = lifecycle.reap_lost_attempts(now=now)
    return ReaperReport(
        lost=lost.lost,
        requeued=lost.requeued,
        failed=lost.failed,
        redispatched=redispatch_orphans(now=now),
    )
