"""A dead worker does not kill a task: lost attempts are counted apart from failed ones.

The reaper gives a LOST attempt its attempt back and counts it in ``lost_attempts``; only past
the kind's limit of lost attempts (a task that kills every worker it runs on) does it fail.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from taskcenter import lifecycle
from taskcenter.kinds import task_kind
from taskcenter.models import EventVerb, ExecutionStatus, Status, Task, TaskEvent
from tests.support.lifecycle import WORKER, attempt_in, engine_jobs, events, later

pytestmark = pytest.mark.django_db


@task_kind("test.fragile", max_attempts=1, max_lost_attempts=1)
def fragile(task, ctx):
    """A kind that allows one lost worker only (its own limit, below the global one)."""
    return {"ok": True}


def lose_current_attempt(task: Task) -> lifecycle.LostAttemptsReport:
    """Claim the task's next attempt, then let its lease run out and reap it."""
    lifecycle.claim_attempt(task.pk, worker_id=WORKER)
    return lifecycle.reap_lost_attempts(now=later())


def test_a_lost_attempt_requeues_a_one_attempt_task_without_spending_its_attempt(
    make_task, capture
):
    task, execution = attempt_in(Status.RUNNING, make_task, max_attempts=1)
    assert (task.attempts, task.lost_attempts) == (1, 0)
    before = len(events(task.pk))
    jobs = engine_jobs(task.pk)

    with capture(execute=True) as callbacks:
        report = lifecycle.reap_lost_attempts(now=later())

    assert (report.lost, report.requeued, report.failed) == (1, 1, 0)
    task.refresh_from_db()
    assert task.status == Status.QUEUED
    assert (task.attempts, task.lost_attempts, task.total_attempts) == (0, 1, 1)
    assert task.error_message == ""
    assert callbacks == []  # the job is written in the transaction, not after it
    assert engine_jobs(task.pk) == jobs + 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.LOST
    [event] = events(task.pk)[before:]
    assert (event.verb, event.from_status, event.to_status) == (
        EventVerb.LOST,
        Status.RUNNING,
        Status.QUEUED,
    )
    assert event.actor == "system:reaper"
    assert event.data == {"attempt": 1, "worker": WORKER, "lost_attempts": 1, "limit": 3}

    # The next attempt is numbered 2 and runs with the task's one attempt intact.
    task, second = lifecycle.claim_attempt(task.pk, worker_id="w2")
    assert (second.attempt, task.attempts) == (2, 1)
    assert lifecycle.complete_attempt(second, result={"ok": True}).status == Status.COMPLETED


def test_attempts_spent_by_failures_stay_spent_when_a_later_attempt_is_lost(make_task):
    task, first = attempt_in(Status.RUNNING, make_task, max_attempts=2)
    lifecycle.fail_attempt(first, error="platform said 503")
    lose_current_attempt(task)

    task.refresh_from_db()
    assert task.status == Status.QUEUED
    assert (task.attempts, task.lost_attempts, task.total_attempts) == (1, 1, 2)
    # One failure allowance is left: the next failure ends the task.
    _, third = lifecycle.claim_attempt(task.pk, worker_id=WORKER)
    assert lifecycle.fail_attempt(third, error="503 again").status == Status.FAILED


def test_a_task_lost_past_the_limit_fails_saying_why_and_is_refunded(make_task, capture, funded):
    task = make_task("demo.sleep", {"ms": 1}, start=True, quota=5)

    for _ in range(3):
        assert lose_current_attempt(task).requeued == 1
    task.refresh_from_db()
    assert (task.status, task.attempts, task.lost_attempts) == (Status.QUEUED, 0, 3)

    with capture(execute=True) as callbacks:
        report = lose_current_attempt(task)

    assert (report.lost, report.requeued, report.failed) == (1, 0, 1)
    assert callbacks == []
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.error_message == (
        "Worker lost 4 times (limit 3); the task may be killing its worker"
    )
    assert (task.attempts, task.lost_attempts, task.total_attempts) == (0, 4, 4)
    assert task.finished_at is not None
    assert task.quota_refunded_at == task.finished_at
    lost = TaskEvent.objects.filter(task_id=task.pk, verb=EventVerb.LOST).order_by("id")
    assert [(e.to_status, e.data["lost_attempts"]) for e in lost] == [
        (Status.QUEUED, 1),
        (Status.QUEUED, 2),
        (Status.QUEUED, 3),
        (Status.FAILED, 4),
    ]
    assert set(task.executions.values_list("status", flat=True)) == {ExecutionStatus.LOST}


