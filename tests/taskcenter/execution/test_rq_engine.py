"""The RQ engine (``TASKS_BACKEND=rq``): real Redis, real ``run_worker`` processes on RQ.

Runs when ``TEST_REDIS_URL`` names a Redis database the tests may flush (``.ci/run`` starts a
redis-server and sets it); the rest of the suite runs on the database engine.
"""

from __future__ import annotations

import os
import signal

import pytest

from taskcenter.execution import dispatch
from taskcenter.models import EventVerb, ExecutionStatus, Status, Task
from tests.support.processes import wait_for

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (a Redis the tests may flush)"),
]

FAST_LEASE = {"TASKCENTER_LEASE_SECONDS": "2"}
FAST_REAPER = ("--reap-interval", "0.5")


def queued_jobs() -> int:
    import django_rq

    return django_rq.get_queue("default").count


def test_tasks_go_through_redis_and_an_rq_worker_runs_them(rq_engine, start_rq_worker, make_task):
    tasks = [make_task("demo.noop", start=True) for _ in range(5)]
    assert dispatch.uses_rq_engine()
    assert queued_jobs() == 5
    assert dispatch.tasks_with_waiting_jobs([t.pk for t in tasks]) == {t.pk for t in tasks}

    worker = start_rq_worker("--worker-id", "rq-one")

    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == 5, timeout=30)
    for task in tasks:
        execution = task.executions.get()
        assert execution.status == ExecutionStatus.COMPLETED
        assert execution.worker_id == "rq-one"
    assert queued_jobs() == 0
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=15) == 0


def test_a_polling_task_waits_in_rqs_schedule_not_in_the_worker(
    rq_engine, start_rq_worker, make_task
):
    poller = make_task("demo.poll", {"polls": 2, "interval": 0.5}, start=True)
    start_rq_worker()
    wait_for(lambda: Task.objects.get(pk=poller.pk).events.filter(verb="waiting").exists())

    # The only worker is free while the poller waits: a quick task runs meanwhile.
    quick = make_task("demo.noop", start=True)
    wait_for(lambda: Task.objects.get(pk=quick.pk).status == Status.COMPLETED, timeout=10)

    wait_for(lambda: Task.objects.get(pk=poller.pk).status == Status.COMPLETED, timeout=30)
    poller.refresh_from_db()
    assert poller.result == {"polls": 2}
    assert poller.executions.get().status == ExecutionStatus.COMPLETED


def test_an_rq_worker_killed_mid_attempt_is_recovered_by_another_ones_reaper(
    rq_engine, start_rq_worker, make_task
):
    # demo.countdown allows one attempt: a worker's death must not spend it.
    task = make_task("demo.countdown", {"seconds": 2, "interval": 0.1}, start=True)
    doomed = start_rq_worker("--worker-id", "doomed", env=FAST_LEASE)
    wait_for(lambda: Task.objects.get(pk=task.pk).progress > 0, timeout=30)

    doomed.process.kill()  # SIGKILL: RQ still lists the job as started
    doomed.process.wait(timeout=5)
    start_rq_worker("--worker-id", "rescuer", *FAST_REAPER, env=FAST_LEASE)

    wait_for(lambda: Task.objects.get(pk=task.pk).status == Status.COMPLETED, timeout=30)
    attempts = task.executions.order_by("attempt")
    assert [(e.worker_id, e.status) for e in attempts] == [
        ("doomed", ExecutionStatus.LOST),
        ("rescuer", ExecutionStatus.COMPLETED),
    ]
    task.refresh_from_db()
    assert (task.max_attempts, task.attempts, task.lost_attempts) == (1, 1, 1)
    lost = task.events.get(verb=EventVerb.LOST)
    assert (lost.to_status, lost.data["lost_attempts"]) == (Status.QUEUED, 1)


def test_tasks_whose_jobs_redis_lost_are_dispatched_again(rq_engine, start_rq_worker, make_task):
    tasks = [make_task("demo.noop", start=True) for _ in range(3)]
    rq_engine.flushdb()  # Redis restarted without persistence: the jobs are gone
    assert dispatch.tasks_with_waiting_jobs([t.pk for t in tasks]) == set()

    start_rq_worker(*FAST_REAPER, env={"TASKCENTER_ORPHAN_AFTER_SECONDS": "0.5"})

    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == 3, timeout=30)
    for task in tasks:
        requeued = task.events.get(verb=EventVerb.REQUEUED)
        assert requeued.data == {"reason": "engine job missing"}


def test_a_task_created_while_redis_is_down_is_created_and_dispatched_later(
    rq_engine, settings, api, start_rq_worker
):
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:1/0"}}  # nothing listens there

    created = api.post("/api/v1/tasks", {"task_type": "demo.noop", "start": True}, format="json")

    assert created.status_code == 201, created.content
    task = Task.objects.get(pk=created.json()["id"])
    assert task.status == Status.QUEUED
    assert rq_engine.llen("rq:queue:default") == 0
    # Redis is back (the worker uses the real URL): the reaper finds the orphan.
    start_rq_worker(*FAST_REAPER, env={"TASKCENTER_ORPHAN_AFTER_SECONDS": "0.5"})
    wait_for(lambda: Task.objects.get(pk=task.pk).status == Status.COMPLETED, timeout=30)


def test_an_rq_worker_registers_counts_its_poll_agains_and_stops_cleanly(
    rq_engine, start_rq_worker, make_task
):
    from taskcenter.models import WorkerProcess as WorkerRow

    poller = make_task("demo.poll", {"polls": 2, "interval": 0.3}, start=True)
    worker = start_rq_worker("--worker-id", "rq-registered", "--concurrency", "2")
    wait_for(lambda: Task.objects.get(pk=poller.pk).status == Status.COMPLETED, timeout=30)
    registered = WorkerRow.objects.get(name="rq-registered")
    assert (registered.engine, registered.concurrency, registered.pid) == ("rq", 2, worker.pid)
    assert registered.stopped_at is None

    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=15) == 0

    registered.refresh_from_db()
    assert registered.stopped_at is not None
    assert registered.attempts_deferred == 2
    assert registered.outcomes == {"waiting": 2, "completed": 1}


def test_forked_rq_workers_share_the_queue(rq_engine, start_rq_worker, make_task):
    tasks = [make_task("demo.sleep", {"ms": 300}, start=True) for _ in range(8)]
    # One slot each: two processes run two at a time, so both must take some.
    worker = start_rq_worker("--worker-id", "rq-pair", "--processes", "2", "--concurrency", "1")

    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == 8, timeout=60)
    names = {task.executions.get().worker_id for task in tasks}
    assert names == {"rq-pair-1", "rq-pair-2"}
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=30) == 0
