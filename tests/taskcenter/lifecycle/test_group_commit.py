"""Completing many attempts in one transaction (group commit), as a busy worker does."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from taskcenter import lifecycle
from taskcenter.execution.completions import PendingCompletions
from taskcenter.models import EventVerb, ExecutionStatus, Status, Task, TaskEvent, TaskExecution


def running(make_task, count: int, worker_id: str = "w1"):
    tasks = [make_task(start=True) for _ in range(count)]
    return lifecycle.claim_attempts([t.pk for t in tasks], worker_id=worker_id, lease=30)


def test_a_group_completes_each_task_with_its_own_result_execution_and_event(make_task):
    claimed = running(make_task, 4)
    results = [{"n": 1}, None, ["a", "b"], "text"]

    refused = lifecycle.complete_attempts(
        [
            lifecycle.Completion(execution, result, "w1")
            for (_, execution), result in zip(claimed, results, strict=True)
        ]
    )

    assert refused == []
    for (task, execution), result in zip(claimed, results, strict=True):
        task.refresh_from_db()
        execution.refresh_from_db()
        assert (task.status, task.progress, task.result) == (Status.COMPLETED, 100, result)
        assert task.finished_at is not None
        assert execution.status == ExecutionStatus.COMPLETED
        assert execution.lease_expires_at is None
        assert execution.duration is not None
        assert execution.duration >= 0
        event = TaskEvent.objects.get(task=task, verb=EventVerb.COMPLETED)
        assert (event.from_status, event.to_status) == (Status.RUNNING, Status.COMPLETED)
        assert (event.execution_id, event.actor) == (execution.pk, "worker:w1")
        assert event.data == {"attempt": 1}


def test_a_group_costs_the_statements_of_one_completion(make_task):
    one = running(make_task, 1)
    eight = running(make_task, 8)

    with CaptureQueriesContext(connection) as alone:
        lifecycle.complete_attempts([lifecycle.Completion(e, None, "w1") for _, e in one])
    with CaptureQueriesContext(connection) as together:
        lifecycle.complete_attempts([lifecycle.Completion(e, {"i": 1}, "w1") for _, e in eight])

    assert len(together.captured_queries) <= len(alone.captured_queries)
    assert Task.objects.filter(status=Status.COMPLETED).count() == 9


def test_a_task_cancelled_meanwhile_is_refused_and_the_rest_of_its_group_completes(make_task):
    claimed = running(make_task, 3)
    cancelled_task, cancelled_execution = claimed[1]
    lifecycle.cancel_task(cancelled_task.pk)

    refused = lifecycle.complete_attempts(
        [lifecycle.Completion(e, {"ok": True}, "w1") for _, e in claimed]
    )

    assert [c.execution.pk for c in refused] == [cancelled_execution.pk]
    statuses = dict(Task.objects.values_list("pk", "status"))
    assert statuses == {
        claimed[0][0].pk: Status.COMPLETED,
        cancelled_task.pk: Status.CANCELLED,
        claimed[2][0].pk: Status.COMPLETED,
    }
    assert not TaskEvent.objects.filter(task=cancelled_task, verb=EventVerb.COMPLETED).exists()
    assert TaskExecution.objects.get(pk=cancelled_execution.pk).status == ExecutionStatus.RUNNING


def test_pending_completions_close_refused_attempts_as_the_user_left_them(make_task):
    claimed = running(make_task, 3)
    stopped_task, stopped_execution = claimed[0]
    lifecycle.stop_task(stopped_task.pk)
    pending = PendingCompletions()
    for _, execution in claimed:
        pending.add(lifecycle.Completion(execution, None, "w1"))

    written = pending.flush()

    assert (written, pending.discarded, pending.groups, len(pending)) == (2, 1, 1, 0)
    assert Task.objects.get(pk=stopped_task.pk).status == Status.STOPPED
    assert TaskExecution.objects.get(pk=stopped_execution.pk).status == ExecutionStatus.STOPPED
    assert Task.objects.filter(status=Status.COMPLETED).count() == 2
    assert pending.flush() == 0


def test_a_group_written_twice_is_refused_the_second_time_not_doubled(make_task):
    # A commit whose answer was lost is retried (retry_while_unavailable): the fence refuses it.
    claimed = running(make_task, 2)
    group = [lifecycle.Completion(e, None, "w1") for _, e in claimed]
    assert lifecycle.complete_attempts(group) == []

    assert len(lifecycle.complete_attempts(group)) == 2
    assert TaskEvent.objects.filter(verb=EventVerb.COMPLETED).count() == 2
    assert TaskExecution.objects.filter(status=ExecutionStatus.COMPLETED).count() == 2
