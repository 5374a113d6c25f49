"""``run_worker --concurrency N`` on the RQ engine: N attempts at once in one process.

Real Redis (``TEST_REDIS_URL``), real worker processes. Besides Task Center's own tables, each
test reads RQ's registries the way RQ's tools do (without their cleanup, which would repair what
the worker left): the started registry empty once the worker is done, every job finished or
failed as it ran.
"""

from __future__ import annotations

import itertools
import os
import signal

import pytest

from taskcenter import lifecycle
from taskcenter.execution.dispatch import RUN_ATTEMPT_PATH
from taskcenter.models import EventVerb, ExecutionStatus, Status, Task, TaskExecution
from tests.support.processes import wait_for

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (a Redis the tests may flush)"),
]

FAST_LEASE = {"TASKCENTER_LEASE_SECONDS": "2"}
FAST_REAPER = ("--reap-interval", "0.5")


def verbs(task: Task) -> list[str]:
    return list(task.events.order_by("at", "id").values_list("verb", flat=True))


class Registries:
    """RQ's view of the default queue, read as ``rq info`` and django-rq's admin read it."""

    def __init__(self) -> None:
        import django_rq
        from django_tasks_rq.backend import Job

        self.queue = django_rq.get_queue("default", job_class=Job)

    def counts(self) -> dict[str, int]:
        from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

        queue = self.queue
        return {
            "queued": queue.count,
            "intermediate": queue.connection.llen(queue.intermediate_queue_key),
            "started": StartedJobRegistry(queue=queue).get_job_count(cleanup=False),
            "finished": FinishedJobRegistry(queue=queue).get_job_count(cleanup=False),
            "failed": FailedJobRegistry(queue=queue).get_job_count(cleanup=False),
        }

    def finished_jobs(self) -> list:
        from rq.registry import FinishedJobRegistry

        ids = FinishedJobRegistry(queue=self.queue).get_job_ids(cleanup=False)
        return self.queue.job_class.fetch_many(ids, connection=self.queue.connection)

    def live_workers(self) -> list:
        from rq import Worker

        return Worker.all(queue=self.queue)


def test_four_slots_run_four_sleeping_jobs_at_once(rq_engine, start_rq_worker, make_task):
    tasks = [make_task("demo.sleep", {"ms": 1500}, start=True) for _ in range(4)]
    worker = start_rq_worker("--worker-id", "rq-four", "--concurrency", "4")
    wait_for(lambda: Task.objects.filter(status=Status.RUNNING).count() == 4, timeout=30)

    # While they run, RQ's tools see four started jobs of a busy worker (its cleanup, which
    # fails jobs whose worker stopped renewing them, leaves them be).
    from rq.registry import StartedJobRegistry

    registries = Registries()
    assert len(StartedJobRegistry(queue=registries.queue).get_job_ids()) == 4
    assert [w.get_state() for w in registries.live_workers()] == ["busy"]
    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == 4, timeout=30)

    executions = list(TaskExecution.objects.filter(task__in=tasks))
    assert {e.status for e in executions} == {ExecutionStatus.COMPLETED}
    assert {e.worker_id for e in executions} == {"rq-four"}
    # Side by side: every attempt started before any ended.
    assert max(e.started_at for e in executions) < min(e.completed_at for e in executions)
    for task in tasks:
        task.refresh_from_db()
        assert task.result == {"slept_ms": 1500}
        assert verbs(task) == ["created", "started", "completed"]
    wait_for(lambda: registries.counts()["finished"] == 4)
    assert registries.counts() == {
        "queued": 0,
        "intermediate": 0,
        "started": 0,
        "finished": 4,
        "failed": 0,
    }
    jobs = registries.finished_jobs()
    assert {job.func_name for job in jobs} == {RUN_ATTEMPT_PATH}
    assert {job.args[0] for job in jobs} == {t.pk for t in tasks}
    assert {job.get_status() for job in jobs} == {"finished"}
    assert {job.worker_name for job in jobs} == {"rq-four"}
    assert {job.latest_result().return_value for job in jobs} == {"completed"}
    assert [w.name for w in registries.live_workers()] == ["rq-four"]

    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=15) == 0
    assert registries.live_workers() == []


def test_one_slot_runs_its_attempts_one_after_another(rq_engine, start_rq_worker, make_task):
    tasks = [make_task("demo.sleep", {"ms": 300}, start=True) for _ in range(3)]
    worker = start_rq_worker("--concurrency", "1")

    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == 3, timeout=30)
    executions = list(TaskExecution.objects.filter(task__in=tasks).order_by("started_at"))
    for before, after in itertools.pairwise(executions):
        assert after.started_at >= before.completed_at
    wait_for(lambda: Registries().counts()["finished"] == 3)
    assert Registries().counts()["started"] == 0
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=15) == 0


def test_cancelling_one_running_attempt_leaves_the_others_running(
    rq_engine, start_rq_worker, make_task
):
    tasks = [
        make_task("demo.countdown", {"seconds": 3, "interval": 0.1}, start=True) for _ in range(3)
    ]
    doomed, *others = tasks
    start_rq_worker("--concurrency", "3")
    wait_for(lambda: Task.objects.filter(status=Status.RUNNING, progress__gt=0).count() == 3)

    lifecycle.cancel_task(doomed.pk, actor="test")

    wait_for(lambda: doomed.executions.get().status == ExecutionStatus.CANCELLED, timeout=5)
    assert Task.objects.filter(pk__in=[t.pk for t in others], status=Status.RUNNING).count() == 2
    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == 2, timeout=30)
    doomed.refresh_from_db()
    assert doomed.status == Status.CANCELLED
    assert doomed.progress < 100
    for task in others:
        task.refresh_from_db()
        assert task.result == {"counted_seconds": 3}
        assert task.executions.get().status == ExecutionStatus.COMPLETED
    registries = Registries()
    wait_for(lambda: registries.counts()["finished"] == 3)
    assert registries.counts()["started"] == registries.counts()["failed"] == 0


