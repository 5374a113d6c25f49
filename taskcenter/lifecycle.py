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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from . import dispatch, quota
from .errors import InvalidTransition, UnknownKind
from .kinds import get_kind, lost_attempts_limit_default
from .models import EventVerb, ExecutionStatus, Status, Task, TaskEvent, TaskExecution

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
    """Refund the task's quota if it was charged and not refunded yet (see ``quota``).

    Every path to FAILED or CANCELLED calls this right after its status UPDATE, in the same
    transaction: the refund's own conditional UPDATE of ``quota_refunded_at`` decides, so
    however many of them race, the balance is credited and the ledger written once.
    """
    quota.refund_task(task_id, now=now, note=note)


def _dispatch_on_commit(task_id: int, *, priority: int, run_after: datetime | None) -> None:
    # robust: an engine that is down (Redis restarting) must not turn a committed change into
    # an error for its caller. The failure is logged; the task waits QUEUED, and the reaper
    # dispatches it again once it has waited ORPHAN_AFTER_SECONDS without an engine job.
    def dispatch_attempt() -> None:  # a function, not a partial: Django logs its __qualname__
        dispatch.enqueue_attempt(task_id, priority=priority, run_after=run_after)

    transaction.on_commit(dispatch_attempt, robust=True)


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


# --- client actions --------------------------------------------------------------------------


def create_task(
    *,
    owner: AbstractBaseUser,
    task_type: str,
    parameters: dict | None = None,
    start: bool = False,
    actor: Actor = None,
    max_attempts: int | None = None,
    **fields: Any,
) -> Task:
    """Validate the parameters against the kind and create the task, PENDING or QUEUED.

    The task costs ``quota`` (default: its kind's price), charged to the owner's balance in the
    same transaction. Raises ``UnknownKind``, a DRF ``ValidationError`` naming the bad field or
    ``InsufficientQuota``; nothing is written then.
    """
    kind = get_kind(task_type)
    cleaned = kind.validate_parameters(parameters)
    fields.update(kind.column_values(cleaned))
    now = timezone.now()
    status = Status.QUEUED if start else Status.PENDING
    explicit = fields.pop("quota", None)
    price = kind.quota if explicit is None else int(explicit)
    if price < 0:
        raise ValueError("quota cannot be negative")
    with transaction.atomic():
        task = Task.objects.create(
            owner=owner,
            task_type=task_type,
            parameters=cleaned,
            status=status,
            max_attempts=max_attempts or kind.retry.max_attempts,
            platform=fields.pop("platform", "") or kind.platform,
            action=fields.pop("action", "") or kind.action,
            created_at=now,
            updated_at=now,
            submitted_at=now if start else None,
            quota=price,
            **fields,
        )
        if price:
            # Raises InsufficientQuota when the balance is short: the task insert rolls back.
            quota.charge(user_id=owner.pk, amount=price, task_id=task.pk, note=task_type)
        _record(task.pk, EventVerb.CREATED, actor or owner, to_status=status, at=now)
        if start:
            _dispatch_on_commit(task.pk, priority=task.priority, run_after=task.run_after)
    return task


def start_task(task: Task | int, *, actor: Actor = None) -> Task:
    """PENDING or STOPPED -> QUEUED with fresh attempt counters; hand an attempt to the engine.

    Both ``attempts`` and ``lost_attempts`` restart from 0, as on a retry: a person chose to
    run the task again, so it gets its full allowance of failures and of lost workers.
    """
    now = timezone.now()
    with transaction.atomic():
        task, _ = _move(
            task,
            action="start",
            allowed=STARTABLE,
            to_status=Status.QUEUED,
            verb=EventVerb.QUEUED,
            actor=actor,
            changes={
                "attempts": 0,
                "lost_attempts": 0,
                "run_after": None,
                "submitted_at": now,
                "finished_at": None,
            },
        )
        _dispatch_on_commit(task.pk, priority=task.priority, run_after=None)
    return task


