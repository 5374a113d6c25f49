"""Races between clients, workers and the reaper, on real concurrent database connections.

Each racer is a thread with its own connection; a barrier releases them together once every
connection is open. Every race runs many times and checks the whole outcome each time: one
legal final state, exactly the events of the transitions that happened, and no second engine
job. The only exception a racer may meet is InvalidTransition: "database is locked", a
deadlock or a serialization failure is a bug, never something to retry here.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from taskcenter import lifecycle
from taskcenter.errors import LeaseLost
from taskcenter.kinds import get_kind
from taskcenter.kinds.context import AttemptContext
from taskcenter.models import EventVerb, ExecutionStatus, Status, Task, TaskExecution
from tests.support.lifecycle import LEASE, WORKER, claim_at_commit, engine_jobs, events, later
from tests.support.races import ROUNDS, race

# Some tasks here cost quota; their owner can pay for every round.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("funded")]


def verbs(task_id: int) -> list[str]:
    return [event.verb for event in events(task_id)]


def count(task_id: int, verb: str) -> int:
    return verbs(task_id).count(verb)


def running(make_task, **fields: Any) -> tuple[Task, TaskExecution]:
    fields.setdefault("max_attempts", 3)
    task = make_task(start=True, **fields)
    return lifecycle.claim_attempt(task, worker_id=WORKER, lease=LEASE)


# --- client against client -------------------------------------------------------------------


def test_two_cancels_of_a_running_task_exactly_one_wins(make_task):
    for _ in range(ROUNDS):
        task, _ = running(make_task, quota=5)

        outcomes = race(
            partial(lifecycle.cancel_task, task.pk), partial(lifecycle.cancel_task, task.pk)
        )

        assert sum(o.ok for o in outcomes) == 1
        (loser,) = [o for o in outcomes if not o.ok]
        assert loser.error.current_status == Status.CANCELLED
        task.refresh_from_db()
        assert task.status == Status.CANCELLED
        assert task.quota_refunded_at is not None
        assert count(task.pk, EventVerb.CANCELLED) == 1


# --- client against worker -------------------------------------------------------------------


def test_cancel_racing_complete_ends_in_exactly_one_outcome(make_task):
    for _ in range(ROUNDS):
        task, execution = running(make_task)

        cancel, complete = race(
            partial(lifecycle.cancel_task, task.pk),
            partial(lifecycle.complete_attempt, execution, result={"ok": True}),
        )

        assert cancel.ok != complete.ok, "exactly one of them wins"
        task.refresh_from_db()
        execution.refresh_from_db()
        if cancel.ok:
            assert complete.error.current_status == Status.CANCELLED
            assert task.status == Status.CANCELLED
            assert execution.status == ExecutionStatus.RUNNING
            assert lifecycle.interrupt_attempt(execution) == ExecutionStatus.CANCELLED
            assert verbs(task.pk)[-1] == EventVerb.CANCELLED
        else:
            assert cancel.error.current_status == Status.COMPLETED
            assert task.status == Status.COMPLETED
            assert task.result == {"ok": True}
            assert execution.status == ExecutionStatus.COMPLETED
            assert verbs(task.pk)[-1] == EventVerb.COMPLETED
        assert count(task.pk, EventVerb.CANCELLED) + count(task.pk, EventVerb.COMPLETED) == 1


def test_cancel_racing_a_retryable_failure_always_ends_cancelled(make_task):
    for _ in range(ROUNDS):
        task, execution = running(make_task)

        cancel, fail = race(
            partial(lifecycle.cancel_task, task.pk),
            partial(lifecycle.fail_attempt, execution, error="timeout", retry_delay=0),
        )

        assert cancel.ok, "a requeued task can still be cancelled"
        if not fail.ok:
            assert fail.error.current_status == Status.CANCELLED
            assert lifecycle.interrupt_attempt(execution) == ExecutionStatus.CANCELLED
        task.refresh_from_db()
        assert task.status == Status.CANCELLED
        closed_as = ExecutionStatus.FAILED if fail.ok else ExecutionStatus.CANCELLED
        assert TaskExecution.objects.get(pk=execution.pk).status == closed_as
        assert count(task.pk, EventVerb.REQUEUED) == int(fail.ok)
        assert count(task.pk, EventVerb.CANCELLED) == 1
        cancelled = events(task.pk, EventVerb.CANCELLED)[0]
        assert cancelled.from_status == (Status.QUEUED if fail.ok else Status.RUNNING)


def test_stop_racing_claim_always_stops_the_task(make_task):
    for _ in range(ROUNDS):
        task = make_task(start=True)

        stop, claim = race(
            partial(lifecycle.stop_task, task.pk),
            partial(lifecycle.claim_attempt, task.pk, worker_id=WORKER),
        )

        assert stop.ok, "a task is stoppable both before and after it is claimed"
        task.refresh_from_db()
        assert task.status == Status.STOPPED
        stopped = events(task.pk, EventVerb.STOPPED)
        assert len(stopped) == 1
        if claim.ok:
            _, execution = claim.value
            assert stopped[0].from_status == Status.RUNNING
            assert count(task.pk, EventVerb.STARTED) == 1
            assert lifecycle.interrupt_attempt(execution) == ExecutionStatus.STOPPED
        else:
            assert claim.error.current_status == Status.STOPPED
            assert stopped[0].from_status == Status.QUEUED
            assert count(task.pk, EventVerb.STARTED) == 0
            assert not TaskExecution.objects.filter(task_id=task.pk).exists()


def test_defer_racing_cancel_never_leaves_a_waiting_execution(make_task):
    for _ in range(ROUNDS):
        task, execution = running(make_task)

        cancel, defer = race(
            partial(lifecycle.cancel_task, task.pk),
            partial(lifecycle.defer_attempt, execution, seconds=30),
        )

        assert cancel.ok
        if not defer.ok:
            assert defer.error.current_status == Status.CANCELLED
            assert lifecycle.interrupt_attempt(execution) == ExecutionStatus.CANCELLED
        assert Task.objects.get(pk=task.pk).status == Status.CANCELLED
        assert TaskExecution.objects.get(pk=execution.pk).status == ExecutionStatus.CANCELLED
        assert count(task.pk, EventVerb.WAITING) == int(defer.ok)
        assert count(task.pk, EventVerb.CANCELLED) == 1


# --- workers against each other --------------------------------------------------------------


def test_eight_workers_claiming_one_task_open_exactly_one_execution(make_task):
    for _ in range(ROUNDS):
        task = make_task(start=True)

        outcomes = race(
            *(partial(lifecycle.claim_attempt, task.pk, worker_id=f"w{n}") for n in range(8))
        )

        winners = [o for o in outcomes if o.ok]
        assert len(winners) == 1
        assert {o.error.current_status for o in outcomes if not o.ok} == {Status.RUNNING}
        task.refresh_from_db()
        assert (task.status, task.attempts, task.total_attempts) == (Status.RUNNING, 1, 1)
        execution = TaskExecution.objects.get(task_id=task.pk)
        assert execution.worker_id == winners[0].value[1].worker_id
        assert count(task.pk, EventVerb.STARTED) == 1
        lifecycle.complete_attempt(execution)  # leave nothing open for later rounds


# --- the reaper against everyone -------------------------------------------------------------


def test_retry_racing_reap_of_a_stopped_task_requeues_it_once(make_task):
    for _ in range(ROUNDS):
        task, execution = running(make_task)
        lifecycle.stop_task(task)  # and its worker dies before it notices
        jobs = engine_jobs(task.pk)

        retry, reap = race(
            partial(lifecycle.retry_task, task.pk),
            partial(lifecycle.reap_lost_attempts, now=later()),
        )

        assert retry.ok
        assert reap.ok
        assert (reap.value.lost, reap.value.requeued, reap.value.failed) == (1, 0, 0)
        assert Task.objects.get(pk=task.pk).status == Status.QUEUED
        assert TaskExecution.objects.get(pk=execution.pk).status == ExecutionStatus.LOST
        assert count(task.pk, EventVerb.RETRIED) == 1
        assert count(task.pk, EventVerb.LOST) == 1
        assert engine_jobs(task.pk) == jobs + 1, "requeued exactly once"


@pytest.mark.parametrize("action", ["retry", "start"])
def test_a_retry_or_start_answers_queued_though_a_worker_claims_the_task_at_its_commit(
    make_task, monkeypatch, action
):
    """What a client is told is what its action did, not what a fast worker did next."""
    claim_at_commit(monkeypatch)
    if action == "retry":
        task, _ = running(make_task)
        lifecycle.cancel_task(task)
        moved = lifecycle.retry_task(task.pk)
    else:
        task = make_task()
        moved = lifecycle.start_task(task.pk)

    assert moved.status == Status.QUEUED
    assert moved.attempts == 0
    assert Task.objects.get(pk=task.pk).status == Status.RUNNING, "the worker did claim it"


def test_retry_racing_reap_of_a_task_past_its_lost_limit_ends_failed_or_queued(make_task, settings):
    settings.TASKCENTER = {**settings.TASKCENTER, "MAX_LOST_ATTEMPTS": 0}  # one loss fails it
    for _ in range(ROUNDS):
        task, execution = running(make_task, max_attempts=1, quota=5)
        jobs = engine_jobs(task.pk)

        retry, reap = race(
            partial(lifecycle.retry_task, task.pk),
            partial(lifecycle.reap_lost_attempts, now=later()),
        )

        assert reap.ok
        assert (reap.value.lost, reap.value.failed) == (1, 1)
        task.refresh_from_db()
        assert TaskExecution.objects.get(pk=execution.pk).status == ExecutionStatus.LOST
        (lost,) = events(task.pk, EventVerb.LOST)
        assert (lost.from_status, lost.to_status) == (Status.RUNNING, Status.FAILED)
        if retry.ok:
            # The retry charged the refunded quota again for its new run.
            assert task.quota_refunded_at is None
            assert task.status == Status.QUEUED
            (retried,) = events(task.pk, EventVerb.RETRIED)
            assert retried.from_status == Status.FAILED
            assert retried.id > lost.id
            assert engine_jobs(task.pk) == jobs + 1
        else:
            assert retry.error.current_status == Status.RUNNING
            assert task.status == Status.FAILED
            assert count(task.pk, EventVerb.RETRIED) == 0
            assert engine_jobs(task.pk) == jobs
            assert task.quota_refunded_at is not None


def test_complete_racing_reap_keeps_exactly_one_outcome(make_task):
    for _ in range(ROUNDS):
        task, execution = running(make_task)
        jobs = engine_jobs(task.pk)

        complete, reap = race(
            partial(lifecycle.complete_attempt, execution, result={"late": True}),
            partial(lifecycle.reap_lost_attempts, now=later()),
        )

        assert reap.ok
        task.refresh_from_db()
        execution.refresh_from_db()
        if complete.ok:
            assert reap.value.lost == 0
            assert (task.status, execution.status) == (Status.COMPLETED, ExecutionStatus.COMPLETED)
            assert count(task.pk, EventVerb.LOST) == 0
            assert engine_jobs(task.pk) == jobs
        else:
            assert complete.error.current_status == Status.QUEUED
            assert reap.value.requeued == 1
            assert (task.status, execution.status) == (Status.QUEUED, ExecutionStatus.LOST)
            assert count(task.pk, EventVerb.COMPLETED) == 0
            assert engine_jobs(task.pk) == jobs + 1


def test_two_reapers_lose_an_attempt_once(make_task):
    for _ in range(ROUNDS):
        task, _ = running(make_task)
        jobs = engine_jobs(task.pk)

        first, second = race(
            partial(lifecycle.reap_lost_attempts, now=later()),
            partial(lifecycle.reap_lost_attempts, now=later()),
        )

        assert first.value.lost + second.value.lost == 1
        assert first.value.requeued + second.value.requeued == 1
        assert Task.objects.get(pk=task.pk).status == Status.QUEUED
        assert count(task.pk, EventVerb.LOST) == 1
        assert engine_jobs(task.pk) == jobs + 1


def test_cancel_racing_reap_of_a_waiting_attempt_ends_cancelled(make_task):
    for _ in range(ROUNDS):
        task, execution = running(make_task)
        lifecycle.defer_attempt(execution, seconds=0)  # and the poll job is lost
        jobs = engine_jobs(task.pk)

        cancel, reap = race(
            partial(lifecycle.cancel_task, task.pk),
            partial(lifecycle.reap_lost_attempts, now=later()),
        )

        assert cancel.ok
        assert reap.ok
        assert Task.objects.get(pk=task.pk).status == Status.CANCELLED
        final = TaskExecution.objects.get(pk=execution.pk).status
        assert count(task.pk, EventVerb.CANCELLED) == 1
        if reap.value.lost:
            assert final == ExecutionStatus.LOST
            assert events(task.pk, EventVerb.CANCELLED)[0].from_status == Status.QUEUED
            assert engine_jobs(task.pk) == jobs + 1
        else:
            assert final == ExecutionStatus.CANCELLED
            assert count(task.pk, EventVerb.LOST) == 0
            assert engine_jobs(task.pk) == jobs


def test_progress_racing_reap_either_lands_before_or_learns_the_lease_is_lost(make_task):
    for _ in range(ROUNDS):
        task, execution = running(make_task)
        ctx = AttemptContext(
            task=task,
            execution=execution,
            kind=get_kind(task.task_type),
            worker_id=WORKER,
            lease=LEASE,
        )

        progress, reap = race(
            partial(ctx.progress, 50, "half way", force=True),
            partial(lifecycle.reap_lost_attempts, now=later()),
            expected=(LeaseLost,),
        )

        assert reap.ok
        assert (reap.value.lost, reap.value.requeued) == (1, 1)
        task.refresh_from_db()
        assert task.status == Status.QUEUED
        assert TaskExecution.objects.get(pk=execution.pk).status == ExecutionStatus.LOST
        assert task.progress == (50 if progress.ok else 0)
        assert count(task.pk, EventVerb.LOST) == 1
