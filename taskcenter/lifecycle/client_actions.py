"""What clients, operators and commands do to a task: create, start, stop, cancel, retry,
edit, delete. Each is one guarded transition (see ``transitions``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from taskcenter.errors import InvalidTransition
from taskcenter.kinds import get_kind
from taskcenter.lifecycle import hooks
from taskcenter.lifecycle.submission import submit_one
from taskcenter.lifecycle.transitions import (
    _MAX_ROUNDS,
    CANCELLABLE,
    RETRYABLE,
    STARTABLE,
    STOPPABLE,
    Actor,
    _actor_fields,
    _close_waiting_executions,
    _dispatch_with_change,
    _move,
    _record,
    _refund,
    _refusal,
    _task_id,
    logger,
)
from taskcenter.models import EventVerb, ExecutionStatus, Status, Task

# --- client actions --------------------------------------------------------------------------


def create_task(
    *,
    owner: User,
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
    ``InsufficientQuota``; nothing is written then. ``create_tasks`` makes many at once; both
    write through ``submission``.
    """
    return submit_one(
        owner=owner,
        task_type=task_type,
        parameters=parameters,
        start=start,
        actor=actor,
        max_attempts=max_attempts,
        fields=fields,
    )


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
        _dispatch_with_change(task.pk, priority=task.priority, run_after=None)
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
        return _as_left(task.pk)


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
        hooks.billing().recharge(task.pk, action="retry", current_status=was)
        _dispatch_with_change(task.pk, priority=task.priority, run_after=None)
        return _as_left(task.pk)


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
        return _as_left(task_id)


# Not yet claimed by a worker: a QUEUED task's next attempt reads its parameters when claimed.
UNCLAIMED = (Status.PENDING, Status.QUEUED)


def reconfigure_unclaimed_task(
    task: Task | int, *, config: dict[str, Any], actor: Actor = None
) -> Task:
    """Merge ``config`` into the parameters of a task no worker has claimed (PENDING or QUEUED).

    Unlike ``update_task`` this also allows QUEUED (the data sync dialect edits "pending"
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
                return _as_left(task_id)
    raise _refusal(task_id, "reconfigure")


def _as_left(task_id: int) -> Task:
    """The task as the action left it, read before its transaction commits.

    Read after the commit, a worker woken by it may already have claimed a retried task, and
    what the caller shows (a retry's "queued") would depend on that race.
    """
    return Task.objects.get(pk=task_id)


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