def test_the_global_limit_of_lost_attempts_is_a_setting(make_task, settings):
    settings.TASKCENTER = {**settings.TASKCENTER, "MAX_LOST_ATTEMPTS": 0}
    task = make_task("demo.sleep", {"ms": 1}, start=True)

    lose_current_attempt(task)

    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.error_message.startswith("Worker lost 1 times (limit 0)")


def test_a_kind_sets_its_own_limit_of_lost_attempts(make_task):
    task = make_task("test.fragile", start=True)

    assert lose_current_attempt(task).requeued == 1
    assert lose_current_attempt(task).failed == 1

    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.error_message.startswith("Worker lost 2 times (limit 1)")


def test_a_kind_cannot_have_a_negative_limit():
    with pytest.raises(ValueError, match="max_lost_attempts"):
        task_kind("test.negative", max_lost_attempts=-1)


@pytest.mark.parametrize("restart", ["retry", "start"])
def test_a_user_retry_or_start_resets_both_counters(make_task, restart):
    task = make_task("test.fragile", start=True)
    lose_current_attempt(task)
    if restart == "start":
        lifecycle.stop_task(task.pk)
        task = lifecycle.start_task(task.pk)
    else:
        lose_current_attempt(task)  # past the limit: FAILED
        task = lifecycle.retry_task(task.pk)

    assert task.status == Status.QUEUED
    assert (task.attempts, task.lost_attempts) == (0, 0)
    assert lose_current_attempt(task).requeued == 1  # the full allowance again


def test_release_gives_a_running_attempt_back_at_once_without_spending_it(make_task, capture):
    task, execution = attempt_in(Status.RUNNING, make_task, max_attempts=1)

    with capture(execute=True) as callbacks:
        status = lifecycle.release_attempt(
            execution, error="Database unavailable: server closed the connection"
        )

    assert status == Status.QUEUED
    assert callbacks == []  # the job is written in the transaction, not after it
    task.refresh_from_db()
    assert (task.status, task.attempts, task.lost_attempts) == (Status.QUEUED, 0, 1)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.LOST
    assert execution.error_message.startswith("Database unavailable")
    event = TaskEvent.objects.get(task_id=task.pk, verb=EventVerb.LOST)
    assert event.actor == f"worker:{WORKER}"
    # A second release (or a late reaper) finds nothing open and writes nothing.
    assert lifecycle.release_attempt(execution, error="again") is None
    assert lifecycle.reap_lost_attempts(now=later()).lost == 0


def test_the_api_shows_attempts_and_lost_attempts(api, make_task):
    task = make_task("demo.sleep", {"ms": 1}, start=True, owner=api.user)
    lose_current_attempt(task)

    detail = api.get(f"/api/v1/tasks/{task.pk}")
    listed = api.get("/api/v1/tasks")

    assert detail.status_code == 200, detail.content
    assert (detail.json()["attempts"], detail.json()["lost_attempts"]) == (0, 1)
    assert detail.json()["max_attempts"] == 1
    [item] = listed.json()["items"]
    assert (item["attempts"], item["lost_attempts"]) == (0, 1)


def test_the_admin_shows_attempts_and_lost_attempts(client, staff_user, make_task):
    task = make_task("demo.sleep", {"ms": 1}, start=True)
    lose_current_attempt(task)
    client.force_login(staff_user)

    page = client.get(reverse("admin:taskcenter_task_change", args=[task.pk]))
    listing = client.get(reverse("admin:taskcenter_task_changelist"))

    assert page.status_code == 200
    assert "Lost attempts" in page.text
    assert "column-lost_attempts" in listing.text
    assert '<td class="field-lost_attempts">1</td>' in listing.text
