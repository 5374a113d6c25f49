"""Helpers for the lifecycle, race and context tests.

Every state is reached through ``taskcenter.lifecycle`` itself, so a test starts from a row the
real code wrote. The one exception is a task back in PENDING while an attempt of it is open: no
path leads there, and ``attempt_in`` forces it only to prove the fences hold anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from taskcenter import lifecycle
from taskcenter.errors import InvalidTransition
from taskcenter.execution.dispatch import RUN_ATTEMPT_PATH
from taskcenter.lifecycle import client_actions
from taskcenter.models import Status, Task, TaskEvent, TaskExecution

WORKER = "w1"
LEASE = 60.0


def engine_jobs(task_id: int) -> int:
    """How many engine jobs ask to run an attempt of ``task_id``."""
    rows = DBTaskResult.objects.filter(task_path=RUN_ATTEMPT_PATH).values_list(
        "args_kwargs", flat=True
    )
    return sum(1 for args_kwargs in rows if (args_kwargs or {}).get("args") == [task_id])


def events(task_id: int, verb: str | None = None) -> list[TaskEvent]:
    qs = TaskEvent.objects.filter(task_id=task_id).order_by("id")
    return list(qs.filter(verb=verb) if verb else qs)


def snapshot(task_id: int) -> dict[str, Any]:
    """Everything a transition could touch: the task row, its executions, events and jobs."""
    return {
        "task": Task.objects.filter(pk=task_id).values().get(),
        "executions": list(TaskExecution.objects.filter(task_id=task_id).order_by("id").values()),
        "events": list(TaskEvent.objects.filter(task_id=task_id).order_by("id").values()),
        "jobs": engine_jobs(task_id),
    }


def later(seconds: float = 3 * LEASE):
    """A moment after every lease handed out in the test has expired (for the reaper)."""
    return timezone.now() + timedelta(seconds=seconds)


def task_in(status: str, make_task: Callable[..., Task], **fields: Any) -> Task:
    """A task brought to ``status`` through the lifecycle (``max_attempts`` 3 unless given)."""
    fields.setdefault("max_attempts", 3)
    if status == Status.PENDING:
        task = make_task(**fields)
    elif status == Status.CANCELLED:
        task = lifecycle.cancel_task(make_task(**fields))
    elif status == Status.QUEUED:
        task = make_task(start=True, **fields)
    elif status == Status.STOPPED:
        task = lifecycle.stop_task(make_task(start=True, **fields))
    else:
        task, _ = attempt_in(status, make_task, **fields)
    task.refresh_from_db()
    assert task.status == status
    return task


def attempt_in(
    status: str, make_task: Callable[..., Task], **fields: Any
) -> tuple[Task, TaskExecution]:
    """A claimed attempt whose task was then brought to ``status``.

    QUEUED, STOPPED and CANCELLED leave the execution RUNNING (its worker has not noticed yet);
    COMPLETED and FAILED are the execution's own outcome, so it is closed.
    """
    fields.setdefault("max_attempts", 3)
    task = make_task(start=True, **fields)
    task, execution = lifecycle.claim_attempt(task, worker_id=WORKER, lease=LEASE)
    if status == Status.STOPPED:
        lifecycle.stop_task(task)
    elif status == Status.CANCELLED:
        lifecycle.cancel_task(task)
    elif status == Status.QUEUED:
        lifecycle.start_task(lifecycle.stop_task(task))
    elif status == Status.COMPLETED:
        lifecycle.complete_attempt(execution, result={"ok": True})
    elif status == Status.FAILED:
        lifecycle.fail_attempt(execution, error="boom", permanent=True)
    elif status == Status.PENDING:
        Task.objects.filter(pk=task.pk).update(status=Status.PENDING)
    task.refresh_from_db()
    execution.refresh_from_db()
    assert task.status == status
    return task, execution


def assert_refused(
    call: Callable[[], object], task_id: int, current_status: str, capture: Any
) -> InvalidTransition:
    """``call`` raises InvalidTransition naming ``current_status`` and changes nothing at all."""
    before = snapshot(task_id)
    with capture(execute=True) as callbacks, pytest.raises(InvalidTransition) as refused:
        call()
    assert refused.value.task_id == task_id
    assert refused.value.current_status == current_status
    assert callbacks == [], "a refused transition must not enqueue anything"
    assert snapshot(task_id) == before
    return refused.value


def assert_one_event(
    task_id: int,
    before: int,
    *,
    verb: str,
    from_status: str,
    to_status: str,
    actor: str,
    actor_user: Any = None,
) -> TaskEvent:
    """Exactly one event was written since there were ``before``, and it says this."""
    new = events(task_id)[before:]
    assert [e.verb for e in new] == [verb]
    event = new[0]
    assert (event.from_status, event.to_status) == (from_status, to_status)
    assert event.actor == actor
    assert event.actor_user == actor_user
    return event


def close_connection() -> None:
    """Each racing thread has its own connection; close it so the test database can be reset."""
    connection.close()


def claim_at_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task a start or retry hands to the engine is claimed by a worker the moment the
    action commits: the fastest a real worker could be, every time."""
    dispatch = client_actions._dispatch_with_change

    def dispatch_then_claim(task_id: int, **kwargs: Any) -> None:
        dispatch(task_id, **kwargs)
        transaction.on_commit(
            lambda: lifecycle.claim_attempt(task_id, worker_id=WORKER, lease=LEASE)
        )

    monkeypatch.setattr(client_actions, "_dispatch_with_change", dispatch_then_claim)
