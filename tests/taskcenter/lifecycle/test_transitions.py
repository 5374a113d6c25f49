"""Every legal and every illegal transition of the task state machine, one database at a time.

A legal transition moves the task, writes exactly one TaskEvent saying who did what, and
enqueues an engine job only when the task is handed to a worker. An illegal one raises
InvalidTransition naming the real status and leaves every row as it was.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from quota import ledger as quota
from quota.models import LedgerKind, QuotaLedgerEntry
from taskcenter import lifecycle
from taskcenter.errors import InvalidTransition, UnknownKind
from taskcenter.models import (
    EventVerb,
    ExecutionStatus,
    Status,
    Task,
    TaskEvent,
    TaskExecution,
)
from tests.support.lifecycle import (
    LEASE,
    WORKER,
    assert_one_event,
    assert_refused,
    attempt_in,
    engine_jobs,
    events,
    later,
    snapshot,
    task_in,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("funded")]

ALL = list(Status)


def others(*legal: str) -> list[str]:
    return [status for status in Status if status not in legal]


# --- create ----------------------------------------------------------------------------------


def test_create_task_without_start_is_pending_and_enqueues_nothing(user, capture):
    with capture(execute=True) as callbacks:
        task = lifecycle.create_task(owner=user, task_type="demo.noop", name="n")

    task.refresh_from_db()
    assert task.status == Status.PENDING
    assert task.submitted_at is None
    assert callbacks == []
    assert engine_jobs(task.pk) == 0
    assert_one_event(
        task.pk,
        0,
        verb=EventVerb.CREATED,
        from_status="",
        to_status=Status.PENDING,
        actor="user:alice",
        actor_user=user,
    )


def test_create_task_with_start_is_queued_and_enqueues_one_job(user, capture):
    # Nothing waits for the commit: the job is a row of this database, written in the task's
    # own transaction.
    with capture(execute=False) as callbacks:
        task = lifecycle.create_task(owner=user, task_type="demo.noop", start=True)

    task.refresh_from_db()
    assert task.status == Status.QUEUED
    assert task.submitted_at is not None
    assert callbacks == []
    assert engine_jobs(task.pk) == 1
    assert_one_event(
        task.pk,
        0,
        verb=EventVerb.CREATED,
        from_status="",
        to_status=Status.QUEUED,
        actor="user:alice",
        actor_user=user,
    )


def test_create_task_records_a_string_actor_as_given(user):
    task = lifecycle.create_task(owner=user, task_type="demo.noop", actor="api:token-7")

    event = events(task.pk)[0]
    assert event.actor == "api:token-7"
    assert event.actor_user is None


def test_create_task_takes_max_attempts_from_the_kind_unless_given(user):
    assert lifecycle.create_task(owner=user, task_type="demo.flaky").max_attempts == 3
    assert lifecycle.create_task(owner=user, task_type="demo.noop").max_attempts == 1
    assert (
        lifecycle.create_task(owner=user, task_type="demo.noop", max_attempts=5).max_attempts == 5
    )


def test_create_task_stores_the_cleaned_parameters(user):
    task = lifecycle.create_task(
        owner=user, task_type="demo.countdown", parameters={"seconds": "5"}
    )

    task.refresh_from_db()
    assert task.parameters == {"seconds": 5, "interval": 1.0}


def test_create_task_of_unknown_type_raises_unknown_kind_and_writes_nothing(user, capture):
    with capture(execute=True) as callbacks, pytest.raises(UnknownKind, match=r"no\.such\.kind"):
        lifecycle.create_task(owner=user, task_type="no.such.kind", start=True)

    assert callbacks == []
    assert not Task.objects.exists()
    assert not TaskEvent.objects.exists()


@pytest.mark.parametrize(
    ("task_type", "parameters", "field"),
    [
        ("demo.countdown", {"seconds": 0}, "seconds"),
        ("demo.countdown", {"seconds": "many"}, "seconds"),
        ("demo.countdown", {"interval": 0}, "interval"),
        ("demo.items", {"count": -1}, "count"),
    ],
)
def test_create_task_with_bad_parameters_names_the_field_and_writes_nothing(
    user, capture, task_type, parameters, field
):
    with capture(execute=True) as callbacks, pytest.raises(ValidationError) as refused:
        lifecycle.create_task(owner=user, task_type=task_type, parameters=parameters, start=True)

    assert set(refused.value.detail) == {"parameters"}
    assert set(refused.value.detail["parameters"]) == {field}
    assert refused.value.detail["parameters"][field]
    assert callbacks == []
    assert not Task.objects.exists()
    assert not TaskEvent.objects.exists()


def test_create_task_with_parameters_that_are_not_an_object_is_refused(user):
    with pytest.raises(ValidationError) as refused:
        lifecycle.create_task(owner=user, task_type="demo.noop", parameters=["a"])

    assert set(refused.value.detail) == {"parameters"}
    assert not Task.objects.exists()


# --- start -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", lifecycle.STARTABLE)
def test_start_queues_the_task_and_enqueues_one_job(make_task, user, capture, status):
    task = task_in(status, make_task)
    before = len(events(task.pk))
    jobs = engine_jobs(task.pk)

    with capture(execute=True) as callbacks:
        started = lifecycle.start_task(task, actor=user)

    assert started.status == Status.QUEUED
    assert started.attempts == 0
    assert started.run_after is None
    assert started.finished_at is None
    assert started.submitted_at is not None
    assert callbacks == []  # the job is written in the transaction, not after it
    assert engine_jobs(task.pk) == jobs + 1
    assert_one_event(
        task.pk,
        before,
        verb=EventVerb.QUEUED,
        from_status=status,
        to_status=Status.QUEUED,
        actor="user:alice",
        actor_user=user,
    )


def test_a_start_and_its_job_commit_together_or_not_at_all(make_task):
    """A job written after the commit was lost when the database went away in between (a
    restart under load left a task QUEUED with no job until the reaper's orphan search)."""
    task = make_task()
    with transaction.atomic():
        lifecycle.start_task(task)
        assert engine_jobs(task.pk) == 1  # before the commit: in the same transaction

    rolled_back = make_task()

    def start_then_fail() -> None:
        with transaction.atomic():
            lifecycle.start_task(rolled_back)
            raise RuntimeError("the caller's transaction fails after the start")

    with pytest.raises(RuntimeError):
        start_then_fail()
    rolled_back.refresh_from_db()
    assert rolled_back.status == Status.PENDING
    assert engine_jobs(rolled_back.pk) == 0
    assert events(rolled_back.pk, EventVerb.QUEUED) == []


@pytest.mark.parametrize("status", others(*lifecycle.STARTABLE))
def test_start_refused_changes_nothing(make_task, capture, status):
    task = task_in(status, make_task)

    assert_refused(lambda: lifecycle.start_task(task.pk), task.pk, status, capture)


# --- stop ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", lifecycle.STOPPABLE)
def test_stop_moves_an_active_task_to_stopped_without_enqueueing(make_task, capture, status):
    task = task_in(status, make_task)
    before = len(events(task.pk))

    with capture(execute=True) as callbacks:
        stopped = lifecycle.stop_task(task, actor="admin:ops")

    assert stopped.status == Status.STOPPED
    assert stopped.run_after is None
    assert callbacks == []
    assert_one_event(
        task.pk,
        before,
        verb=EventVerb.STOPPED,
        from_status=status,
        to_status=Status.STOPPED,
        actor="admin:ops",
    )


@pytest.mark.parametrize("status", others(*lifecycle.STOPPABLE))
def test_stop_refused_changes_nothing(make_task, capture, status):
    task = task_in(status, make_task)

    assert_refused(lambda: lifecycle.stop_task(task), task.pk, status, capture)


def test_stop_of_a_running_task_leaves_its_execution_running_until_interrupted(make_task):
    task, execution = attempt_in(Status.RUNNING, make_task)

    lifecycle.stop_task(task)

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.RUNNING
    assert lifecycle.interrupt_attempt(execution) == ExecutionStatus.STOPPED
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.STOPPED
    assert execution.completed_at is not None
    assert execution.lease_expires_at is None
    assert "stopped" in execution.error_message
    assert Task.objects.get(pk=task.pk).status == Status.STOPPED


def test_stop_of_a_task_waiting_on_a_remote_platform_closes_its_execution_at_once(make_task):
    task, execution = attempt_in(Status.RUNNING, make_task)
    lifecycle.defer_attempt(execution, seconds=30)

    lifecycle.stop_task(task)

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.STOPPED
    assert execution.lease_expires_at is None


# --- cancel ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", lifecycle.CANCELLABLE)
def test_cancel_ends_the_task_and_refunds_its_quota(make_task, user, capture, status):
    task = task_in(status, make_task, quota=5)
    before = len(events(task.pk))

    with capture(execute=True) as callbacks:
        cancelled = lifecycle.cancel_task(task, actor=user, reason="not needed")

    assert cancelled.status == Status.CANCELLED
    assert cancelled.finished_at is not None
    assert cancelled.quota_refunded_at == cancelled.finished_at
    assert cancelled.run_after is None
    assert callbacks == []
    event = assert_one_event(
        task.pk,
        before,
        verb=EventVerb.CANCELLED,
        from_status=status,
        to_status=Status.CANCELLED,
        actor="user:alice",
        actor_user=user,
    )
    assert event.data == {"reason": "not needed"}


@pytest.mark.parametrize("status", others(*lifecycle.CANCELLABLE))
def test_cancel_refused_changes_nothing(make_task, capture, status):
    task = task_in(status, make_task, quota=5)

    assert_refused(lambda: lifecycle.cancel_task(task), task.pk, status, capture)


def test_cancel_of_a_task_without_quota_records_no_refund(make_task):
    assert lifecycle.cancel_task(make_task()).quota_refunded_at is None


def test_cancel_without_actor_is_recorded_as_system(make_task):
    task = lifecycle.cancel_task(make_task())

    assert events(task.pk)[-1].actor == "system"
    assert events(task.pk)[-1].data == {}


def test_cancel_of_a_task_waiting_on_a_remote_platform_closes_its_execution_at_once(make_task):
    task, execution = attempt_in(Status.RUNNING, make_task)
    lifecycle.defer_attempt(execution, seconds=30)

    lifecycle.cancel_task(task)

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLED
    assert execution.completed_at is not None
    assert execution.lease_expires_at is None
    assert lifecycle.interrupt_attempt(execution) is None


def test_cancel_of_a_running_task_is_closed_as_cancelled_by_interrupt(make_task):
    task, execution = attempt_in(Status.RUNNING, make_task)

    lifecycle.cancel_task(task)

    assert TaskExecution.objects.get(pk=execution.pk).status == ExecutionStatus.RUNNING
    assert lifecycle.interrupt_attempt(execution) == ExecutionStatus.CANCELLED
    assert TaskExecution.objects.get(pk=execution.pk).status == ExecutionStatus.CANCELLED


# --- retry -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", lifecycle.RETRYABLE)
def test_retry_requeues_with_fresh_attempts_and_enqueues_one_job(make_task, capture, status):
    task = task_in(status, make_task)
    before = len(events(task.pk))
    jobs = engine_jobs(task.pk)

    with capture(execute=True) as callbacks:
        retried = lifecycle.retry_task(task, actor="cli:retry_tasks")

    assert retried.status == Status.QUEUED
    assert retried.attempts == 0
    assert retried.error_message == ""
    assert retried.finished_at is None
    assert retried.run_after is None
    assert callbacks == []  # the job is written in the transaction, not after it
    assert engine_jobs(task.pk) == jobs + 1
    assert_one_event(
        task.pk,
        before,
        verb=EventVerb.RETRIED,
        from_status=status,
        to_status=Status.QUEUED,
        actor="cli:retry_tasks",
    )


@pytest.mark.parametrize("status", others(*lifecycle.RETRYABLE))
def test_retry_refused_changes_nothing(make_task, capture, status):
    task = task_in(status, make_task)

    assert_refused(lambda: lifecycle.retry_task(task), task.pk, status, capture)


def test_each_charge_is_refunded_once_across_fail_retry_and_cancel(make_task, user):
    start = quota.balance_of(user.pk)
    task, execution = attempt_in(Status.RUNNING, make_task, quota=10)
    assert quota.balance_of(user.pk) == start - 10
    failed = lifecycle.fail_attempt(execution, error="bad input", permanent=True)
    assert failed.quota_refunded_at is not None
    assert quota.balance_of(user.pk) == start

    retried = lifecycle.retry_task(task)  # a new run on the platform: charged again
    assert retried.quota_refunded_at is None
    assert quota.balance_of(user.pk) == start - 10
    _, second = lifecycle.claim_attempt(task, worker_id=WORKER)
    lifecycle.fail_attempt(second, error="bad input again", permanent=True)
    lifecycle.retry_task(task)
    cancelled = lifecycle.cancel_task(task)

    assert cancelled.quota_refunded_at == cancelled.finished_at
    assert quota.balance_of(user.pk) == start
    ledger = QuotaLedgerEntry.objects.filter(task_id=task.pk)
    charges = set(ledger.filter(kind=LedgerKind.CHARGE).values_list("pk", flat=True))
    refunded = set(ledger.filter(kind=LedgerKind.REFUND).values_list("refund_of_id", flat=True))
    assert len(charges) == 3
    assert refunded == charges, "every charge refunded, none twice"


def test_cancel_of_a_failed_task_is_refused_and_keeps_the_refund(make_task, capture):
    task, execution = attempt_in(Status.RUNNING, make_task, quota=10)
    refunded_at = lifecycle.fail_attempt(execution, error="x", permanent=True).quota_refunded_at

    assert_refused(lambda: lifecycle.cancel_task(task), task.pk, Status.FAILED, capture)
    assert Task.objects.get(pk=task.pk).quota_refunded_at == refunded_at


# --- claim -----------------------------------------------------------------------------------


def test_claim_runs_a_queued_task_under_a_new_leased_execution(make_task, capture):
    task = task_in(Status.QUEUED, make_task)
    before = len(events(task.pk))

    with capture(execute=True) as callbacks:
        claimed, execution = lifecycle.claim_attempt(task, worker_id="host:42", lease=30)

    assert claimed.status == Status.RUNNING
    assert claimed.attempts == 1
    assert claimed.total_attempts == 1
    assert claimed.started_at is not None
    assert execution.attempt == 1
    assert execution.worker_id == "host:42"
    assert execution.status == ExecutionStatus.RUNNING
    remaining = (execution.lease_expires_at - timezone.now()).total_seconds()
    assert 25 < remaining <= 30
    assert callbacks == []
    event = assert_one_event(
        task.pk,
        before,
        verb=EventVerb.STARTED,
        from_status=Status.QUEUED,
        to_status=Status.RUNNING,
        actor="worker:host:42",
    )
    assert event.execution_id == execution.pk


@pytest.mark.parametrize("status", others(Status.QUEUED))
def test_claim_refused_changes_nothing(make_task, capture, status):
    task = task_in(status, make_task)

    assert_refused(
        lambda: lifecycle.claim_attempt(task, worker_id=WORKER), task.pk, status, capture
    )


def test_claim_refused_before_run_after_changes_nothing(make_task, capture):
    task, execution = attempt_in(Status.RUNNING, make_task)
    lifecycle.fail_attempt(execution, error="busy", retry_delay=60)

    assert_refused(
        lambda: lifecycle.claim_attempt(task, worker_id=WORKER), task.pk, Status.QUEUED, capture
    )


def test_claim_numbers_executions_across_retries(make_task):
    task, first = attempt_in(Status.RUNNING, make_task)
    lifecycle.fail_attempt(first, error="x", permanent=True)
    lifecycle.retry_task(task)

    claimed, second = lifecycle.claim_attempt(task, worker_id=WORKER)

    assert (claimed.attempts, claimed.total_attempts, second.attempt) == (1, 2, 2)


# --- complete --------------------------------------------------------------------------------


def test_complete_finishes_the_task_and_its_execution(make_task, capture):
    task, execution = attempt_in(Status.RUNNING, make_task, quota=3)
    before = len(events(task.pk))

    with capture(execute=True) as callbacks:
        done = lifecycle.complete_attempt(execution, result={"rows": 2})

    assert done.status == Status.COMPLETED
    assert done.progress == 100
    assert done.result == {"rows": 2}
    assert done.finished_at is not None
    assert done.quota_refunded_at is None
    assert callbacks == []
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.completed_at is not None
    assert execution.duration is not None
    assert execution.lease_expires_at is None
    assert_one_event(
        task.pk,
        before,
        verb=EventVerb.COMPLETED,
        from_status=Status.RUNNING,
        to_status=Status.COMPLETED,
        actor=f"worker:{WORKER}",
    )


@pytest.mark.parametrize("status", others(Status.RUNNING))
def test_complete_refused_changes_nothing(make_task, capture, status):
    task, execution = attempt_in(status, make_task)

    assert_refused(lambda: lifecycle.complete_attempt(execution), task.pk, status, capture)


# --- fail ------------------------------------------------------------------------------------


def test_fail_with_attempts_left_requeues_after_the_delay(make_task, capture):
    task, execution = attempt_in(Status.RUNNING, make_task, max_attempts=2)
    before = len(events(task.pk))
    jobs = engine_jobs(task.pk)

    with capture(execute=True) as callbacks:
        failed = lifecycle.fail_attempt(
            execution, error="timeout", traceback="Traceback...", retry_delay=30, worker_id="w9"
        )

    assert failed.status == Status.QUEUED
    assert failed.error_message == "timeout"
    assert failed.finished_at is None
    assert 25 < (failed.run_after - timezone.now()).total_seconds() <= 30
    assert callbacks == []  # the job is written in the transaction, not after it
    assert engine_jobs(task.pk) == jobs + 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert (execution.error_message, execution.traceback) == ("timeout", "Traceback...")
    event = assert_one_event(
        task.pk,
        before,
        verb=EventVerb.REQUEUED,
        from_status=Status.RUNNING,
        to_status=Status.QUEUED,
        actor="worker:w9",
    )
    assert event.data["retry_in"] == 30


def test_fail_with_a_permanent_error_fails_the_task_and_refunds(make_task, capture):
    task, execution = attempt_in(Status.RUNNING, make_task, max_attempts=3, quota=4)
    before = len(events(task.pk))

    with capture(execute=True) as callbacks:
        failed = lifecycle.fail_attempt(execution, error="account suspended", permanent=True)

    assert failed.status == Status.FAILED
    assert failed.error_message == "account suspended"
    assert failed.finished_at is not None
    assert failed.quota_refunded_at == failed.finished_at
    assert callbacks == []
    event = assert_one_event(
        task.pk,
        before,
        verb=EventVerb.FAILED,
        from_status=Status.RUNNING,
        to_status=Status.FAILED,
        actor=f"worker:{WORKER}",
    )
    assert event.data["permanent"] is True


def test_fail_of_the_last_attempt_fails_the_task(make_task, capture):
    task, execution = attempt_in(Status.RUNNING, make_task, max_attempts=1)
    before = len(events(task.pk))

    with capture(execute=True) as callbacks:
        failed = lifecycle.fail_attempt(execution, error="timeout", retry_delay=5)

    assert failed.status == Status.FAILED
    assert callbacks == []
    event = assert_one_event(
        task.pk,
        before,
        verb=EventVerb.FAILED,
        from_status=Status.RUNNING,
        to_status=Status.FAILED,
        actor=f"worker:{WORKER}",
    )
    assert event.data["permanent"] is False


@pytest.mark.parametrize("status", others(Status.RUNNING))
def test_fail_refused_changes_nothing(make_task, capture, status):
    task, execution = attempt_in(status, make_task)

    assert_refused(
        lambda: lifecycle.fail_attempt(execution, error="late"), task.pk, status, capture
    )


# --- defer and resume (remote kinds) ---------------------------------------------------------


def test_defer_keeps_the_task_running_and_schedules_the_next_poll(make_task, capture):
    task, execution = attempt_in(Status.RUNNING, make_task)
    before = len(events(task.pk))
    jobs = engine_jobs(task.pk)

    with capture(execute=True) as callbacks:
        deferred = lifecycle.defer_attempt(execution, seconds=20, message="remote busy")

    assert deferred.status == Status.RUNNING
    assert deferred.progress_message == "remote busy"
    assert 15 < (deferred.run_after - timezone.now()).total_seconds() <= 20
    assert callbacks == []  # the job is written in the transaction, not after it
    assert engine_jobs(task.pk) == jobs + 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.WAITING
    assert execution.lease_expires_at == deferred.run_after + timedelta(
        seconds=lifecycle.lease_seconds()
    )
    event = assert_one_event(
        task.pk,
        before,
        verb=EventVerb.WAITING,
        from_status=Status.RUNNING,
        to_status=Status.RUNNING,
        actor=f"worker:{WORKER}",
    )
    assert event.data == {"seconds": 20, "message": "remote busy"}


@pytest.mark.parametrize("status", others(Status.RUNNING))
def test_defer_refused_changes_nothing(make_task, capture, status):
    task, execution = attempt_in(status, make_task)

    assert_refused(lambda: lifecycle.defer_attempt(execution, seconds=5), task.pk, status, capture)


def test_resume_hands_a_waiting_execution_to_a_new_worker(make_task, capture):
    task, execution = attempt_in(Status.RUNNING, make_task)
    lifecycle.defer_attempt(execution, seconds=0)
    before = len(events(task.pk))

    with capture(execute=True) as callbacks:
        resumed_task, resumed = lifecycle.resume_attempt(execution, worker_id="w2", lease=30)

    assert resumed_task.status == Status.RUNNING
    assert resumed.pk == execution.pk
    assert resumed.status == ExecutionStatus.RUNNING
    assert resumed.worker_id == "w2"
    assert 25 < (resumed.lease_expires_at - timezone.now()).total_seconds() <= 30
    assert callbacks == []
    assert_one_event(
        task.pk,
        before,
        verb=EventVerb.RESUMED,
        from_status=Status.RUNNING,
        to_status=Status.RUNNING,
        actor="worker:w2",
    )


def test_resume_refused_for_an_execution_that_is_not_waiting(make_task, capture):
    task, execution = attempt_in(Status.RUNNING, make_task)

    assert_refused(
        lambda: lifecycle.resume_attempt(execution, worker_id="w2"),
        task.pk,
        Status.RUNNING,
        capture,
    )


@pytest.mark.parametrize("status", others(Status.RUNNING))
def test_resume_refused_changes_nothing(make_task, capture, status):
    task, execution = attempt_in(status, make_task)

    assert_refused(
        lambda: lifecycle.resume_attempt(execution, worker_id="w2"), task.pk, status, capture
    )


@pytest.mark.parametrize("action", ["stop", "cancel"])
def test_resume_refused_after_the_waiting_task_was_stopped_or_cancelled(make_task, capture, action):
    task, execution = attempt_in(Status.RUNNING, make_task)
    lifecycle.defer_attempt(execution, seconds=0)
    getattr(lifecycle, f"{action}_task")(task)
    status = Task.objects.get(pk=task.pk).status

    assert_refused(
        lambda: lifecycle.resume_attempt(execution, worker_id="w2"), task.pk, status, capture
    )


# --- interrupt -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "final"),
    [(Status.STOPPED, ExecutionStatus.STOPPED), (Status.CANCELLED, ExecutionStatus.CANCELLED)],
)
def test_interrupt_closes_the_execution_to_match_the_task(make_task, status, final):
    task, execution = attempt_in(status, make_task)
    before = snapshot(task.pk)

    assert lifecycle.interrupt_attempt(execution) == final

    after = snapshot(task.pk)
    assert after["task"] == before["task"]
    assert after["events"] == before["events"], "the stop/cancel event already tells the story"
    execution.refresh_from_db()
    assert execution.status == final
    assert execution.lease_expires_at is None


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.FAILED])
def test_interrupt_of_a_closed_execution_changes_nothing(make_task, status):
    task, execution = attempt_in(status, make_task)
    before = snapshot(task.pk)

    assert lifecycle.interrupt_attempt(execution) is None
    assert snapshot(task.pk) == before


