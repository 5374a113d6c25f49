"""What workers do: claim attempts, report their outcome, defer them (poll again), give them
back, renew their leases. Outcomes are fenced by execution and attempt number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from taskcenter.errors import InvalidTransition
from taskcenter.lib.bulk_insert import RowInserter
from taskcenter.lib.bulk_update import RowUpdater
from taskcenter.lib.returned_rows import ReturnedRows
from taskcenter.lifecycle.transitions import (
    _current_status,
    _dispatch_with_change,
    _record,
    _refund,
    _refusal,
    _task_id,
    lease_seconds,
)
from taskcenter.models import (
    EventVerb,
    ExecutionStatus,
    Status,
    Task,
    TaskEvent,
    TaskExecution,
    WaitingFor,
)

# Rows the worker writes for many attempts at once (see ``lib.bulk_insert``).
_EXECUTION_FIELDS = [f for f in TaskExecution._meta.concrete_fields if not f.primary_key]
_EXECUTION_ROWS = RowInserter(TaskExecution, [f.name for f in _EXECUTION_FIELDS], returning=True)
EVENT_ROWS = RowInserter(
    TaskEvent,
    ("task", "execution", "actor_user", "actor", "verb", "from_status", "to_status", "data", "at"),
    returning=False,
)


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
    caller then claims one at a time. One transaction of three statements claims a whole batch:
    the tasks' UPDATE, which returns the rows it moved (``_claim_statement``), the executions'
    INSERT and the events' INSERT.
    """
    now = timezone.now()
    lease_until = now + timedelta(seconds=lease or lease_seconds())
    wanted = list(dict.fromkeys(task_ids))
    if not wanted:
        return []
    with transaction.atomic():
        connection = transaction.get_connection()
        when = _STARTED_AT.get_db_prep_save(now, connection)
        with connection.cursor() as cursor:
            cursor.execute(
                _claim_statement(connection, len(wanted), skip_locked),
                [Status.RUNNING.value, when, when, *wanted, Status.QUEUED.value, when],
            )
            tasks = {task.pk: task for task in _CLAIMED.load(cursor.fetchall(), connection)}
        if not tasks:
            return []
        ordered = [tasks[pk] for pk in wanted if pk in tasks]
        executions = [
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
        ids = _EXECUTION_ROWS.insert(
            [tuple(getattr(e, f.attname) for f in _EXECUTION_FIELDS) for e in executions]
        )
        for execution, pk in zip(executions, ids, strict=True):
            execution.pk = pk
            execution._state.adding = False
        actor = f"worker:{worker_id}"
        verb, queued, running = EventVerb.STARTED.value, Status.QUEUED.value, Status.RUNNING.value
        EVENT_ROWS.insert(
            [
                (task.pk, e.pk, None, actor, verb, queued, running, {"attempt": e.attempt}, now)
                for task, e in zip(ordered, executions, strict=True)
            ]
        )
    return list(zip(ordered, executions, strict=True))


_CLAIMED = ReturnedRows(Task)
_STARTED_AT = Task._meta.get_field("started_at")
_CLAIM_STATEMENTS: dict[tuple[str, int, bool], str] = {}


def _claim_statement(connection: Any, count: int, skip_locked: bool) -> str:
    """QUEUED -> RUNNING for ``count`` task ids that are due, returning the rows it moved.

    Params: RUNNING, now (``started_at``), now (``updated_at``), the ids, QUEUED, now (due by).
    Built once per database kind, batch size and locking. The returned rows are exactly those
    moved, so no locking read has to come first: on PostgreSQL an UPDATE that finds a row locked
    waits and re-checks its status; with ``skip_locked`` the rows to move come from a
    ``FOR NO KEY UPDATE SKIP LOCKED`` subquery instead (NO KEY: the foreign-key checks of the
    event and execution inserts stay unblocked). SQLite's IMMEDIATE transaction is the lock.
    """
    key = (connection.vendor, count, skip_locked)
    if key in _CLAIM_STATEMENTS:
        return _CLAIM_STATEMENTS[key]
    qn = connection.ops.quote_name
    table = qn(Task._meta.db_table)
    id_, status, run_after = qn("id"), qn("status"), qn("run_after")
    attempts, total = qn("attempts"), qn("total_attempts")
    due = (
        f"{id_} IN ({', '.join(['%s'] * count)}) AND {status} = %s"
        f" AND ({run_after} IS NULL OR {run_after} <= %s)"
    )
    if skip_locked and connection.vendor == "postgresql":
        due = f"{id_} IN (SELECT {id_} FROM {table} WHERE {due} FOR NO KEY UPDATE SKIP LOCKED)"  # noqa: S608
    sql = (
        f"UPDATE {table} SET {status} = %s, {attempts} = {attempts} + 1,"  # noqa: S608 - names
        f" {total} = {total} + 1, {qn('started_at')} = %s, {qn('updated_at')} = %s,"
        f" {run_after} = NULL WHERE {due} {_CLAIMED.returning(connection)}"
    )
    _CLAIM_STATEMENTS[key] = sql
    return sql


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


@dataclass(frozen=True)
class Completion:
    """An attempt whose handler returned: what ``complete_attempt`` would be called with."""

    execution: TaskExecution
    result: Any = None
    worker_id: str = ""


def complete_attempts(completions: Sequence[Completion]) -> list[Completion]:
    """``complete_attempt`` for many attempts in one transaction (group commit).

    Returns the completions that were refused (the task was stopped, cancelled or reaped
    meanwhile), which the caller closes with ``interrupt_attempt`` as after a refused
    ``complete_attempt``; the others are COMPLETED, each with its event, exactly as one by one.

    A worker whose attempts end together pays for one transaction instead of one each, and for
    three statements instead of three per task: the fenced task UPDATE, the execution UPDATE
    and the events INSERT each cover the whole group (on PostgreSQL the tally triggers, being
    statement triggers, then also run once). If any task of the group has moved on, the group's
    statements would leave it half-written, so the transaction is rolled back and the group
    written one attempt at a time, where each refusal is decided alone.

    A group of one takes the same statements: they are built once per group size, where
    ``complete_attempt``'s ORM queries are compiled at every call, inside the transaction. On
    SQLite that compilation held the one write lock for most of a completion's 2.9 ms (p50,
    measured in a worker running one task at a time), while ``create_task`` waited for it.
    """
    if not completions:
        return []
    try:
        _complete_together(completions)
    except _GroupRefused:
        return [c for c in completions if not _completed_alone(c)]
    return []


class _GroupRefused(Exception):
    pass


def _completed_alone(completion: Completion) -> bool:
    try:
        complete_attempt(
            completion.execution,
            result=completion.result,
            worker_id=completion.worker_id,
            refresh=False,
        )
    except InvalidTransition:
        return False
    return True


# The group's three statements, built once per group size (see ``lib.bulk_update``).
_COMPLETED_TASKS = RowUpdater(
    Task,
    match=("id", "total_attempts"),
    values=("result",),
    constants=("status", "progress", "error_message", "finished_at", "updated_at"),
    conditions=("status",),
)
_COMPLETED_EXECUTIONS = RowUpdater(
    TaskExecution,
    match=("id",),
    values=("duration",),
    constants=("status", "completed_at", "lease_expires_at"),
    conditions=("status",),
)


def _complete_together(completions: Sequence[Completion]) -> None:
    now = timezone.now()
    executions = [c.execution for c in completions]
    with transaction.atomic():
        # Task rows first, the order every writer keeps (see _lock_task).
        rows = [(c.execution.task_id, c.execution.attempt, c.result) for c in completions]
        tasks = _COMPLETED_TASKS.update(
            rows,
            set={
                "status": Status.COMPLETED.value,
                "progress": 100,
                "error_message": "",
                "finished_at": now,
                "updated_at": now,
            },
            where={"status": Status.RUNNING.value},
        )
        closed = 0
        if tasks == len(executions):
            closed = _COMPLETED_EXECUTIONS.update(
                [(e.pk, (now - e.started_at).total_seconds()) for e in executions],
                set={
                    "status": ExecutionStatus.COMPLETED.value,
                    "completed_at": now,
                    "lease_expires_at": None,
                },
                where={"status": ExecutionStatus.RUNNING.value},
            )
        if closed != len(executions):
            raise _GroupRefused
        verb, running, completed = (
            EventVerb.COMPLETED.value,
            Status.RUNNING.value,
            Status.COMPLETED.value,
        )
        EVENT_ROWS.insert(
            [
                (
                    e.task_id,
                    e.pk,
                    None,
                    f"worker:{c.worker_id or e.worker_id}",
                    verb,
                    running,
                    completed,
                    {"attempt": e.attempt},
                    now,
                )
                for c, e in zip(completions, executions, strict=True)
            ]
        )


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
            _dispatch_with_change(task.pk, priority=task.priority, run_after=run_after)
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
    execution: TaskExecution,
    *,
    seconds: float,
    message: str = "",
    worker_id: str = "",
    waiting_for: str = WaitingFor.PLATFORM,
) -> Task:
    """Keep the task RUNNING but release the worker; the engine calls again after ``seconds``.

    The lease is stretched over the wait, so an engine that loses the follow-up job is noticed
    by the reaper once the wait plus one lease has passed. ``waiting_for`` (a remote platform
    or a busy account) is kept on the execution for the queues page.
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
            waiting_for=waiting_for,
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
            data={"seconds": seconds, "message": message[:255]}
            | ({"waiting_for": waiting_for} if waiting_for != WaitingFor.PLATFORM else {}),
            at=now,
        )
        _dispatch_with_change(task.pk, priority=task.priority, run_after=run_after)
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
        _dispatch_with_change(task_id, priority=task.priority, run_after=None)
    return task


def renew_leases(execution_ids: list[int], *, lease: float | None = None) -> int:
    """Heartbeat: push the lease of these running executions forward. Not a transition."""
    if not execution_ids:
        return 0
    now = timezone.now()
    return TaskExecution.objects.filter(
        pk__in=execution_ids, status=ExecutionStatus.RUNNING
    ).update(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease or lease_seconds()))
