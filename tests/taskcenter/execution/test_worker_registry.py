"""The worker registry with real ``run_worker`` processes: registration, beats, a clean stop,
a SIGKILLed worker going dead with its recovered attempt linked, and the retention."""

from __future__ import annotations

import signal
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

import taskcenter
from taskcenter.execution import reaper, worker_registry
from taskcenter.models import ExecutionStatus, Status, Task, TaskExecution, WorkerState
from taskcenter.models import WorkerProcess as WorkerRow
from tests.support.processes import wait_for

# Short leases: beats every 2/3 s, a silent worker is dead after 2 s.
FAST_LEASE = {"TASKCENTER_LEASE_SECONDS": "2"}
FAST_REAPER = ("--reap-interval", "0.5")


def row(name: str) -> WorkerRow | None:
    return WorkerRow.objects.filter(name=name).order_by("-started_at").first()


def state(worker: WorkerRow) -> str:
    return worker.state(silent_since=worker_registry.silent_since())


@pytest.mark.slow
def test_a_worker_registers_beats_and_lists_its_running_attempts(start_worker, make_task, settings):
    settings.TASKCENTER = {**settings.TASKCENTER, "LEASE_SECONDS": 2.0}
    worker = start_worker("--worker-id", "beating", "--concurrency", "3", env=FAST_LEASE)
    registered = wait_for(lambda: row("beating"), timeout=60)
    assert (registered.host, registered.pid, registered.engine) == (
        socket.gethostname(),
        worker.pid,
        "database",
    )
    assert registered.queues == ["default"]
    assert registered.concurrency == 3
    assert registered.version == taskcenter.__version__
    assert registered.stopped_at is None

    task = make_task("demo.sleep", {"ms": 4000}, start=True)
    execution = wait_for(lambda: task.executions.filter(status=ExecutionStatus.RUNNING).first())
    busy = wait_for(lambda: WorkerRow.objects.filter(pk=registered.pk, busy=1).first())
    assert busy.running_attempts == [execution.pk]
    assert busy.last_seen_at > registered.last_seen_at
    assert state(busy) == WorkerState.ALIVE
    assert worker_registry.workers_alive() == 1

    wait_for(lambda: Task.objects.get(pk=task.pk).status == Status.COMPLETED, timeout=15)
    idle = wait_for(
        lambda: WorkerRow.objects.filter(pk=registered.pk, busy=0, attempts_run=1).first()
    )
    assert idle.running_attempts == []
    assert idle.outcomes == {"completed": 1}
    before = idle.last_seen_at
    # An idle worker beats too.
    wait_for(lambda: WorkerRow.objects.get(pk=registered.pk).last_seen_at > before, timeout=5)


@pytest.mark.slow
def test_sigterm_marks_the_worker_stopped_not_dead(start_worker, make_task, settings):
    settings.TASKCENTER = {**settings.TASKCENTER, "LEASE_SECONDS": 2.0}
    poller = make_task("demo.poll", {"polls": 2, "interval": 0.3}, start=True)
    worker = start_worker("--worker-id", "leaving", env=FAST_LEASE)
    wait_for(lambda: Task.objects.get(pk=poller.pk).status == Status.COMPLETED, timeout=30)

    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=15) == 0

    stopped = row("leaving")
    assert stopped is not None
    assert stopped.stopped_at is not None
    assert state(stopped) == WorkerState.STOPPED
    # Two poll-again re-dispatches and the attempt that completed: visible per worker.
    assert stopped.attempts_deferred == 2
    assert stopped.outcomes["waiting"] == 2
    assert stopped.busy == 0
    assert worker_registry.workers_alive() == 0
    assert WorkerRow.objects.dead(silent_since=worker_registry.silent_since()).count() == 0


@pytest.mark.slow
def test_a_sigkilled_worker_goes_dead_and_its_recovered_attempt_is_linked(
    start_worker, make_task, settings
):
    settings.TASKCENTER = {**settings.TASKCENTER, "LEASE_SECONDS": 2.0}
    task = make_task("demo.countdown", {"seconds": 2, "interval": 0.1}, start=True)
    doomed = start_worker("--worker-id", "doomed", env=FAST_LEASE)
    first = wait_for(lambda: task.executions.filter(status=ExecutionStatus.RUNNING).first())
    wait_for(lambda: WorkerRow.objects.filter(name="doomed", busy=1).exists())

    doomed.process.kill()
    doomed.process.wait(timeout=5)
    start_worker("--worker-id", "rescuer", *FAST_REAPER, env=FAST_LEASE)

    wait_for(lambda: Task.objects.get(pk=task.pk).status == Status.COMPLETED, timeout=30)
    assert TaskExecution.objects.get(pk=first.pk).status == ExecutionStatus.LOST
    dead = wait_for(lambda: (r := row("doomed")) and state(r) == WorkerState.DEAD and r)
    assert dead.stopped_at is None
    assert list(worker_registry.lost_attempts(dead)) == [TaskExecution.objects.get(pk=first.pk)]
    assert worker_registry.lost_attempts_total() == 1
    rescuer = row("rescuer")
    assert rescuer is not None
    assert state(rescuer) == WorkerState.ALIVE
    assert list(worker_registry.lost_attempts(rescuer)) == []
    assert worker_registry.workers_alive() == 1


@pytest.mark.django_db
def test_the_reaper_prunes_rows_of_workers_gone_longer_than_the_retention(settings):
    now = timezone.now()
    week = timedelta(days=7)

    def make(name: str, *, seen: timedelta, stopped: timedelta | None = None) -> None:
        WorkerRow.objects.create(
            name=name,
            host="h",
            pid=1,
            engine="database",
            started_at=now - seen - timedelta(hours=1),
            last_seen_at=now - seen,
            stopped_at=None if stopped is None else now - stopped,
        )

    make("alive", seen=timedelta(seconds=1))
    make("dead-recently", seen=timedelta(days=1))
    make("dead-long-ago", seen=week + timedelta(hours=1))
    make("stopped-recently", seen=timedelta(days=2), stopped=timedelta(days=2))
    make("stopped-long-ago", seen=week * 2, stopped=week * 2)

    report = reaper.reap(now=now)

    assert report.workers_pruned == 2
    assert sorted(WorkerRow.objects.values_list("name", flat=True)) == [
        "alive",
        "dead-recently",
        "stopped-recently",
    ]