# --- reaper ----------------------------------------------------------------------------------


def test_reap_requeues_a_task_whose_worker_vanished(make_task, capture):
    task, execution = attempt_in(Status.RUNNING, make_task, max_attempts=2)
    before = len(events(task.pk))
    jobs = engine_jobs(task.pk)

    with capture(execute=True) as callbacks:
        report = lifecycle.reap_lost_attempts(now=later())

    assert (report.lost, report.requeued, report.failed) == (1, 1, 0)
    task.refresh_from_db()
    assert task.status == Status.QUEUED
    assert task.run_after is None
    assert (task.attempts, task.lost_attempts) == (0, 1), "a lost attempt is given back"
    assert callbacks == []  # the job is written in the transaction, not after it
    assert engine_jobs(task.pk) == jobs + 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.LOST
    assert execution.lease_expires_at is None
    assert WORKER in execution.error_message
    event = assert_one_event(
        task.pk,
        before,
        verb=EventVerb.LOST,
        from_status=Status.RUNNING,
        to_status=Status.QUEUED,
        actor="system:reaper",
    )
    assert event.execution_id == execution.pk


def test_reap_fails_a_task_lost_past_its_limit_and_refunds(make_task, capture, settings):
    settings.TASKCENTER = {**settings.TASKCENTER, "MAX_LOST_ATTEMPTS": 0}
    task, _ = attempt_in(Status.RUNNING, make_task, max_attempts=1, quota=2)
    before = len(events(task.pk))

    with capture(execute=True) as callbacks:
        report = lifecycle.reap_lost_attempts(now=later())

    assert (report.lost, report.requeued, report.failed) == (1, 0, 1)
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.finished_at is not None
    assert task.quota_refunded_at == task.finished_at
    assert callbacks == []
    assert_one_event(
        task.pk,
        before,
        verb=EventVerb.LOST,
        from_status=Status.RUNNING,
        to_status=Status.FAILED,
        actor="system:reaper",
    )


