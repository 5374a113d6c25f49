"""RQ's own records of the jobs a Task Center worker runs, written for many jobs at once.

RQ's ``SimpleWorker`` takes one job per ``BLMOVE``, then spends about ten round trips on its
records (an execution, the started registry, the job hash, a result, the finished registry,
the worker's counters), each job alone. ``JobBook`` keeps the same records, the ones RQ's own
tools (``rq info``, django-rq's admin, ``Job.fetch``) read, in one pipeline per batch of jobs:

- ``pop``: up to N job ids in one round trip. With one queue, ``LMOVE`` into RQ's intermediate
  list as RQ does (a worker that dies before ``start`` leaves the id where RQ's maintenance
  fails it a minute later); with several, ``LPOP key count`` in queue order, as RQ pops them.
  An idle worker blocks in ``BLMOVE``/``BLPOP`` for the first job, as RQ's does.
- ``start``: per job an ``Execution`` (its hash, the job's execution registry and an entry in
  the queue's ``StartedJobRegistry``), the job hash marked started, the id out of the
  intermediate list, the job key made persistent.
- ``finish``: per job a ``Result`` in its stream, the job hash marked finished (or failed, in
  the ``FailedJobRegistry``), the ``FinishedJobRegistry`` entry, the key's result TTL, the
  execution removed from the started registry; the worker's counters.
- ``heartbeat``: the started-registry entries of running jobs pushed forward, so that RQ's
  registry cleanup (``clean_registries``, run by every RQ worker) fails only the jobs of a
  worker that stopped beating, as it does for RQ's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.results import Result
from rq.utils import as_text, get_version, now, utcformat
from rq.worker import BaseWorker, WorkerStatus


@dataclass(eq=False)
class RunningJob:
    """A job this worker started: what ``finish`` and ``heartbeat`` need of it."""

    job: Job
    queue: Queue
    execution: Execution


@dataclass(eq=False)
class EndedJob:
    """A job whose function returned (``failure`` is None) or raised (its traceback)."""

    running: RunningJob
    ended_at: datetime
    return_value: Any = None
    failure: str | None = None


class JobBook:
    """Takes jobs off RQ's queues and keeps RQ's records of them, a batch per round trip."""

    def __init__(self, worker: BaseWorker, queues: list[Queue], *, ttl: int) -> None:
        self.worker = worker
        self.queues = queues
        self.connection = worker.connection
        # Seconds a started job stays in the started registry without a heartbeat.
        self.ttl = ttl
        self._by_key = {queue.key: queue for queue in queues}
        # RQ moves jobs through an intermediate list when it works one queue on Redis 6.2+.
        self._intermediate = len(queues) == 1 and get_version(self.connection) >= (6, 2, 0)

    # -- taking jobs ---------------------------------------------------------------------------

    def pop(self, limit: int, *, timeout: int | None = None) -> list[tuple[Job, Queue]]:
        """Up to ``limit`` jobs, in queue order; with ``timeout``, wait that long for the first."""
        ids = self._pop_now(limit)
        if not ids and timeout:
            first = self._pop_blocking(timeout)
            if first is None:
                return []
            ids = [first, *(self._pop_now(limit - 1) if limit > 1 else [])]
        if not ids:
            return []
        jobs = self.worker.job_class.fetch_many(
            [job_id for _, job_id in ids],
            connection=self.connection,
            serializer=self.worker.serializer,
        )
        found, gone = [], []
        for (queue, job_id), job in zip(ids, jobs, strict=True):
            if job is None:  # deleted while queued: RQ skips these too
                gone.append((queue, job_id))
            else:
                found.append((job, queue))
        if gone and self._intermediate:
            with self.connection.pipeline(transaction=False) as pipe:
                for queue, job_id in gone:
                    pipe.lrem(queue.intermediate_queue_key, 1, job_id)
                pipe.execute()
        return found

    def _pop_blocking(self, timeout: int) -> tuple[Queue, str] | None:
        if self._intermediate:
            queue = self.queues[0]
            job_id = self.connection.blmove(queue.key, queue.intermediate_queue_key, timeout)
            return None if job_id is None else (queue, as_text(job_id))
        popped = self.connection.blpop([queue.key for queue in self.queues], timeout)
        if popped is None:
            return None
        key, job_id = popped
        return self._by_key[as_text(key)], as_text(job_id)

    def _pop_now(self, limit: int) -> list[tuple[Queue, str]]:
        if self._intermediate:
            queue = self.queues[0]
            with self.connection.pipeline(transaction=False) as pipe:
                for _ in range(limit):
                    pipe.lmove(queue.key, queue.intermediate_queue_key)
                return [(queue, as_text(job_id)) for job_id in pipe.execute() if job_id]
        ids: list[tuple[Queue, str]] = []
        for queue in self.queues:  # the next queue only if this one ran short
            with self.connection.pipeline(transaction=False) as pipe:
                for _ in range(limit - len(ids)):
                    pipe.lpop(queue.key)
                ids += [(queue, as_text(job_id)) for job_id in pipe.execute() if job_id]
            if len(ids) >= limit:
                break
        return ids

    # -- RQ's records ----------------------------------------------------------------------------

    def start(self, popped: list[tuple[Job, Queue]]) -> list[RunningJob]:
        """Record the jobs as started by this worker (what ``SimpleWorker`` writes before a job)."""
        running = []
        name = self.worker.name
        with self.connection.pipeline(transaction=False) as pipe:
            for job, queue in popped:
                execution = Execution.create(job, self.ttl, pipeline=pipe, worker_name=name)
                job.prepare_for_execution(name, pipeline=pipe)
                pipe.persist(job.key)  # as Job.perform does: a job with a TTL lives while it runs
                if self._intermediate:
                    pipe.lrem(queue.intermediate_queue_key, 1, job.id)
                running.append(RunningJob(job, queue, execution))
            if running:
                self.worker.set_state(WorkerStatus.BUSY, pipeline=pipe)
                self.worker.set_current_job_id(running[-1].job.id, pipeline=pipe)
            pipe.execute()
        return running

    def finish(self, ended: list[EndedJob], *, idle: bool) -> None:
        """Record the jobs as finished or failed and out of the started registry."""
        worker, name = self.worker, self.worker.name
        with self.connection.pipeline(transaction=False) as pipe:
            for end in ended:
                job, queue, execution = end.running.job, end.running.queue, end.running.execution
                job.ended_at = end.ended_at
                if end.failure is None:
                    self._succeeded(job, end, pipe)
                    worker.increment_successful_job_count(pipeline=pipe)
                elif job.should_retry:
                    job.retry(queue, pipe)
                    worker.increment_failed_job_count(pipeline=pipe)
                else:
                    job.set_status(JobStatus.FAILED, pipeline=pipe)
                    job._handle_failure(
                        end.failure,
                        pipe,
                        worker_name=name,
                        execution_id=execution.id,
                        execution_started_at=execution.created_at,
                        execution_ended_at=end.ended_at,
                    )
                    worker.increment_failed_job_count(pipeline=pipe)
                execution.delete(job=job, pipeline=pipe)
                if job.started_at:
                    worker.increment_total_working_time(end.ended_at - job.started_at, pipe)
            if idle:
                worker.set_current_job_id(None, pipeline=pipe)
                worker.set_state(WorkerStatus.IDLE, pipeline=pipe)
            pipe.execute()

    def _succeeded(self, job: Job, end: EndedJob, pipe: Any) -> None:
        """``Job._handle_success`` and ``Job.cleanup``, writing only the fields that changed."""
        job._status = JobStatus.FINISHED
        pipe.hset(
            job.key,
            mapping={
                "status": JobStatus.FINISHED.value,
                "ended_at": utcformat(end.ended_at),
                "last_heartbeat": utcformat(end.ended_at),
            },
        )
        result_ttl = job.get_result_ttl(self.worker.default_result_ttl)
        execution = end.running.execution
        if result_ttl != 0:
            Result.create(
                job,
                Result.Type.SUCCESSFUL,
                result_ttl,
                return_value=end.return_value,
                worker_name=self.worker.name,
                pipeline=pipe,
                execution_id=execution.id,
                execution_started_at=execution.created_at,
                execution_ended_at=end.ended_at,
            )
            job.finished_job_registry.add(job, result_ttl, pipe)
        job.cleanup(result_ttl, pipeline=pipe, remove_from_queue=False)

    def heartbeat(self, running: Iterable[RunningJob]) -> None:
        """Keep the worker and its running jobs alive in RQ's eyes for another ``ttl``."""
        with self.connection.pipeline(transaction=False) as pipe:
            self.worker.heartbeat(pipeline=pipe)
            beat = now()
            for job in running:
                registry = job.queue.started_job_registry
                job.execution.heartbeat(registry, self.ttl, pipeline=pipe)
                job.job.heartbeat(beat, self.ttl, pipeline=pipe, xx=True)
            pipe.execute()

    def maintain(self) -> None:
        """RQ's registry maintenance (``BaseWorker.clean_registries``, which RQ's workers run every
        ten minutes): expired started entries failed as abandoned, expired finished and failed
        entries dropped, dead workers unlisted, ids stuck in the intermediate list failed. One
        worker per queue at a time, under RQ's lock; quietly, as it runs far more often here."""
        from rq import worker_registration
        from rq.registry import clean_registries

        for queue in self.queues:
            if not queue.acquire_maintenance_lock():
                continue
            try:
                clean_registries(queue, self.worker._exc_handlers)
                worker_registration.clean_worker_registry(queue)
                queue.intermediate_queue.cleanup(self.worker, queue)
            finally:
                queue.release_maintenance_lock()