def stop_task(task: Task | int, *, actor: Actor = None) -> Task:
    """QUEUED or RUNNING -> STOPPED. A running handler stops at its next checkpoint."""
    now = timezone.now()
    with transaction.atomic():
        task, _ = _move(
            task,
            action="stop",
            allowed=STOPPABLE,
            to_status=Status.STOPPED,
            verb=EventVerb.STOPPED,
            actor=actor,
            changes={"run_after": None},
        )
        _close_waiting_executions(task.pk, ExecutionStatus.STOPPED, now)
    return task


def cancel_task(task: Task | int, *, actor: Actor = None, reason: str = "") -> Task:
    """PENDING, QUEUED, RUNNING or STOPPED -> CANCELLED (terminal); refunds quota."""
    now = timezone.now()
    with transaction.atomic():
        task, _ = _move(
            task,
            action="cancel",
            allowed=CANCELLABLE,
            to_status=Status.CANCELLED,
            verb=EventVerb.CANCELLED,
            actor=actor,
            changes={"finished_at": now, "run_after": None},
            data={"reason": reason} if reason else None,
        )
        _refund(task.pk, now, "cancelled")
        _close_waiting_executions(task.pk, ExecutionStatus.CANCELLED, now)
    return Task.objects.get(pk=task.pk)


def retry_task(task: Task | int, *, actor: Actor = None) -> Task:
    """FAILED, CANCELLED or STOPPED -> QUEUED with a fresh set of attempts and no error.

    ``lost_attempts`` restarts from 0 too (see ``start_task``); the executions keep the
    history, so a task that kills its worker on every run still shows its LOST attempts.

    A refunded task (FAILED, CANCELLED) is a new paid run: its quota is charged again, and
    ``InsufficientQuota`` leaves it where it was when the balance is short. STOPPED kept its
    charge and pays nothing.
    """
    now = timezone.now()
    with transaction.atomic():
        task, was = _move(
            task,
            action="retry",
            allowed=RETRYABLE,
            to_status=Status.QUEUED,
            verb=EventVerb.RETRIED,
            actor=actor,
            changes={
                "attempts": 0,
                "lost_attempts": 0,
                "error_message": "",
                "finished_at": None,
                "run_after": None,
                "submitted_at": now,
            },
        )
        # After the status UPDATE, so the task row is locked before the account (lock order).
        quota.recharge_task(task.pk, action="retry", current_status=was)
        _dispatch_on_commit(task.pk, priority=task.priority, run_after=None)
    return Task.objects.get(pk=task.pk)


# Fields a client may edit in any status: they change no behaviour.
LABEL_FIELDS = frozenset({"name", "description"})
# Fields that change what an attempt does: editable only while no attempt is queued or running
# (and not on a COMPLETED task, which cannot run again; clone it instead).
EDITABLE = (Status.PENDING, Status.STOPPED, Status.FAILED, Status.CANCELLED)
EDITABLE_FIELDS = frozenset(
    {"parameters", "priority", "max_attempts", "account_id", "proxy_id", "platform", "action"}
)
DELETABLE = tuple(s for s in Status if s not in (Status.QUEUED, Status.RUNNING))


def update_task(task: Task | int, *, actor: Actor = None, **changes: Any) -> Task:
    """Edit a task's labels (any status) or its parameters and settings (EDITABLE statuses).

    Not a status change: one conditional UPDATE guarded on the statuses the changed fields allow,
    and an ``updated`` event naming the fields. ``parameters`` are validated against the kind.
    Raises ``InvalidTransition`` (action "edit") when the task is in a status that forbids it.
    """
    task_id = _task_id(task)
    unknown = set(changes) - LABEL_FIELDS - EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
    allowed = tuple(Status) if set(changes) <= LABEL_FIELDS else EDITABLE
    if "parameters" in changes:
        task_type = Task.objects.filter(pk=task_id).values_list("task_type", flat=True).first()
        if task_type is None:
            raise InvalidTransition(task_id, "edit", None)
        kind = get_kind(task_type)
        changes["parameters"] = kind.validate_parameters(changes["parameters"])
        changes.update(kind.column_values(changes["parameters"]))
    now = timezone.now()
    with transaction.atomic():
        updated = Task.objects.filter(pk=task_id, status__in=allowed).update(
            updated_at=now, **changes
        )
        if updated != 1:
            raise _refusal(task_id, "edit")
        _record(task_id, EventVerb.UPDATED, actor, data={"fields": sorted(changes)}, at=now)
    return Task.objects.get(pk=task_id)