def test_reap_requeues_a_task_whose_poll_job_was_lost(make_task, capture):
    task, execution = attempt_in(Status.RUNNING, make_task)
    lifecycle.defer_attempt(execution, seconds=1)

    with capture(execute=True) as callbacks:
        report = lifecycle.reap_lost_attempts(now=later())

    assert (report.lost, report.requeued) == (1, 1)
    assert callbacks == []  # the job is written in the transaction, not after it
    assert Task.objects.get(pk=task.pk).status == Status.QUEUED
    assert TaskExecution.objects.get(pk=execution.pk).status == ExecutionStatus.LOST


@pytest.mark.parametrize("status", [Status.STOPPED, Status.CANCELLED, Status.QUEUED])
def test_reap_of_a_task_that_moved_on_only_ends_the_execution(make_task, capture, status):
    """Stopped or cancelled while its worker died: the user's decision stands, no requeue."""
    task, execution = attempt_in(status, make_task)
    before = snapshot(task.pk)

    with capture(execute=True) as callbacks:
        report = lifecycle.reap_lost_attempts(now=later())

    assert (report.lost, report.requeued, report.failed) == (1, 0, 0)
    assert callbacks == []
    after = snapshot(task.pk)
    assert after["task"] == before["task"]
    assert after["jobs"] == before["jobs"]
    assert TaskExecution.objects.get(pk=execution.pk).status == ExecutionStatus.LOST
    assert_one_event(
        task.pk,
        len(before["events"]),
        verb=EventVerb.LOST,
        from_status="",
        to_status="",
        actor="system:reaper",
    )


