"""Claiming many attempts in one transaction, as a worker with a backlog does."""

import pytest

from taskcenter import lifecycle
from taskcenter.models import (
    EventVerb,
    ExecutionStatus,
    Status,
    Task,
    TaskEvent,
    TaskExecution,
)
from tests.support.processes import wait_for


def test_batch_claim_opens_one_execution_and_one_event_per_task_in_order(make_task):
    tasks = [make_task(start=True) for _ in range(5)]
    ids = [t.pk for t in reversed(tasks)]

    claimed = lifecycle.claim_attempts(ids, worker_id="w1", lease=30)

    assert [task.pk for task, _ in claimed] == ids
    for task, execution in claimed:
        assert task.status == Status.RUNNING
        assert (task.attempts, task.total_attempts) == (1, 1)
        assert execution.pk is not None
        assert (execution.attempt, execution.worker_id) == (1, "w1")
        assert execution.status == ExecutionStatus.RUNNING
        started = TaskEvent.objects.get(task=task, verb=EventVerb.STARTED)
        assert started.execution_id == execution.pk
        assert started.actor == "worker:w1"


def test_batch_claim_leaves_out_tasks_that_are_not_claimable(make_task):
    queued = make_task(start=True)
    pending = make_task()
    stopped = lifecycle.stop_task(make_task(start=True).pk)
    already_running, _ = lifecycle.claim_attempt(make_task(start=True).pk, worker_id="other")

    claimed = lifecycle.claim_attempts(
        [pending.pk, queued.pk, stopped.pk, already_running.pk, 999_999, queued.pk],
        worker_id="w1",
    )

    assert [task.pk for task, _ in claimed] == [queued.pk]  # once, though asked twice
    assert Task.objects.get(pk=pending.pk).status == Status.PENDING
    assert Task.objects.get(pk=stopped.pk).status == Status.STOPPED
    assert already_running.executions.count() == 1


def test_batch_claim_of_nothing_claimable_writes_nothing(make_task):
    pending = make_task()
    assert lifecycle.claim_attempts([pending.pk], worker_id="w1") == []
    assert not TaskEvent.objects.filter(verb=EventVerb.STARTED).exists()


@pytest.mark.slow
def test_single_slot_worker_drains_a_backlog_in_batches_exactly_once(start_worker, make_task):
    tasks = [make_task("demo.noop", start=True) for _ in range(200)]
    start_worker("--concurrency", "1")

    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == len(tasks), timeout=60)
    for task in Task.objects.all():
        assert task.executions.count() == 1
        assert list(task.events.values_list("verb", flat=True)) == [
            "created",
            "started",
            "completed",
        ]


def drained_claim_instants(start_worker, tasks: list[Task], *, concurrency: int) -> set:
    """Start a worker, wait until it has completed ``tasks``; the distinct instants it claimed
    at (a claim's STARTED events share their ``at``)."""
    start_worker("--concurrency", str(concurrency))
    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == len(tasks))
    return set(TaskEvent.objects.filter(verb=EventVerb.STARTED).values_list("at", flat=True))


@pytest.mark.slow
def test_worker_with_free_slots_claims_a_backlog_in_one_transaction(start_worker, make_task):
    tasks = [make_task("demo.sleep", {"ms": 200}, start=True) for _ in range(8)]
    claim_instants = drained_claim_instants(start_worker, tasks, concurrency=8)
    assert len(claim_instants) < len(tasks)  # several started at the same claim
    assert TaskExecution.objects.count() == len(tasks)


@pytest.mark.slow
def test_busy_worker_claims_ahead_several_jobs_at_a_time_each_run_once(start_worker, make_task):
    tasks = [make_task("demo.sleep", {"ms": 50}, start=True) for _ in range(40)]
    # Once its slots have each run an attempt, the worker tops up a queue of claimed jobs two
    # or more at a time instead of claiming one per freed slot (40 claims without it).
    claim_instants = drained_claim_instants(start_worker, tasks, concurrency=4)
    assert len(claim_instants) <= len(tasks) // 2
    assert TaskExecution.objects.count() == len(tasks)
    for task in Task.objects.all():
        assert list(task.events.values_list("verb", flat=True)) == [
            "created",
            "started",
            "completed",
        ]
