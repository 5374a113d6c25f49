"""Runs one attempt of a task: claim it, call its handler, record the outcome.

``run_attempt`` is what every engine ends up calling, whether the job came through our own
``run_worker``, django-tasks-db's ``db_worker`` or another ``django_tasks`` worker.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
from functools import partial
from typing import TYPE_CHECKING

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F

from taskcenter import lifecycle
from taskcenter.errors import (
    AttemptInterrupted,
    InvalidTransition,
    PermanentError,
    PollAgain,
    RetryableError,
    UnknownKind,
)
from taskcenter.execution.attempt_metrics import observe_attempt
from taskcenter.execution.heartbeat import heartbeat
from taskcenter.execution.worker_registry import process_outcomes
from taskcenter.kinds import get_kind
from taskcenter.kinds.context import AttemptContext
from taskcenter.lib.db_outage import DATABASE_UNAVAILABLE, retry_while_unavailable
from taskcenter.models import ExecutionStatus, Status, Task, TaskExecution

if TYPE_CHECKING:
    from taskcenter.execution.completions import PendingCompletions

logger = logging.getLogger(__name__)


# The name a worker process gave itself (``run_worker --worker-id``), for attempts an engine
# starts without naming the worker (RQ calls ``run_attempt(task_id)`` and nothing more).
_process_worker_id: str | None = None


def name_this_worker(worker_id: str) -> None:
    global _process_worker_id
    _process_worker_id = worker_id


def default_worker_id() -> str:
    return _process_worker_id or f"{socket.gethostname()}:{os.getpid()}"


def _to_json(value: object) -> object:
    """The handler's return value as stored JSON; raises TypeError/ValueError if it is not."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _begin(task_id: int, worker_id: str, lease: float) -> tuple[Task, TaskExecution]:
    """Claim a queued task, or resume the waiting execution of a polled one."""
    # Claim first: it is the common case, and its refusal says whether the task is RUNNING, so
    # the usual job costs no extra read.
    try:
        return lifecycle.claim_attempt(task_id, worker_id=worker_id, lease=lease)
    except InvalidTransition as refused:
        if refused.current_status != Status.RUNNING:
            raise
        waiting = TaskExecution.objects.filter(
            task_id=task_id, attempt=F("task__total_attempts"), status=ExecutionStatus.WAITING
        ).first()
        if waiting is None:
            raise
    return lifecycle.resume_attempt(waiting, worker_id=worker_id, lease=lease)


def run_attempt(
    task_id: int,
    *,
    worker_id: str | None = None,
    lease: float | None = None,
    completions: PendingCompletions | None = None,
) -> str:
    """Run one attempt of ``task_id``; returns what happened (for logs and the engine's record).

    A job for a task that is no longer waiting (cancelled, already running elsewhere) is a no-op:
    engines deliver at least once, so duplicates are expected and harmless. With
    ``completions`` a successful attempt's result is left there for the worker to write with
    others (group commit) instead of being committed here.
    """
    worker_id = worker_id or default_worker_id()
    lease = lease or lifecycle.lease_seconds()
    try:
        task, execution = _begin(task_id, worker_id, lease)
    except InvalidTransition as refused:
        logger.debug("Skipping job for task %s: %s", task_id, refused)
        process_outcomes.add("skipped")
        return "skipped"

    return run_claimed_attempt(
        task, execution, worker_id=worker_id, lease=lease, completions=completions
    )


def run_claimed_attempt(
    task: Task,
    execution: TaskExecution,
    *,
    worker_id: str,
    lease: float,
    completions: PendingCompletions | None = None,
) -> str:
    """Run the handler of an attempt already claimed (see ``lifecycle.claim_attempts``)."""
    heartbeat.track(execution.pk)
    began = time.monotonic()
    outcome = "interrupted"  # what an exception out of the handler's bookkeeping counts as
    try:
        outcome = _run_handler(
            task, execution, worker_id=worker_id, lease=lease, completions=completions
        )
    finally:
        heartbeat.untrack(execution.pk)
        observe_attempt(task.task_type, outcome, time.monotonic() - began)
    process_outcomes.add(outcome)  # the registry's counters on the RQ engine
    return outcome


