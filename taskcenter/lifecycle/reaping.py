"""Attempts whose worker vanished: an expired lease makes the execution LOST; the task requeues."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskcenter.errors import UnknownKind
from taskcenter.kinds import get_kind, lost_attempts_limit_default
from taskcenter.lifecycle.attempts import (
    _fenced,
    _lock_task,
)
from taskcenter.lifecycle.transitions import (
    OPEN_EXECUTION,
    _dispatch_with_change,
    _record,
    _refund,
)
from taskcenter.models import EventVerb, ExecutionStatus, Status, TaskExecution

# --- the reaper ------------------------------------------------------------------------------


@dataclass
class LostAttemptsReport:
    """What one ``reap_lost_attempts`` call did; the reaper adds its orphans (``ReaperReport``)."""

    lost: int = 0
    requeued: int = 0
    failed: int = 0


def lost_attempts_limit(task_type: str) -> int:
    """How many lost attempts a task of ``task_type`` may have before it fails."""
    try:
        return get_kind(task_type).lost_attempts_limit
    except UnknownKind:  # removed since: the global limit still ends a task that kills workers
        return lost_attempts_limit_default()


def _lose_attempt(
    execution: TaskExecution, *, now: datetime, error: str, actor: str, only_expired: bool
) -> str | None:
    """Close an open execution as LOST and requeue its task without spending an attempt.

    A lost attempt is the system's fault (a dead worker, a dropped database link), so the
    attempt it took is given back and ``lost_attempts`` counts it instead; past the kind's
    limit of lost attempts the task fails (it may be what kills its workers). A task that was
    stopped, cancelled or re-run meanwhile keeps its status: only the execution ends.

    Must run inside ``transaction.atomic()``. Returns the task's new status, "" when only the
    execution ended, or None when the execution was no longer open (nothing written).
    """
    _lock_task(execution.task_id)
    still_open = TaskExecution.objects.filter(pk=execution.pk, status__in=OPEN_EXECUTION)
    if only_expired:
        still_open = still_open.filter(lease_expires_at__lt=now)
    closed = still_open.update(
        status=ExecutionStatus.LOST,
        completed_at=now,
        duration=(now - execution.started_at).total_seconds(),
        lease_expires_at=None,
        error_message=error,
    )
    if closed != 1:
        return None
    task = _fenced(execution).first()
    data: dict[str, Any] = {"attempt": execution.attempt, "worker": execution.worker_id}
    to_status = ""
    if task is not None:
        limit = lost_attempts_limit(task.task_type)
        lost = task.lost_attempts + 1
        data.update(lost_attempts=lost, limit=limit)
        changes: dict[str, Any] = {"attempts": max(task.attempts - 1, 0), "lost_attempts": lost}
        if lost <= limit:
            to_status = Status.QUEUED
            changes["run_after"] = None
        else:
            to_status = Status.FAILED
            changes["finished_at"] = now
            changes["error_message"] = (
                f"Worker lost {lost} times (limit {limit}); the task may be killing its worker"
            )
        moved = (
            _fenced(execution)
            .filter(attempts=task.attempts, lost_attempts=task.lost_attempts)
            .update(status=to_status, updated_at=now, **changes)
        )
        if moved != 1:
            to_status = ""
    if not to_status:
        # Stopped, cancelled or already re-run meanwhile: only the execution ends.
        _record(
            execution.task_id, EventVerb.LOST, actor, execution_id=execution.pk, data=data, at=now
        )
        return ""
    if to_status == Status.QUEUED:
        _dispatch_with_change(task.pk, priority=task.priority, run_after=None)
    else:
        _refund(task.pk, now, "failed: worker lost")
    _record(
        task.pk,
        EventVerb.LOST,
        actor,
        from_status=Status.RUNNING,
        to_status=to_status,
        execution_id=execution.pk,
        data=data,
        at=now,
    )
    return to_status


def reap_lost_attempts(*, now: datetime | None = None, limit: int = 500) -> LostAttemptsReport:
    """Turn open executions whose lease expired into LOST, and requeue or fail their tasks.

    See ``_lose_attempt``: a lost attempt does not spend one of the task's attempts, up to the
    kind's limit of lost attempts. A task that was stopped or cancelled while its worker died
    keeps that status: the pending cancel wins, it is never retried.
    """
    now = now or timezone.now()
    report = LostAttemptsReport()
    expired = list(
        TaskExecution.objects.filter(status__in=OPEN_EXECUTION, lease_expires_at__lt=now).order_by(
            "lease_expires_at"
        )[:limit]
    )
    for execution in expired:
        error = (
            f"Worker {execution.worker_id or '?'} stopped renewing its lease "
            f"(last heartbeat {execution.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC)"
            if execution.heartbeat_at
            else f"Worker {execution.worker_id or '?'} vanished"
        )
        with transaction.atomic():
            to_status = _lose_attempt(
                execution, now=now, error=error, actor="system:reaper", only_expired=True
            )
        if to_status is None:
            continue
        report.lost += 1
        if to_status == Status.QUEUED:
            report.requeued += 1
        elif to_status == Status.FAILED:
            report.failed += 1
    return report


def release_attempt(execution: TaskExecution, *, error: str, worker_id: str = "") -> str | None:
    """Give up a running attempt its worker can no longer see through (the database went away
    under the handler): LOST and requeued at once, as the reaper would after the lease.

    Returns the task's new status, "" when only the execution ended, None when it was closed.
    """
    with transaction.atomic():
        return _lose_attempt(
            execution,
            now=timezone.now(),
            error=error[:10_000],
            actor=f"worker:{worker_id or execution.worker_id}",
            only_expired=False,
        )