# Not yet claimed by a worker: a QUEUED task's next attempt reads its parameters when claimed.
UNCLAIMED = (Status.PENDING, Status.QUEUED)


def reconfigure_unclaimed_task(
    task: Task | int, *, config: dict[str, Any], actor: Actor = None
) -> Task:
    """Merge ``config`` into the parameters of a task no worker has claimed (PENDING or QUEUED).

    Unlike ``update_task`` this also allows QUEUED (the seed-002 sync dialect edits "pending"
    tasks, which includes queued ones). It is safe against a worker's claim because both are
    conditional UPDATEs on the status: the claim either comes first (this one matches nothing
    and raises) or comes after and reads the new parameters. The merge is fenced on
    ``updated_at`` too, so two concurrent edits cannot lose each other's keys.
    Raises ``InvalidTransition`` (action "reconfigure") outside those statuses.
    """
    task_id = _task_id(task)
    for _ in range(_MAX_ROUNDS):
        row = (
            Task.objects.filter(pk=task_id)
            .values_list("status", "task_type", "parameters", "updated_at")
            .first()
        )
        if row is None or row[0] not in UNCLAIMED:
            raise _refusal(task_id, "reconfigure")
        _, task_type, parameters, seen_at = row
        kind = get_kind(task_type)
        merged = kind.validate_parameters({**(parameters or {}), **config})
        now = timezone.now()
        with transaction.atomic():
            updated = Task.objects.filter(
                pk=task_id, status__in=UNCLAIMED, updated_at=seen_at
            ).update(parameters=merged, updated_at=now, **kind.column_values(merged))
            if updated == 1:
                _record(
                    task_id,
                    EventVerb.UPDATED,
                    actor,
                    data={"fields": ["parameters"], "keys": sorted(config)},
                    at=now,
                )
                return Task.objects.get(pk=task_id)
    raise _refusal(task_id, "reconfigure")


def delete_task(task: Task | int, *, actor: Actor = None) -> None:
    """Delete a task that is neither queued nor running, with its executions, events and results.

    The row is locked first so a concurrent start (or claim) waits and then finds no task,
    instead of queueing an attempt for a task that is being deleted.
    """
    task_id = _task_id(task)
    with transaction.atomic():
        locked = Task.objects.select_for_update().filter(pk=task_id, status__in=DELETABLE).first()
        if locked is None:
            raise _refusal(task_id, "delete")
        # A PENDING or STOPPED task still holds its charge: give it back before it goes.
        _refund(task_id, timezone.now(), "deleted")
        locked.delete()
    logger.info("Task %s deleted by %s", task_id, _actor_fields(actor)["actor"])


# --- worker side -----------------------------------------------------------------------------


def claim_attempt(
    task: Task | int, *, worker_id: str, lease: float | None = None
) -> tuple[Task, TaskExecution]:
    """QUEUED -> RUNNING: open a new execution holding a lease for ``worker_id``."""
    task_id = _task_id(task)
    claimed = claim_attempts([task_id], worker_id=worker_id, lease=lease)
    if not claimed:
        raise _refusal(task_id, "claim")
    return claimed[0]


