"""Real worker processes: end to end, crashes (SIGKILL), freezes (SIGSTOP), stop and cancel."""

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from taskcenter import lifecycle
from taskcenter.models import EventVerb, ExecutionStatus, Status, Task, TaskExecution
from tests.support.processes import ROOT, test_database_url, wait_for

pytestmark = pytest.mark.slow

# Short leases so a dead worker is noticed in about two seconds.
FAST_LEASE = {"TASKCENTER_LEASE_SECONDS": "2"}
FAST_REAPER = ("--reap-interval", "0.5")


def verbs(task: Task) -> list[str]:
    """The task's transitions in order; its progress reports (at most two a second) between
    them are left out, as their number depends on how fast the machine is."""
    events = task.events.exclude(verb=EventVerb.PROGRESS).order_by("at", "id")
    return list(events.values_list("verb", flat=True))


def running_execution(task: Task) -> TaskExecution:
    return wait_for(
        lambda: task.executions.filter(status=ExecutionStatus.RUNNING).first(), timeout=15
    )


def test_worker_process_runs_queued_tasks_to_completion(start_worker, make_task):
    tasks = [make_task("demo.noop", start=True) for _ in range(5)]
    worker = start_worker("--concurrency", "2")

    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == 5)

    for task in tasks:
        task.refresh_from_db()
        assert task.result == {"ok": True}
        assert task.progress == 100
        execution = task.executions.get()
        assert execution.status == ExecutionStatus.COMPLETED
        assert execution.worker_id
        assert verbs(task) == ["created", "started", "completed"]
    assert worker.terminate() == 0


def test_worker_runs_attempts_concurrently_up_to_its_concurrency(start_worker, make_task):
    for _ in range(8):
        make_task("demo.sleep", {"ms": 1000}, start=True)
    start_worker("--concurrency", "8")

    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == 8, timeout=30)

    # Eight one-second sleeps side by side, not one after the other: every attempt started
    # before the first one ended. Timed by the attempts' own rows, so the worker's start-up
    # on a loaded machine does not count.
    spans = TaskExecution.objects.values_list("started_at", "completed_at")
    assert len(spans) == 8
    assert max(start for start, _ in spans) < min(end for _, end in spans)


def test_worker_killed_mid_task_is_recovered_and_the_task_completes(start_worker, make_task):
    # demo.countdown allows one attempt: a worker's death must not spend it.
    task = make_task("demo.countdown", {"seconds": 2, "interval": 0.1}, start=True)
    assert task.max_attempts == 1
    doomed = start_worker("--worker-id", "doomed", env=FAST_LEASE)
    first = running_execution(task)
    wait_for(lambda: Task.objects.get(pk=task.pk).progress > 0)

    doomed.process.kill()  # SIGKILL: no goodbye, no cleanup
    doomed.process.wait(timeout=5)
    start_worker("--worker-id", "rescuer", *FAST_REAPER, env=FAST_LEASE)

    wait_for(lambda: Task.objects.get(pk=task.pk).status == Status.COMPLETED, timeout=30)
    task.refresh_from_db()
    first.refresh_from_db()
    assert first.status == ExecutionStatus.LOST
    assert first.worker_id == "doomed"
    assert "doomed" in first.error_message
    second = task.executions.get(attempt=2)
    assert second.status == ExecutionStatus.COMPLETED
    assert second.worker_id == "rescuer"
    assert task.result == {"counted_seconds": 2}
    assert (task.attempts, task.lost_attempts, task.total_attempts) == (1, 1, 2)
    assert verbs(task) == ["created", "started", "lost", "started", "completed"]


def test_worker_killed_after_cancel_leaves_task_cancelled_never_retried(start_worker, make_task):
    # A cancel is recorded at once; the handler would acknowledge it at its next checkpoint,
    # but its worker dies first. The reaper must end the attempt LOST and not requeue.
    task = make_task("demo.sleep", {"ms": 30_000}, start=True, max_attempts=3)
    doomed = start_worker("--worker-id", "doomed", env=FAST_LEASE)
    first = running_execution(task)

    lifecycle.cancel_task(task.pk, actor="test")
    doomed.process.kill()
    doomed.process.wait(timeout=5)
    start_worker("--worker-id", "rescuer", *FAST_REAPER, env=FAST_LEASE)

    wait_for(lambda: TaskExecution.objects.get(pk=first.pk).status == ExecutionStatus.LOST)
    time.sleep(1.5)  # give a wrong requeue the time to show itself
    task.refresh_from_db()
    assert task.status == Status.CANCELLED
    assert task.executions.count() == 1
    assert verbs(task) == ["created", "started", "cancelled", "lost"]