def test_sigterm_finishes_the_running_attempts_then_exits(rq_engine, start_rq_worker, make_task):
    running = [make_task("demo.sleep", {"ms": 2000}, start=True) for _ in range(4)]
    waiting = [make_task("demo.sleep", {"ms": 2000}, start=True) for _ in range(3)]
    worker = start_rq_worker("--concurrency", "4")
    wait_for(lambda: Task.objects.filter(status=Status.RUNNING).count() == 4, timeout=30)

    worker.signal(signal.SIGTERM)

    assert worker.process.wait(timeout=20) == 0, worker.output()
    for task in running:
        task.refresh_from_db()
        assert task.status == Status.COMPLETED
        assert task.result == {"slept_ms": 2000}
        assert task.executions.get().status == ExecutionStatus.COMPLETED
    for task in waiting:  # never taken: their jobs wait in RQ's queue for the next worker
        task.refresh_from_db()
        assert task.status == Status.QUEUED
        assert not task.executions.exists()
    assert Registries().counts() == {
        "queued": 3,
        "intermediate": 0,
        "started": 0,
        "finished": 4,
        "failed": 0,
    }
    assert Registries().live_workers() == []


def test_a_second_sigterm_exits_at_once(rq_engine, start_rq_worker, make_task):
    task = make_task("demo.countdown", {"seconds": 60, "interval": 0.1}, start=True)
    worker = start_rq_worker("--concurrency", "2")
    wait_for(lambda: Task.objects.get(pk=task.pk).progress > 0, timeout=30)

    worker.signal(signal.SIGTERM)
    wait_for(lambda: "finishing 1 running attempt(s)" in worker.output())
    worker.signal(signal.SIGTERM)

    assert worker.process.wait(timeout=5) == 1
    task.refresh_from_db()
    assert task.status == Status.RUNNING  # left to the reaper, once its lease runs out


def test_a_killed_worker_s_attempts_are_recovered_and_its_jobs_failed_by_rq(
    rq_engine, start_rq_worker, make_task
):
    # demo.countdown allows one attempt: a worker's death must not spend it.
    tasks = [
        make_task("demo.countdown", {"seconds": 2, "interval": 0.1}, start=True) for _ in range(4)
    ]
    doomed = start_rq_worker("--worker-id", "doomed", "--concurrency", "4", env=FAST_LEASE)
    wait_for(lambda: Task.objects.filter(status=Status.RUNNING, progress__gt=0).count() == 4)

    doomed.process.kill()  # SIGKILL: RQ still lists its four jobs as started
    doomed.process.wait(timeout=5)
    assert Registries().counts()["started"] == 4
    start_rq_worker("--worker-id", "rescuer", "--concurrency", "4", *FAST_REAPER, env=FAST_LEASE)

    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == 4, timeout=40)
    for task in tasks:
        attempts = task.executions.order_by("attempt")
        assert [(e.worker_id, e.status) for e in attempts] == [
            ("doomed", ExecutionStatus.LOST),
            ("rescuer", ExecutionStatus.COMPLETED),
        ]
        task.refresh_from_db()
        assert (task.max_attempts, task.attempts, task.lost_attempts) == (1, 1, 1)
        assert task.result == {"counted_seconds": 2}
        assert task.events.filter(verb=EventVerb.LOST).count() == 1
    # RQ's side, repaired by the rescuer's registry maintenance once the dead worker's entries
    # went unrenewed: the killed jobs failed as abandoned, the new ones finished.
    registries = Registries()
    wait_for(lambda: registries.counts()["failed"] == 4, timeout=20)
    wait_for(lambda: registries.counts()["finished"] == 4)
    assert registries.counts()["started"] == 0
    # The dead worker's own key stays until its TTL runs out (RQ's worker TTL plus a minute),
    # as any RQ worker's does.
    assert "rescuer" in [w.name for w in registries.live_workers()]


def test_other_django_tasks_on_the_queue_run_as_rq_runs_them(rq_engine, start_rq_worker, make_task):
    from django_tasks import TaskResultStatus, task_backends

    from tests.support.plain_tasks import add, explode

    added, exploded = add.enqueue(2, 3), explode.enqueue()
    ours = make_task("demo.noop", start=True)
    worker = start_rq_worker("--concurrency", "4")

    wait_for(lambda: Task.objects.get(pk=ours.pk).status == Status.COMPLETED, timeout=30)
    backend = task_backends["default"]
    wait_for(lambda: backend.get_result(exploded.id).status == TaskResultStatus.FAILED)
    wait_for(lambda: backend.get_result(added.id).status == TaskResultStatus.SUCCESSFUL)
    assert backend.get_result(added.id).return_value == 5
    failed = backend.get_result(exploded.id)
    assert "plain task failed on purpose" in failed.errors[0].traceback
    # The failure callback ran (django-tasks-rq records the exception's class through it).
    assert failed.errors[0].exception_class_path == "builtins.ValueError"
    wait_for(lambda: Registries().counts()["finished"] == 2)
    assert Registries().counts()["failed"] == 1
    assert Registries().counts()["started"] == 0
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=15) == 0