@pytest.mark.parametrize("status", ALL)
def test_reap_leaves_unexpired_leases_alone(make_task, capture, status):
    task = task_in(status, make_task)
    before = snapshot(task.pk)

    with capture(execute=True) as callbacks:
        report = lifecycle.reap_lost_attempts()

    assert (report.lost, report.requeued, report.failed) == (0, 0, 0)
    assert callbacks == []
    assert snapshot(task.pk) == before


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.FAILED])
def test_reap_ignores_executions_that_already_ended(make_task, status):
    task, _ = attempt_in(status, make_task)
    before = snapshot(task.pk)

    assert lifecycle.reap_lost_attempts(now=later()).lost == 0
    assert snapshot(task.pk) == before


def test_reap_of_a_task_cancelled_while_its_worker_died_never_requeues_it(make_task, capture):
    task, execution = attempt_in(Status.RUNNING, make_task)
    lifecycle.cancel_task(task)

    with capture(execute=True) as callbacks:
        lifecycle.reap_lost_attempts(now=later())
        lifecycle.reap_lost_attempts(now=later(10 * LEASE))

    assert callbacks == []
    assert Task.objects.get(pk=task.pk).status == Status.CANCELLED
    assert lifecycle.interrupt_attempt(execution) is None


# --- fencing of a stale attempt --------------------------------------------------------------