def test_frozen_worker_cannot_write_its_late_result(start_worker, make_task):
    # demo.sleep never checks in, so after SIGCONT the frozen worker goes straight on to
    # report success: the write must be refused because the reaper gave the task away.
    task = make_task("demo.sleep", {"ms": 2500}, start=True, max_attempts=3)
    # One slot, busy with our task: the frozen worker never opens a claim transaction, so the
    # SIGSTOP cannot land while it holds SQLite's write lock (which would stall every writer).
    frozen = start_worker("--worker-id", "frozen", "--concurrency", "1", env=FAST_LEASE)
    first = running_execution(task)
    frozen.signal(signal.SIGSTOP)

    start_worker("--worker-id", "rescuer", *FAST_REAPER, env=FAST_LEASE)
    second = wait_for(lambda: task.executions.filter(attempt=2).first(), timeout=20)
    assert TaskExecution.objects.get(pk=first.pk).status == ExecutionStatus.LOST
    frozen.signal(signal.SIGCONT)  # wakes while attempt 2 is still running

    wait_for(lambda: Task.objects.get(pk=task.pk).status == Status.COMPLETED, timeout=20)
    time.sleep(1.0)  # let the frozen worker finish its (refused) report
    task.refresh_from_db()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == ExecutionStatus.LOST
    assert first.completed_at < second.completed_at
    assert second.status == ExecutionStatus.COMPLETED
    assert second.worker_id == "rescuer"
    assert verbs(task).count("completed") == 1
    assert task.events.get(verb="completed").execution_id == second.pk
    assert "Traceback" not in frozen.output()


@pytest.mark.parametrize(
    ("action", "task_status", "execution_status"),
    [
        (lifecycle.stop_task, Status.STOPPED, ExecutionStatus.STOPPED),
        (lifecycle.cancel_task, Status.CANCELLED, ExecutionStatus.CANCELLED),
    ],
)
def test_stop_and_cancel_reach_a_running_handler_at_its_next_checkpoint(
    start_worker, make_task, action, task_status, execution_status
):
    task = make_task("demo.countdown", {"seconds": 60, "interval": 0.1}, start=True)
    start_worker()
    execution = running_execution(task)
    wait_for(lambda: Task.objects.get(pk=task.pk).progress > 0)

    action(task.pk, actor="test")
    acted_at = time.monotonic()

    wait_for(
        lambda: TaskExecution.objects.get(pk=execution.pk).status == execution_status,
        timeout=5,
        every=0.01,
    )
    # One tick of the countdown is 0.1 s; allow for the write and the poll of this test.
    assert time.monotonic() - acted_at < 1.0
    task.refresh_from_db()
    assert task.status == task_status
    assert task.progress < 10


def test_stopped_task_started_again_runs_a_new_attempt(start_worker, make_task):
    task = make_task("demo.countdown", {"seconds": 60, "interval": 0.1}, start=True)
    start_worker()
    first = running_execution(task)
    lifecycle.stop_task(task.pk, actor="test")
    wait_for(lambda: TaskExecution.objects.get(pk=first.pk).status == ExecutionStatus.STOPPED)

    lifecycle.start_task(task.pk, actor="test")

    second = wait_for(lambda: task.executions.filter(attempt=2, status="RUNNING").first())
    assert second.pk != first.pk
    lifecycle.cancel_task(task.pk, actor="test")
    wait_for(lambda: TaskExecution.objects.get(pk=second.pk).status == ExecutionStatus.CANCELLED)


def test_automatic_retries_back_off_then_fail_with_one_execution_per_attempt(
    start_worker, make_task
):
    task = make_task("demo.flaky", {"fail_times": 10}, start=True)
    start_worker()

    wait_for(lambda: Task.objects.get(pk=task.pk).status == Status.FAILED, timeout=20)
    task.refresh_from_db()
    executions = list(task.executions.order_by("attempt"))
    assert [e.attempt for e in executions] == [1, 2, 3]
    assert {e.status for e in executions} == {ExecutionStatus.FAILED}
    assert task.attempts == task.max_attempts == 3
    assert task.error_message == "Simulated platform outage (attempt 3)"
    # demo.flaky backs off 0.5 s then 1 s, each jittered down by at most half.
    gaps = [
        (later.started_at - earlier.completed_at).total_seconds()
        for earlier, later in itertools.pairwise(executions)
    ]
    assert gaps[0] >= 0.25
    assert gaps[1] >= 0.5
    assert verbs(task) == [
        "created",
        "started",
        "requeued",
        "started",
        "requeued",
        "started",
        "failed",
    ]


def test_permanent_error_fails_at_once_without_retry(start_worker, make_task):
    task = make_task("demo.flaky", {"permanent": True, "message": "Account suspended"}, start=True)
    start_worker()

    wait_for(lambda: Task.objects.get(pk=task.pk).status == Status.FAILED)
    task.refresh_from_db()
    assert task.error_message == "Account suspended"
    assert task.executions.count() == 1
    assert task.events.get(verb="failed").data["permanent"] is True


