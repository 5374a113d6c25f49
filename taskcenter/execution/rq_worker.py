"""``run_worker`` on the RQ engine (``TASKS_BACKEND=rq``): an RQ worker, plus Task Center's reaper.

RQ carries the "run an attempt of task N" jobs; the attempt itself is the same
``runner.run_attempt`` the database engine runs, with its lease, heartbeat, checkpoints and
conditional claim. What RQ does not know about is added here: a reaper thread (lost attempts
and jobs a flushed Redis dropped) and fresh database connections around every job.

Jobs run in this process, one at a time (``SimpleWorker``): forking per job, RQ's default, would
share Django's database connections with the child. Start more processes for more throughput.
RQ's scheduler (it moves poll continuations, jobs with a ``run_after``, onto the queue when due)
runs on a thread here too: RQ would fork it into a process of its own, which outlives a worker
killed with SIGKILL. Signals are RQ's: the first SIGINT/SIGTERM finishes the running attempt, a
second abandons it (the reaper recovers it from its lease).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time

from django.db import close_old_connections, connection
from redis.exceptions import RedisError

from taskcenter.execution import reaper, runner, worker_registry
from taskcenter.lib.db_outage import DATABASE_ERRORS
from taskcenter.models import WorkerEngine

logger = logging.getLogger("taskcenter.execution.worker")


def _worker_class():
    from rq import SimpleWorker

    class TaskCenterRQWorker(SimpleWorker):
        jobs_run = 0

        def perform_job(self, job, queue):
            close_old_connections()
            try:
                return super().perform_job(job, queue)
            finally:
                self.jobs_run += 1
                close_old_connections()

    return TaskCenterRQWorker


class ReaperThread(threading.Thread):
    """Runs a reaper pass every ``interval`` seconds (jittered) until stopped."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="taskcenter-reaper", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        # Spread the reapers of workers started together.
        while not self.stopped.wait(self.interval * (0.75 + random.random() / 2)):  # noqa: S311
            try:
                report = reaper.reap()
            except DATABASE_ERRORS:
                logger.exception("Reaper pass failed; trying again next round")
                connection.close()
                continue
            except RedisError:  # the orphan check reads RQ's queues
                logger.exception("Reaper pass could not read Redis; trying again next round")
                continue
            finally:
                close_old_connections()
            report.log(logger)
        connection.close()


class SchedulerThread(threading.Thread):
    """RQ's scheduler loop, on a thread: due scheduled jobs onto their queues.

    One scheduler per queue holds RQ's lock at a time; the others retry every few seconds, and
    take over within RQ's lock lifetime (about a minute) when its holder died.
    """

    RETRY_LOCK_SECONDS = 5.0

    def __init__(self, queues: list, connection, interval: int = 1) -> None:
        super().__init__(name="taskcenter-rq-scheduler", daemon=True)
        from rq.scheduler import RQScheduler

        # Whole seconds: RQ's lock script takes interval + 60 as an integer TTL.
        self.queue_names = {queue.name for queue in queues}
        self.scheduler = RQScheduler(queues, connection=connection, interval=interval)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        scheduler, tried_at = self.scheduler, 0.0
        while not self.stopped.wait(self.interval):
            try:
                missing = scheduler.acquired_locks != self.queue_names
                if missing and time.monotonic() - tried_at > self.RETRY_LOCK_SECONDS:
                    tried_at = time.monotonic()
                    scheduler.acquire_locks()
                if scheduler.acquired_locks:
                    scheduler.heartbeat()
                    scheduler.enqueue_scheduled_jobs()
            except RedisError:
                logger.exception("RQ scheduler pass failed; trying again")
        with contextlib.suppress(RedisError):  # if Redis is gone, the locks expire anyway
            scheduler.release_locks()


def run_rq_worker(
    *,
    worker_id: str,
    queue_names: tuple[str, ...],
    reap_interval: float,
    max_tasks: int | None,
    exit_when_idle: bool,
) -> int:
    """Work the RQ queues until stopped; returns how many jobs ran."""
    import django_rq
    from django_tasks_rq.backend import Job

    runner.name_this_worker(worker_id)
    queues = [django_rq.get_queue(name, job_class=Job) for name in queue_names]
    worker = _worker_class()(queues, connection=queues[0].connection, name=worker_id, job_class=Job)
    helpers: list[ReaperThread | SchedulerThread] = [
        ReaperThread(reap_interval),
        SchedulerThread(queues, queues[0].connection),
    ]
    for helper in helpers:
        helper.start()
    # One attempt at a time: the registry's counters are the runner's, for this process.
    registration = worker_registry.register(
        name=worker_id, engine=WorkerEngine.RQ, queues=queue_names, concurrency=1
    )
    logger.info(
        "Worker %s started on RQ: queues=%s reap every %gs",
        worker_id,
        ",".join(queue_names),
        reap_interval,
    )
    try:
        worker.work(
            burst=exit_when_idle,
            with_scheduler=False,  # SchedulerThread does it
            max_jobs=max_tasks,
            logging_level="WARNING",
        )
    finally:
        for helper in helpers:
            helper.stopped.set()
        for helper in helpers:
            helper.join(timeout=reap_interval + 5)
    registration.stop()  # not reached when work() raised: the row then goes dead
    logger.info("Worker %s stopped after %d job(s)", worker_id, worker.jobs_run)
    return worker.jobs_run
