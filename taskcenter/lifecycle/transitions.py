"""Every status change of a task, and nothing else.

Each function is one short transaction around a conditional UPDATE whose row count decides
whether the transition happened (``filter(pk=..., status=...).update(...)``), so clients, workers
and the reaper can race and the table still ends in one legal state. A refused transition raises
``InvalidTransition`` with the current status; a successful one writes exactly one TaskEvent.

Outcomes reported by a worker are fenced twice: the execution must still be open (the reaper has
not called it LOST) and the task must still be RUNNING under that execution's attempt number
(``total_attempts``), so a worker that lost its lease cannot overwrite a newer attempt.

Two counters limit a task's runs. ``attempts`` counts attempts since the last start or retry
and is what ``max_attempts`` (the handler's failures) limits; a claim spends one. An attempt
whose worker vanished is LOST, the system's fault: it gives its attempt back and counts in
``lost_attempts`` instead, limited separately (``max_lost_attempts`` of the kind, default
``TASKCENTER["MAX_LOST_ATTEMPTS"]``) so that a task that kills every worker it runs on fails.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from taskcenter.errors import InvalidTransition
from taskcenter.lifecycle import hooks
from taskcenter.models import ExecutionStatus, Status, Task, TaskEvent, TaskExecution

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | str | None

STARTABLE = (Status.PENDING, Status.STOPPED)
STOPPABLE = (Status.QUEUED, Status.RUNNING)
CANCELLABLE = (Status.PENDING, Status.QUEUED, Status.RUNNING, Status.STOPPED)
RETRYABLE = (Status.FAILED, Status.CANCELLED, Status.STOPPED)
OPEN_EXECUTION = (ExecutionStatus.RUNNING, ExecutionStatus.WAITING)

# Reading the current status and updating on exactly that status gives the audit row a true
# "from"; if another writer moves the task in between, the update matches nothing and we read
# again. Three rounds are plenty: each lost round means somebody else made progress.
_MAX_ROUNDS = 3


def lease_seconds() -> float:
    return float(settings.TASKCENTER["LEASE_SECONDS"])


# --- helpers --------------------------------------------------------------------------------


def _task_id(task: Task | int) -> int:
    return task.pk if isinstance(task, Task) else int(task)


def _actor_fields(actor: Actor) -> dict[str, Any]:
    if isinstance(actor, AbstractBaseUser):
        return {"actor_user": actor, "actor": f"user:{actor.get_username()}"}
    return {"actor_user": None, "actor": actor or "system"}


def _record(
    task_id: int,
    verb: str,
    actor: Actor,
    *,
    from_status: str = "",
    to_status: str = "",
    execution_id: int | None = None,
    data: dict | None = None,
    at: datetime | None = None,
) -> None:
    TaskEvent.objects.create(
        task_id=task_id,
        execution_id=execution_id,
        verb=verb,
        from_status=from_status,
        to_status=to_status,
        data=data or {},
        at=at or timezone.now(),
        **_actor_fields(actor),
    )


def _current_status(task_id: int) -> str | None:
    return Task.objects.filter(pk=task_id).values_list("status", flat=True).first()


def _refusal(task_id: int, action: str) -> InvalidTransition:
    return InvalidTransition(task_id, action, _current_status(task_id))


def _refund(task_id: int, now: datetime, note: str) -> None:
    """Refund the task's price if it was charged and not refunded yet (see ``hooks.Billing``).

    Every path to FAILED or CANCELLED calls this right after its status UPDATE, in the same
    transaction: the refund's own conditional UPDATE of ``quota_refunded_at`` decides, so
    however many of them race, the balance is credited and the ledger written once.
    """
    hooks.billing().refund(task_id, now=now, note=note)


def _dispatch_with_change(task_id: int, *, priority: int, run_after: datetime | None) -> None:
    """Give the engine a job for the task the current transaction makes QUEUED."""
    _dispatch_jobs([hooks.QueuedTask(task_id, priority, run_after)])


def _dispatch_jobs(queued: list[hooks.QueuedTask]) -> None:
    """Give the engine jobs for the tasks the current transaction makes QUEUED.

    On the database engine the jobs are rows of this same database, written in the transaction:
    they commit with the change or not at all. Written after the commit, a database that went
    away in between (a restart, measured under load) or a commit whose outcome the caller never
    heard left the task QUEUED without a job until the reaper found it ``ORPHAN_AFTER_SECONDS``
    later. Any other engine is told after the commit.
    """
    dispatcher = hooks.bulk_dispatcher()
    if dispatcher.in_transaction():
        dispatcher(queued)
        return

    # robust: an engine that is down (Redis restarting) must not turn a committed change into
    # an error for its caller. The failure is logged; the task waits QUEUED, and the reaper
    # dispatches it again once it has waited ORPHAN_AFTER_SECONDS without an engine job.
    def dispatch_attempts() -> None:  # a function, not a partial: Django logs its __qualname__
        dispatcher(queued)

    transaction.on_commit(dispatch_attempts, robust=True)


def _move(
    task: Task | int,
    *,
    action: str,
    allowed: tuple[str, ...],
    to_status: str,
    verb: str,
    actor: Actor,
    changes: dict[str, Any] | None = None,
    data: dict | None = None,
) -> tuple[Task, str]:
    """Move a task from any ``allowed`` status to ``to_status``; return it and where it was.

    Must run inside ``transaction.atomic()``.
    """
    task_id = _task_id(task)
    now = timezone.now()
    for _ in range(_MAX_ROUNDS):
        current = _current_status(task_id)
        if current not in allowed:
            raise InvalidTransition(task_id, action, current)
        updated = Task.objects.filter(pk=task_id, status=current).update(
            status=to_status, updated_at=now, **(changes or {})
        )
        if updated == 1:
            _record(
                task_id, verb, actor, from_status=current, to_status=to_status, data=data, at=now
            )
            return Task.objects.get(pk=task_id), current
    raise _refusal(task_id, action)


def _close_waiting_executions(task_id: int, status: str, now: datetime) -> None:
    """A task waiting on a remote platform has no worker to notice a stop: close it here."""
    TaskExecution.objects.filter(task_id=task_id, status=ExecutionStatus.WAITING).update(
        status=status, completed_at=now, lease_expires_at=None
    )