@pytest.fixture
def stale_and_current(make_task):
    """Attempt 1 lost its lease to the reaper; attempt 2 now runs the task."""
    task, stale = attempt_in(Status.RUNNING, make_task)
    lifecycle.reap_lost_attempts(now=later())
    task, current = lifecycle.claim_attempt(task, worker_id="w2")
    return task, stale, current


@pytest.mark.parametrize(
    "outcome",
    [
        lambda execution: lifecycle.complete_attempt(execution, result={"stale": True}),
        lambda execution: lifecycle.fail_attempt(execution, error="stale"),
        lambda execution: lifecycle.fail_attempt(execution, error="stale", permanent=True),
        lambda execution: lifecycle.defer_attempt(execution, seconds=1),
        lambda execution: lifecycle.resume_attempt(execution, worker_id="w1"),
    ],
    ids=["complete", "fail", "fail-permanent", "defer", "resume"],
)
def test_outcome_of_a_stale_attempt_is_refused_and_changes_nothing(
    stale_and_current, capture, outcome
):
    task, stale, current = stale_and_current

    assert_refused(lambda: outcome(stale), task.pk, Status.RUNNING, capture)
    assert lifecycle.interrupt_attempt(stale) is None
    assert TaskExecution.objects.get(pk=current.pk).status == ExecutionStatus.RUNNING