def claim_attempts(
    task_ids: list[int], *, worker_id: str, lease: float | None = None, skip_locked: bool = False
) -> list[tuple[Task, TaskExecution]]:
    """``claim_attempt`` for many tasks in one transaction, in the order of ``task_ids``.

    Tasks that cannot be claimed (not QUEUED, not due yet) are left out of the result, and with
    ``skip_locked`` so are rows another transaction holds at this moment (PostgreSQL), which the
    caller then claims one at a time. One transaction of five statements claims a whole batch,
    where claiming one by one costs five statements per task.
    """
    now = timezone.now()
    lease_until = now + timedelta(seconds=lease or lease_seconds())
    with transaction.atomic():
        claimable = Task.objects.filter(
            Q(run_after__isnull=True) | Q(run_after__lte=now), status=Status.QUEUED
        )
        if len(set(task_ids)) == 1 and not skip_locked:
            # One task: the conditional UPDATE's row count says whether it was ours.
            ids = list(task_ids[:1])
        else:
            # Lock first so the UPDATE moves exactly the rows read here (on SQLite the IMMEDIATE
            # transaction is the lock); with skip_locked, rows another transaction holds are
            # left to be claimed one at a time.
            ids = list(
                claimable.select_for_update(skip_locked=skip_locked, no_key=True)
                .filter(pk__in=task_ids)
                .values_list("pk", flat=True)
            )
        moved = (
            claimable.filter(pk__in=ids).update(
                status=Status.RUNNING,
                attempts=F("attempts") + 1,
                total_attempts=F("total_attempts") + 1,
                started_at=now,
                updated_at=now,
                run_after=None,
            )
            if ids
            else 0
        )
        if not moved:
            return []
        tasks = Task.objects.in_bulk(ids)
        ordered = [tasks[pk] for pk in dict.fromkeys(task_ids) if pk in tasks]
        executions = TaskExecution.objects.bulk_create(
            [
                TaskExecution(
                    task=task,
                    attempt=task.total_attempts,
                    worker_id=worker_id,
                    status=ExecutionStatus.RUNNING,
                    account_id=task.account_id,
                    proxy_id=task.proxy_id,
                    started_at=now,
                    heartbeat_at=now,
                    lease_expires_at=lease_until,
                )
                for task in ordered
            ]
        )
        actor = _actor_fields(f"worker:{worker_id}")
        TaskEvent.objects.bulk_create(
            [
                TaskEvent(
                    task_id=task.pk,
                    execution_id=execution.pk,
                    verb=EventVerb.STARTED,
                    from_status=Status.QUEUED,
                    to_status=Status.RUNNING,
                    data={"attempt": execution.attempt},
                    at=now,
                    **actor,
                )
                for task, execution in zip(ordered, executions, strict=True)
            ]
        )
    return list(zip(ordered, executions, strict=True))


def resume_attempt(
    execution: TaskExecution, *, worker_id: str, lease: float | None = None
) -> tuple[Task, TaskExecution]:
    """WAITING -> RUNNING for an execution whose handler asked to be polled again."""
    now = timezone.now()
    with transaction.atomic():
        updated = TaskExecution.objects.filter(
            pk=execution.pk, status=ExecutionStatus.WAITING
        ).update(
            status=ExecutionStatus.RUNNING,
            worker_id=worker_id,
            heartbeat_at=now,
            lease_expires_at=now + timedelta(seconds=lease or lease_seconds()),
        )
        task = Task.objects.filter(
            pk=execution.task_id, status=Status.RUNNING, total_attempts=execution.attempt
        ).first()
        if updated != 1 or task is None:
            # Raising out of the block rolls it back; set_rollback() first would make the
            # refusal's own status query fail with TransactionManagementError.
            raise _refusal(execution.task_id, "resume")
        _record(
            task.pk,
            EventVerb.RESUMED,
            f"worker:{worker_id}",
            from_status=Status.RUNNING,
            to_status=Status.RUNNING,
            execution_id=execution.pk,
            data={"attempt": execution.attempt},
            at=now,
        )
    execution.refresh_from_db()
    return task, execution


def _lock_task(task_id: int) -> None:
    """Lock the task row before touching any of its executions.

    Every transaction that writes a task and one of its executions takes the task row first, as
    stop/cancel and ``ctx.progress`` do, so on PostgreSQL a cancel and the reaper (or a heartbeat
    and the reaper) queue on it instead of deadlocking. NO KEY UPDATE leaves the foreign-key
    checks of event and result inserts unblocked. SQLite ignores it: its IMMEDIATE
    transactions already serialize writers.
    """
    if transaction.get_connection().features.has_select_for_update:
        list(Task.objects.select_for_update(no_key=True).filter(pk=task_id).values_list("pk"))