def _run_handler(
    task: Task,
    execution: TaskExecution,
    *,
    worker_id: str,
    lease: float,
    completions: PendingCompletions | None,
) -> str:
    try:
        kind = get_kind(task.task_type)
    except UnknownKind as exc:
        # Registered at creation, gone now (code removed or not deployed on this worker).
        return _record_failure(execution, exc, worker_id=worker_id, permanent=True, delay=0.0)

    ctx = AttemptContext(
        task=task, execution=execution, kind=kind, worker_id=worker_id, lease=lease
    )
    try:
        returned = kind.handler(task, ctx)
    except PollAgain as poll:
        try:
            retry_while_unavailable(
                partial(
                    lifecycle.defer_attempt,
                    execution,
                    seconds=poll.seconds,
                    message=poll.message,
                    waiting_for=poll.waiting_for,
                    worker_id=worker_id,
                ),
                what=f"deferring task {task.pk}",
                patience=lease,
            )
        except InvalidTransition:
            lifecycle.interrupt_attempt(execution)
            return "interrupted"
        return "waiting"
    except AttemptInterrupted as interrupted:
        lifecycle.interrupt_attempt(execution)
        logger.info("Task %s attempt %s ended: %s", task.pk, execution.attempt, interrupted.reason)
        return interrupted.reason
    except DATABASE_UNAVAILABLE as exc:
        # The database went away under the handler (a restart, a failover): not the task's
        # failure, and recording it as one would spend, or end, the task's attempts.
        return _release(execution, exc, worker_id=worker_id, lease=lease)
    except Exception as exc:
        retry_after = exc.retry_after if isinstance(exc, RetryableError) else None
        delay = retry_after if retry_after is not None else kind.retry.delay_for(task.attempts)
        permanent = kind.retry.is_permanent(exc)
        return _record_failure(
            execution, exc, worker_id=worker_id, permanent=permanent, delay=delay
        )

    try:
        result = _to_json(returned)
    except (TypeError, ValueError) as exc:
        error = PermanentError(f"Handler returned a value that is not JSON: {exc}")
        return _record_failure(execution, error, worker_id=worker_id, permanent=True, delay=0.0)

    if completions is not None:
        completions.add(lifecycle.Completion(execution, result, worker_id))
        return "completed"
    try:
        # Retried through a database restart: the result is in hand, and running the handler
        # again because one write failed would do its work twice. A commit whose answer was
        # lost is refused on the retry by the fence (the task is no longer RUNNING).
        retry_while_unavailable(
            lambda: lifecycle.complete_attempt(
                execution, result=result, worker_id=worker_id, refresh=False
            ),
            what=f"completing task {task.pk}",
            patience=lease,
        )
    except InvalidTransition:
        lifecycle.interrupt_attempt(execution)
        return "discarded"
    return "completed"


def _record_failure(
    execution: TaskExecution, exc: BaseException, *, worker_id: str, permanent: bool, delay: float
) -> str:
    # Errors a handler raised on purpose carry a message meant for people; anything else is a
    # bug or a library error whose type says as much as its message.
    if isinstance(exc, PermanentError | RetryableError | UnknownKind) and str(exc):
        error = str(exc)
    else:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    try:
        task = retry_while_unavailable(
            lambda: lifecycle.fail_attempt(
                execution,
                error=error,
                traceback="".join(traceback.format_exception(exc)),
                permanent=permanent,
                retry_delay=delay,
                worker_id=worker_id,
            ),
            what=f"recording the failure of task {execution.task_id}",
            patience=lifecycle.lease_seconds(),
        )
    except InvalidTransition:
        lifecycle.interrupt_attempt(execution)
        return "interrupted"
    return "retrying" if task.status == Status.QUEUED else "failed"


def _release(execution: TaskExecution, exc: BaseException, *, worker_id: str, lease: float) -> str:
    """Hand the attempt back (LOST, requeued without spending an attempt) once the database
    answers again. If it stays away longer than the lease, the error propagates: the worker
    hands the engine job back and the reaper recovers the attempt when its lease has run out.
    """
    logger.warning(
        "Task %s attempt %s lost its database connection (%s); releasing it",
        execution.task_id,
        execution.attempt,
        exc,
    )
    error = f"Database unavailable during the attempt: {type(exc).__name__}: {exc}"
    released = retry_while_unavailable(
        lambda: lifecycle.release_attempt(execution, error=error, worker_id=worker_id),
        what=f"releasing task {execution.task_id}",
        patience=lease,
    )
    return "lost" if released is not None else "interrupted"