def test_the_current_attempt_still_completes_after_a_stale_one_was_refused(stale_and_current):
    _, stale, current = stale_and_current
    with pytest.raises(InvalidTransition):
        lifecycle.complete_attempt(stale)

    assert lifecycle.complete_attempt(current, result={"n": 2}).status == Status.COMPLETED


def test_a_worker_that_missed_a_stop_and_restart_cannot_complete_the_new_attempt(make_task):
    task, old = attempt_in(Status.RUNNING, make_task)
    lifecycle.start_task(lifecycle.stop_task(task))
    _, new = lifecycle.claim_attempt(task, worker_id="w2")

    with pytest.raises(InvalidTransition):
        lifecycle.complete_attempt(old, result={"old": True})

    assert TaskExecution.objects.get(pk=old.pk).status == ExecutionStatus.RUNNING
    assert lifecycle.interrupt_attempt(old) == ExecutionStatus.STOPPED
    assert lifecycle.complete_attempt(new).status == Status.COMPLETED


# --- redispatch ------------------------------------------------------------------------------


def test_redispatch_enqueues_a_queued_task_again_without_changing_status(make_task, capture):
    task = task_in(Status.QUEUED, make_task)
    before = len(events(task.pk))
    jobs = engine_jobs(task.pk)

    with capture(execute=True) as callbacks:
        again = lifecycle.redispatch_task(task, reason="job vanished")

    assert again.status == Status.QUEUED
    assert callbacks == []  # the job is written in the transaction, not after it
    assert engine_jobs(task.pk) == jobs + 1
    event = assert_one_event(
        task.pk,
        before,
        verb=EventVerb.REQUEUED,
        from_status=Status.QUEUED,
        to_status=Status.QUEUED,
        actor="system:reaper",
    )
    assert event.data == {"reason": "job vanished"}