def _close_execution(execution: TaskExecution, status: str, now: datetime, **changes: Any) -> bool:
    return (
        TaskExecution.objects.filter(pk=execution.pk, status=ExecutionStatus.RUNNING).update(
            status=status,
            completed_at=now,
            duration=(now - execution.started_at).total_seconds(),
            lease_expires_at=None,
            **changes,
        )
        == 1
    )


def _fenced(execution: TaskExecution) -> Any:
    """The running task as this execution knows it, if nobody has moved on since."""
    return Task.objects.filter(
        pk=execution.task_id, status=Status.RUNNING, total_attempts=execution.attempt
    )


def complete_attempt(
    execution: TaskExecution, *, result: Any = None, worker_id: str = "", refresh: bool = True
) -> Task | None:
    """RUNNING -> COMPLETED, if this execution still holds the task.

    Returns the task as it now is, or None with ``refresh=False`` (saves a read per task).
    """
    now = timezone.now()
    with transaction.atomic():
        # The fenced task UPDATE comes first: it takes the task row lock before the execution,
        # the order every writer keeps (see _lock_task), without a statement of its own.
        updated = _fenced(execution).update(
            status=Status.COMPLETED,
            progress=100,
            result=result,
            error_message="",
            finished_at=now,
            updated_at=now,
        )
        if updated != 1 or not _close_execution(execution, ExecutionStatus.COMPLETED, now):
            # Rolls everything back; the runner then closes the execution as stopped or
            # cancelled to match what the user did meanwhile (or leaves a LOST one alone).
            raise _refusal(execution.task_id, "complete")
        _record(
            execution.task_id,
            EventVerb.COMPLETED,
            f"worker:{worker_id or execution.worker_id}",
            from_status=Status.RUNNING,
            to_status=Status.COMPLETED,
            execution_id=execution.pk,
            data={"attempt": execution.attempt},
            at=now,
        )
    return Task.objects.get(pk=execution.task_id) if refresh else None


def fail_attempt(
    execution: TaskExecution,
    *,
    error: str,
    traceback: str = "",
    permanent: bool = False,
    retry_delay: float = 0.0,
    worker_id: str = "",
) -> Task:
    """RUNNING -> QUEUED after ``retry_delay`` while attempts remain, else RUNNING -> FAILED."""
    now = timezone.now()
    error = error[:10_000]
    with transaction.atomic():
        # A locking read of the fenced task: the row lock first, as every writer takes it, and
        # the attempt counts to decide between a retry and the end.
        task = _fenced(execution).select_for_update(no_key=True).first()
        if task is None or not _close_execution(
            execution, ExecutionStatus.FAILED, now, error_message=error, traceback=traceback
        ):
            raise _refusal(execution.task_id, "fail")
        actor = f"worker:{worker_id or execution.worker_id}"
        data = {"attempt": execution.attempt, "error": error[:500]}
        if not permanent and task.attempts < task.max_attempts:
            run_after = now + timedelta(seconds=max(retry_delay, 0.0))
            to_status, verb = Status.QUEUED, EventVerb.REQUEUED
            changes: dict[str, Any] = {"run_after": run_after}
            data["retry_in"] = round(max(retry_delay, 0.0), 3)
            _dispatch_on_commit(task.pk, priority=task.priority, run_after=run_after)
        else:
            to_status, verb = Status.FAILED, EventVerb.FAILED
            changes = {"finished_at": now}
            data["permanent"] = permanent
        updated = _fenced(execution).update(
            status=to_status, error_message=error, updated_at=now, **changes
        )
        if updated != 1:
            raise _refusal(execution.task_id, "fail")
        if to_status == Status.FAILED:
            _refund(task.pk, now, "failed")
        _record(
            task.pk,
            verb,
            actor,
            from_status=Status.RUNNING,
            to_status=to_status,
            execution_id=execution.pk,
            data=data,
            at=now,
        )
    return Task.objects.get(pk=execution.task_id)


