"""``rq_jobs.JobBook``: RQ's records of a batch of jobs, as RQ's tools read them (real Redis)."""

from __future__ import annotations

import os

import pytest
from rq import Queue, SimpleWorker
from rq.job import JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.utils import now

from taskcenter.execution.rq_jobs import EndedJob, JobBook

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
pytestmark = pytest.mark.skipif(
    not REDIS_URL, reason="needs TEST_REDIS_URL (a Redis the tests may flush)"
)


def book_for(redis, *names: str, ttl: int = 60) -> tuple[JobBook, list[Queue]]:
    queues = [Queue(name, connection=redis) for name in names]
    worker = SimpleWorker(queues, connection=redis, name="book-test")
    worker.register_birth()
    return JobBook(worker, queues, ttl=ttl), queues


def started(queue: Queue) -> int:
    return StartedJobRegistry(queue=queue).get_job_count(cleanup=False)


def test_a_batch_is_taken_in_queue_order_and_recorded_as_rq_records_it(redis):
    book, (high, low) = book_for(redis, "high", "low")
    low_jobs = [low.enqueue("operator.add", 1, n) for n in range(2)]
    high_jobs = [high.enqueue("operator.add", 2, n) for n in range(2)]

    popped = book.pop(3)

    assert [job.id for job, _ in popped] == [*(j.id for j in high_jobs), low_jobs[0].id]
    running = book.start(popped)
    assert (started(high), started(low), low.count) == (2, 1, 1)
    assert {job.job.get_status(refresh=True) for job in running} == {JobStatus.STARTED}
    assert {job.job.worker_name for job in running} == {"book-test"}

    first, second, third = running
    book.finish(
        [
            EndedJob(first, now(), return_value=2),
            EndedJob(second, now(), failure="Traceback: boom"),
            EndedJob(third, now(), return_value=1),
        ],
        idle=True,
    )

    assert (started(high), started(low)) == (0, 0)
    assert FinishedJobRegistry(queue=high).get_job_ids() == [first.job.id]
    assert FailedJobRegistry(queue=high).get_job_ids() == [second.job.id]
    assert FinishedJobRegistry(queue=low).get_job_ids() == [third.job.id]
    assert first.job.get_status(refresh=True) == JobStatus.FINISHED
    assert first.job.latest_result().return_value == 2
    assert second.job.get_status(refresh=True) == JobStatus.FAILED
    assert "boom" in second.job.latest_result().exc_string
    assert first.job.ended_at is not None
    worker = SimpleWorker.find_by_key(book.worker.key, connection=redis)
    assert (worker.successful_job_count, worker.failed_job_count) == (2, 1)
    assert worker.get_state() == "idle"


def test_one_queue_goes_through_rqs_intermediate_list(redis):
    book, (queue,) = book_for(redis, "default")
    jobs = [queue.enqueue("operator.add", 1, n) for n in range(2)]

    popped = book.pop(5)
    assert [job.id for job, _ in popped] == [job.id for job in jobs]
    assert redis.llen(queue.intermediate_queue_key) == 2  # taken, not yet started

    book.start(popped)
    assert redis.llen(queue.intermediate_queue_key) == 0
    assert started(queue) == 2
    assert book.pop(5, timeout=1) == []  # waited for more, none came


def test_unrenewed_started_jobs_are_failed_by_rqs_maintenance_renewed_ones_are_not(redis):
    book, (queue,) = book_for(redis, "default", ttl=1)
    for n in range(2):
        queue.enqueue("operator.add", 3, n)
    kept, dropped = book.start(book.pop(2))
    key = StartedJobRegistry(queue=queue).key
    past = now().timestamp() - 10
    redis.zadd(key, {kept.execution.composite_key: past, dropped.execution.composite_key: past})

    book.heartbeat([kept])
    book.maintain()

    assert StartedJobRegistry(queue=queue).get_job_ids(cleanup=False) == [kept.job.id]
    assert FailedJobRegistry(queue=queue).get_job_ids() == [dropped.job.id]