@pytest.mark.parametrize("status", others(Status.QUEUED))
def test_redispatch_refused_changes_nothing(make_task, capture, status):
    task = task_in(status, make_task)

    assert_refused(lambda: lifecycle.redispatch_task(task, reason="x"), task.pk, status, capture)


# --- odds and ends ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        lambda pk: lifecycle.start_task(pk),
        lambda pk: lifecycle.stop_task(pk),
        lambda pk: lifecycle.cancel_task(pk),
        lambda pk: lifecycle.retry_task(pk),
        lambda pk: lifecycle.claim_attempt(pk, worker_id=WORKER),
        lambda pk: lifecycle.redispatch_task(pk, reason="x"),
    ],
    ids=["start", "stop", "cancel", "retry", "claim", "redispatch"],
)
def test_actions_on_a_missing_task_are_refused_with_no_status(action):
    with pytest.raises(InvalidTransition) as refused:
        action(987654)

    assert refused.value.current_status is None
    assert "does not exist" in str(refused.value)


def test_transitions_accept_a_task_or_its_id(make_task):
    task = make_task()

    assert lifecycle.start_task(task.pk).status == Status.QUEUED
    assert lifecycle.stop_task(task).status == Status.STOPPED


def test_a_full_life_leaves_a_readable_audit_trail(make_task, user):
    task = make_task(max_attempts=2)
    lifecycle.start_task(task, actor=user)
    _, first = lifecycle.claim_attempt(task, worker_id="a")
    lifecycle.fail_attempt(first, error="flaky", retry_delay=0)
    _, second = lifecycle.claim_attempt(task, worker_id="b")
    lifecycle.complete_attempt(second, result={})

    trail = [(e.verb, e.from_status, e.to_status, e.actor) for e in events(task.pk)]
    assert trail == [
        ("created", "", "PENDING", "user:alice"),
        ("queued", "PENDING", "QUEUED", "user:alice"),
        ("started", "QUEUED", "RUNNING", "worker:a"),
        ("requeued", "RUNNING", "QUEUED", "worker:a"),
        ("started", "QUEUED", "RUNNING", "worker:b"),
        ("completed", "RUNNING", "COMPLETED", "worker:b"),
    ]
