"""The engine's job table as the worker reads it: the one-statement claim and the next due job."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from taskcenter.execution.dispatch import JobTable, run_attempt_job

pytestmark = pytest.mark.django_db


def enqueue(task_id: int, *, priority: int = 0, run_after=None, queue: str = "default") -> str:
    job = run_attempt_job.using(priority=priority, run_after=run_after, queue_name=queue)
    return str(job.enqueue(task_id).id)


def statuses() -> dict[int, str]:
    return {
        row["args_kwargs"]["args"][0]: row["status"]
        for row in DBTaskResult.objects.values("args_kwargs", "status")
    }


@pytest.fixture
def jobs(settings) -> JobTable:
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "other"]}
    }
    return JobTable(backend_name="default", queue_names=("default",), worker_id="w1")


def test_a_claim_in_one_statement_takes_exactly_the_first_ready_jobs(jobs):
    if not jobs.can_claim_alone:
        pytest.skip("needs UPDATE ... RETURNING")
    for task_id, priority in ((1, 0), (2, 5), (3, 0), (4, 5)):
        enqueue(task_id, priority=priority)
    enqueue(5, priority=100, run_after=timezone.now() + timedelta(hours=1))  # not due
    enqueue(6, priority=100, queue="other")  # not this worker's queue
    DBTaskResult.objects.filter(args_kwargs__args=[1]).update(status="SUCCESSFUL")

    claimed = jobs.claim_alone(3)

    # Highest priority first, then first come; nothing else is touched.
    assert [job.args_kwargs["args"][0] for job in claimed] == [2, 4, 3]
    assert statuses() == {
        1: "SUCCESSFUL",
        2: "RUNNING",
        3: "RUNNING",
        4: "RUNNING",
        5: "READY",
        6: "READY",
    }
    running = DBTaskResult.objects.filter(status="RUNNING")
    assert {tuple(job.worker_ids) for job in running} == {("w1",)}
    assert all(job.started_at is not None for job in running)
    assert jobs.claim_alone(3) == []


def test_the_next_due_job_is_the_earliest_future_run_after_of_this_workers_queues(jobs):
    now = timezone.now()
    assert jobs.next_due() is None
    enqueue(1)  # ready now: not "due later"
    enqueue(2, run_after=now - timedelta(seconds=5))  # overdue: ready now too
    enqueue(3, run_after=now + timedelta(minutes=5))
    enqueue(4, run_after=now + timedelta(minutes=1), queue="other")
    enqueue(5, run_after=now + timedelta(minutes=2))

    assert jobs.next_due() == pytest.approx((now + timedelta(minutes=2)).timestamp(), abs=1e-3)