def defer_attempt(
    execution: TaskExecution, *, seconds: float, message: str = "", worker_id: str = ""
) -> Task:
    """Keep the task RUNNING but release the worker; the engine calls again after ``seconds``.

    The lease is stretched over the wait, so an engine that loses the follow-up job is noticed
    by the reaper once the wait plus one lease has passed.
    """
    now = timezone.now()
    run_after = now + timedelta(seconds=seconds)
    with transaction.atomic():
        _lock_task(execution.task_id)
        updated = TaskExecution.objects.filter(
            pk=execution.pk, status=ExecutionStatus.RUNNING
        ).update(
            status=ExecutionStatus.WAITING,
            lease_expires_at=run_after + timedelta(seconds=lease_seconds()),
        )
        task = _fenced(execution).first()
        if updated != 1 or task is None:
            raise _refusal(execution.task_id, "defer")
        changes: dict[str, Any] = {"run_after": run_after, "updated_at": now}
        if message:
            changes["progress_message"] = message[:255]
        # On PostgreSQL a cancel can commit between the read above and this update; the row
        # count is what decides, or the execution would wait on a task nobody will resume.
        if _fenced(execution).update(**changes) != 1:
            raise _refusal(execution.task_id, "defer")
        _record(
            task.pk,
            EventVerb.WAITING,
            f"worker:{worker_id or execution.worker_id}",
            from_status=Status.RUNNING,
            to_status=Status.RUNNING,
            execution_id=execution.pk,
            data={"seconds": seconds, "message": message[:255]},
            at=now,
        )
        _dispatch_on_commit(task.pk, priority=task.priority, run_after=run_after)
    return Task.objects.get(pk=execution.task_id)


def interrupt_attempt(execution: TaskExecution) -> str | None:
    """Close an execution whose task was stopped or cancelled while it ran.

    The task's own transition was recorded by ``stop_task``/``cancel_task``; this only ends the
    attempt to match. Returns the execution's final status, or None if it was already closed
    (for example, the reaper called it LOST first).
    """
    now = timezone.now()
    status = _current_status(execution.task_id)
    final = ExecutionStatus.CANCELLED if status == Status.CANCELLED else ExecutionStatus.STOPPED
    note = f"Task was {str(status).lower()} while this attempt ran"
    if _close_execution(execution, final, now, error_message=note):
        return final
    return None


def redispatch_task(task: Task | int, *, reason: str, now: datetime | None = None) -> Task:
    """Hand a QUEUED task to the engine again (its job was lost). Not a status change."""
    task_id = _task_id(task)
    now = now or timezone.now()
    with transaction.atomic():
        if Task.objects.filter(pk=task_id, status=Status.QUEUED).update(updated_at=now) != 1:
            raise _refusal(task_id, "redispatch")
        task = Task.objects.get(pk=task_id)
        _record(
            task_id,
            EventVerb.REQUEUED,
            "system:reaper",
            from_status=Status.QUEUED,
            to_status=Status.QUEUED,
            data={"reason": reason},
            at=now,
        )
        _dispatch_on_commit(task_id, priority=task.priority, run_after=None)
    return task


# --- the reaper ------------------------------------------------------------------------------


@dataclass
class ReapReport:
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
        _dispatch_on_commit(task.pk, priority=task.priority, run_after=None)
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


def reap_lost_attempts(*, now: datetime | None = None, limit: int = 500) -> ReapReport:
    """Turn open executions whose lease expired into LOST, and requeue or fail their tasks.

    See ``_lose_attempt``: a lost attempt does not spend one of the task's attempts, up to the
    kind's limit of lost attempts. A task that was stopped or cancelled while its worker died
    keeps that status: the pending cancel wins, it is never retried.
    """
    now = now or timezone.now()
    report = ReapReport()
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


def renew_leases(execution_ids: list[int], *, lease: float | None = None) -> int:
    """Heartbeat: push the lease of these running executions forward. Not a transition."""
    if not execution_ids:
        return 0
    now = timezone.now()
    return TaskExecution.objects.filter(
        pk__in=execution_ids, status=ExecutionStatus.RUNNING
    ).update(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease or lease_seconds()))