def test_polling_task_releases_the_worker_between_polls(start_worker, make_task):
    poller = make_task("demo.poll", {"polls": 3, "interval": 0.5}, start=True)
    start_worker("--concurrency", "1")
    wait_for(lambda: Task.objects.get(pk=poller.pk).events.filter(verb="waiting").exists())

    # With one slot, this only runs now because the poller is not holding it.
    quick = make_task("demo.noop", start=True)
    wait_for(lambda: Task.objects.get(pk=quick.pk).status == Status.COMPLETED, timeout=5)
    assert Task.objects.get(pk=poller.pk).status == Status.RUNNING

    wait_for(lambda: Task.objects.get(pk=poller.pk).status == Status.COMPLETED, timeout=15)
    poller.refresh_from_db()
    assert poller.result == {"polls": 3}
    execution = poller.executions.get()  # one attempt, however many polls
    assert execution.status == ExecutionStatus.COMPLETED
    assert verbs(poller) == [
        "created", "started",
        "waiting", "resumed", "waiting", "resumed", "waiting", "resumed",
        "completed",
    ]  # fmt: skip


def test_sigterm_lets_running_attempts_finish_before_exiting(start_worker, make_task):
    task = make_task("demo.sleep", {"ms": 1500}, start=True)
    worker = start_worker()
    running_execution(task)

    worker.signal(signal.SIGTERM)

    assert worker.process.wait(timeout=10) == 0
    task.refresh_from_db()
    assert task.status == Status.COMPLETED


def test_sigterm_runs_the_attempts_claimed_ahead_and_leaves_the_rest_queued(
    start_worker, make_task
):
    tasks = [make_task("demo.sleep", {"ms": 40}, start=True) for _ in range(300)]
    worker = start_worker("--concurrency", "4")
    # Past its first attempts the worker keeps claimed attempts waiting for its busy slots.
    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() >= 40, timeout=60)

    worker.signal(signal.SIGTERM)

    assert worker.process.wait(timeout=30) == 0
    statuses = Counter(
        Task.objects.filter(pk__in=[t.pk for t in tasks]).values_list("status", flat=True)
    )
    # Whatever it claimed, it ran: nothing left RUNNING for the reaper, the rest still QUEUED
    # for the next worker.
    assert set(statuses) <= {Status.COMPLETED, Status.QUEUED}, statuses
    assert statuses[Status.QUEUED] > 0, statuses
    assert TaskExecution.objects.filter(task__in=tasks).count() == statuses[Status.COMPLETED]
    assert not TaskExecution.objects.exclude(status=ExecutionStatus.COMPLETED).exists()


def test_clients_and_a_busy_worker_share_the_database_without_lock_errors(
    start_worker, make_task, user
):
    # Web requests write while the worker claims, heartbeats and completes; on SQLite that is
    # one writer at a time, so anything but IMMEDIATE transactions + busy timeout would raise
    # "database is locked" here.
    worker = start_worker("--concurrency", "8")
    created = []
    for round_number in range(60):
        created.append(make_task("demo.noop", start=True))
        extra = make_task("demo.countdown", {"seconds": 1, "interval": 0.05}, start=True)
        if round_number % 3 == 0:
            lifecycle.cancel_task(extra.pk, actor="test")
        list(Task.objects.filter(owner=user).order_by("-id")[:20])  # a list page

    wait_for(
        lambda: (
            Task.objects.filter(pk__in=[t.pk for t in created], status="COMPLETED").count()
            == len(created)
        ),
        timeout=60,
    )
    wait_for(lambda: not Task.objects.filter(status__in=["QUEUED", "RUNNING"]).exists(), timeout=30)
    assert "locked" not in worker.output().lower()
    assert "Traceback" not in worker.output()


def test_task_whose_engine_job_vanished_is_dispatched_again_and_runs(start_worker, make_task):
    from django_tasks_db.models import DBTaskResult

    task = make_task("demo.noop", start=True)
    assert DBTaskResult.objects.filter(args_kwargs__args=[task.pk]).delete()[0] == 1  # "flushed"

    start_worker(*FAST_REAPER, env={"TASKCENTER_ORPHAN_AFTER_SECONDS": "1"})

    wait_for(lambda: Task.objects.get(pk=task.pk).status == Status.COMPLETED, timeout=15)
    requeued = task.events.get(verb="requeued")
    assert requeued.actor == "system:reaper"
    assert requeued.data == {"reason": "engine job missing"}


def test_stock_db_worker_runs_task_center_jobs_too(make_task, transactional_db):
    tasks = [make_task("demo.flaky", {"fail_times": 0}, start=True) for _ in range(3)]

    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--batch",
            "--no-startup-delay",
            "--interval",
            "0",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": test_database_url()},
        check=True,
        capture_output=True,
        timeout=60,
    )

    for task in tasks:
        task.refresh_from_db()
        assert task.status == Status.COMPLETED
        assert task.executions.get().status == ExecutionStatus.COMPLETED


def test_worker_survives_losing_its_database_connections(start_worker, make_task):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("terminating server connections needs PostgreSQL")
    worker = start_worker("--concurrency", "2")
    first = make_task("demo.noop", start=True)
    wait_for(lambda: Task.objects.get(pk=first.pk).status == Status.COMPLETED)

    with connection.cursor() as cursor:  # what a server restart does to its clients
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    second = make_task("demo.noop", start=True)

    wait_for(lambda: Task.objects.get(pk=second.pk).status == Status.COMPLETED, timeout=20)
    assert worker.process.poll() is None  # still running
