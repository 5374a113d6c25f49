"""``run_worker`` on the RQ engine (``TASKS_BACKEND=rq``): N attempts at once, fed from Redis.

RQ carries the "run an attempt of task N" jobs; the attempt itself is the same
``runner.run_attempt`` the database engine runs, with its lease, heartbeat, checkpoints and
conditional claim. The loop is the database worker's (``worker.Worker``), on RQ's queues:

- it takes as many jobs as it has free slots in one round trip (``rq_jobs.JobBook``: an idle
  worker blocks in ``BLMOVE`` as RQ's does), records them started in RQ's registries in one
  pipeline, claims their tasks in one transaction (``lifecycle.claim_attempts``) and runs them
  on a thread pool; with one slot, a small batch on the main thread, one after another;
- what ended is written together: the completions in one transaction
  (``completions.PendingCompletions``: group commit), then RQ's records of those jobs in one
  pipeline (finished or failed, out of the started registry). In that order: a worker that dies
  between the two leaves RQ's entry to expire, never a job RQ calls finished whose attempt is
  unwritten. With several slots a thread of its own writes them as attempts end, while the loop
  takes and claims the next jobs (or waits on Redis for them); with one slot the loop writes
  them between its batches;
- threads beside it renew RQ's started-registry entries of running jobs (RQ's registry cleanup
  fails the jobs of a worker that stopped beating, after twice the lease), run Task Center's
  reaper, and run RQ's scheduler (it moves poll continuations, jobs with a ``run_after``, onto
  the queue when due; RQ would fork it into a process that outlives a worker killed with
  SIGKILL). The loop also runs RQ's registry maintenance every reaper interval.

Jobs run in this process, on threads: forking per job, RQ's default, would share Django's
database connections with the child. Jobs that are not Task Center's (other ``django_tasks``
tasks on the same queue) run as RQ runs them, with their callbacks; for our own the
``django_tasks`` started/finished signals, whose only receivers log at debug level, are not sent.
The first SIGINT/SIGTERM finishes the running attempts and exits; a second exits at once (the
reaper recovers the attempts from their leases, RQ's cleanup fails their jobs).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import partial
from typing import Any

from django.db import close_old_connections, connection
from redis.exceptions import RedisError

from taskcenter import lifecycle
from taskcenter.execution import reaper, runner, worker_registry
from taskcenter.execution.completions import PendingCompletions
from taskcenter.execution.dispatch import RUN_ATTEMPT_PATH
from taskcenter.execution.heartbeat import heartbeat
from taskcenter.execution.rq_jobs import EndedJob, JobBook, RunningJob
from taskcenter.execution.worker import BATCH_BUDGET, MAX_BATCH, WorkerStats
from taskcenter.lib.db_outage import DATABASE_ERRORS, DATABASE_UNAVAILABLE, drop_broken_connection
from taskcenter.models import WorkerEngine

logger = logging.getLogger("taskcenter.execution.worker")

# An idle worker waits this long in BLMOVE per call: how soon it notices a stop request.
IDLE_BLOCK_SECONDS = 1
# Back-off while Redis or the database is unreachable.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (RedisError, *DATABASE_ERRORS)
OUTAGE_FIRST_DELAY = 1.0
OUTAGE_MAX_DELAY = 30.0
# The longest wait between polls of Redis while some slots are busy and the queue is empty.
BUSY_POLL_MAX_SECONDS = 0.1
# How often a worker asks whether ``rq suspend`` is in force.
SUSPENSION_CHECK_SECONDS = 1.0


def started_ttl(lease: float) -> int:
    """Seconds a started job stays in RQ's started registry unrenewed: twice the lease, as the
    reaper calls an attempt lost after one (whole seconds: RQ's scores are)."""
    return max(2, math.ceil(2 * lease))


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


class RQHeartbeatThread(threading.Thread):
    """Renews the worker's key and its running jobs' started-registry entries in Redis.

    A thread of its own, so that a long attempt on the main thread (one slot) or a loop waiting
    on the database does not let RQ's cleanup take a live job for an abandoned one.
    """

    def __init__(self, worker: RQWorker, interval: float) -> None:
        super().__init__(name="taskcenter-rq-heartbeat", daemon=True)
        self.worker = worker
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.worker.book.heartbeat(self.worker.running_jobs())
            except RedisError:
                logger.exception("RQ heartbeat failed; trying again")


class SettlerThread(threading.Thread):
    """Writes what ended (``RQWorker.settle``) as attempts end, beside the loop that takes jobs.

    With several slots, the completions' transaction and RQ's records of the jobs are written
    here while the loop claims the next jobs: neither waits for the other, and a loop waiting
    on Redis for work holds no completion back.
    """

    def __init__(self, worker: RQWorker) -> None:
        super().__init__(name="taskcenter-rq-settler", daemon=True)
        self.worker = worker
        self.stopped = threading.Event()

    def run(self) -> None:
        delay = OUTAGE_FIRST_DELAY
        ended = self.worker.ended
        while not self.stopped.is_set():
            ended.wait(IDLE_BLOCK_SECONDS)
            ended.clear()  # an attempt that ends from here on sets it again
            try:
                self.worker.settle()
            except Exception:  # an outage, most likely; the thread must outlive any failure
                logger.exception("Could not record ended attempts; next try in %gs", delay)
                connection.close()
                self.stopped.wait(delay)
                delay = min(delay * 2, OUTAGE_MAX_DELAY)
                continue
            delay = OUTAGE_FIRST_DELAY
        connection.close()


class RQWorker:
    """``run_worker`` on RQ: up to ``concurrency`` attempts at once, in threads of this process."""

    def __init__(
        self,
        *,
        worker_id: str,
        queue_names: tuple[str, ...] = ("default",),
        concurrency: int = 1,
        interval: float = 0.02,
        reap_interval: float = 10.0,
        max_tasks: int | None = None,
        exit_when_idle: bool = False,
        lease: float | None = None,
    ) -> None:
        import django_rq
        from django_tasks_rq.backend import Job
        from rq import SimpleWorker

        self.worker_id = worker_id
        self.queue_names = queue_names
        self.concurrency = concurrency
        self.interval = interval
        self.reap_interval = reap_interval
        self.max_tasks = max_tasks
        self.exit_when_idle = exit_when_idle
        self.lease = lease
        self.queues = [django_rq.get_queue(name, job_class=Job) for name in queue_names]
        # RQ's own worker object: its key, registration, heartbeat and counters, which RQ's
        # tools read. Its work loop is not used.
        self.rq = SimpleWorker(
            self.queues, connection=self.queues[0].connection, name=worker_id, job_class=Job
        )
        self.book = JobBook(
            self.rq, self.queues, ttl=started_ttl(lease or lifecycle.lease_seconds())
        )
        self.stats = WorkerStats()
        self._stopping = threading.Event()
        self._rung = threading.Event()  # an attempt ended, or a stop was asked for
        self.ended = threading.Event()  # an attempt ended (for the settler)
        self._settler: SettlerThread | None = None
        self._in_flight: set[Future] = set()
        self._ended: list[EndedJob] = []
        self._ended_lock = threading.Lock()
        self._running: dict[str, RunningJob] = {}
        self._running_lock = threading.Lock()
        self._completions = PendingCompletions()
        self._next_maintenance = 0.0
        self._next_suspension_check = 0.0
        self._suspended = False
        self._poll_delay = interval
        # Moving average of an attempt's length; starts "long" so that one slot takes one job
        # at a time until it knows better (see ``worker.Worker``).
        self._attempt_seconds = BATCH_BUDGET

    # -- signals ------------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self._stopping.is_set():
            logger.warning(
                "Second %s: exiting now; the reaper will recover running attempts.",
                signal.strsignal(signum),
            )
            with contextlib.suppress(Exception):
                self.rq.register_death()
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            # Not SystemExit: the interpreter would wait for the attempts' threads on the way out.
            os._exit(1)
        # Stopping first, then the message: a second signal may arrive as soon as the message
        # is out (or run its handler in the middle of this one), and must find the worker
        # stopping, or it would be taken for the first and the worker would not exit.
        self.stop()
        logger.warning(
            "%s: finishing %d running attempt(s), then exiting (again to force).",
            signal.strsignal(signum),
            len(self._running),
        )

    def stop(self) -> None:
        self._stopping.set()
        self._rung.set()

    def running_jobs(self) -> list[RunningJob]:
        with self._running_lock:
            return list(self._running.values())

    # -- main loop ----------------------------------------------------------------------------

    def run(self) -> WorkerStats:
        self.rq.register_birth()
        helpers: list[ReaperThread | SchedulerThread | RQHeartbeatThread] = [
            ReaperThread(self.reap_interval),
            SchedulerThread(self.queues, self.rq.connection),
            RQHeartbeatThread(self, min(self.book.ttl / 4, 60.0)),
        ]
        for helper in helpers:
            helper.start()
        # In the registry from here on, refreshed by the heartbeat thread; only a clean exit
        # (the loop ends and running attempts drained) says "stopped". Its counters are the
        # runner's outcomes in this process.
        registration = worker_registry.register(
            name=self.worker_id,
            engine=WorkerEngine.RQ,
            queues=tuple(self.queue_names),
            concurrency=self.concurrency,
        )
        logger.info(
            "Worker %s started: concurrency=%d on RQ, queues=%s reap every %gs",
            self.worker_id,
            self.concurrency,
            ",".join(self.queue_names),
            self.reap_interval,
        )
        # One slot runs its attempts on this thread, as the database worker's does.
        pool = None
        if self.concurrency > 1:
            pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="attempt")
            self._settler = SettlerThread(self)
            self._settler.start()
        try:
            self._loop(pool)
            self._drain()
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
            if self._settler is not None:
                self._settler.stopped.set()
            for helper in helpers:
                helper.stopped.set()
            for helper in helpers:
                helper.join(timeout=self.reap_interval + 5)
            with contextlib.suppress(RedisError):
                self.rq.register_death()
        registration.stop()  # not reached when the loop raised: the row then goes dead
        connection.close()
        logger.info("Worker %s stopped after %d job(s)", self.worker_id, self.stats.finished)
        return self.stats

    def _loop(self, pool: ThreadPoolExecutor | None) -> None:
        outage_delay = OUTAGE_FIRST_DELAY
        while not self._stopping.is_set():
            self._in_flight = {future for future in self._in_flight if not future.done()}
            try:
                if self._settler is None:
                    self.settle()  # one slot: between its batches, on this thread
                self._maintain_if_due()
                if self._reached_max_tasks():
                    break
                taken = self._take_and_run(pool)
            except OUTAGE_ERRORS:
                # Redis or the database restarting must not end the worker: running attempts
                # carry on, the loop resumes when they answer again.
                logger.exception(
                    "Redis or the database is unavailable; next try in %gs", outage_delay
                )
                connection.close()
                self._stopping.wait(outage_delay)
                outage_delay = min(outage_delay * 2, OUTAGE_MAX_DELAY)
                continue
            outage_delay = OUTAGE_FIRST_DELAY
            if taken:
                continue
            if self.exit_when_idle and not self._in_flight:
                break  # an empty queue, or ``rq suspend`` in force (RQ's burst mode exits too)
            self._wait_for_slot_or_work()

    def _reached_max_tasks(self) -> bool:
        return self.max_tasks is not None and self.stats.claimed >= self.max_tasks

    def _wait_for_slot_or_work(self) -> None:
        if len(self._in_flight) >= self.concurrency:
            wait(list(self._in_flight), timeout=IDLE_BLOCK_SECONDS, return_when=FIRST_COMPLETED)
        elif self._in_flight and self.exit_when_idle:
            # Free slots and an empty queue in batch mode, which must not block on Redis: poll,
            # every ``interval`` at first and less often while nothing comes, and look again as
            # soon as an attempt ends (the queue may be empty for good, the worker done).
            self._rung.wait(self._poll_delay)
            self._rung.clear()
            self._poll_delay = min(self._poll_delay * 2, max(self.interval, BUSY_POLL_MAX_SECONDS))
        elif self._suspended:
            self._stopping.wait(SUSPENSION_CHECK_SECONDS)

    def _drain(self) -> None:
        if self._in_flight:
            wait(list(self._in_flight))
        if self._settler is not None:
            self._settler.stopped.set()
            self.ended.set()
            self._settler.join()
        for _ in range(3):  # Redis or the database may blink while the last ones are written
            try:
                self.settle()
                return
            except OUTAGE_ERRORS:
                logger.exception("Could not record the last attempts; trying again")
                connection.close()
                time.sleep(OUTAGE_FIRST_DELAY)

    # -- taking jobs --------------------------------------------------------------------------

    def _take_and_run(self, pool: ThreadPoolExecutor | None) -> int:
        if self._is_suspended():
            return 0
        free = self.concurrency - len(self._in_flight) if pool is not None else self._batch_size
        if self.max_tasks is not None:
            free = min(free, self.max_tasks - self.stats.claimed)
        if free <= 0:
            return 0
        # Block on Redis for work, unless in batch mode or with ended attempts to write first
        # on this thread (one slot).
        block = not self.exit_when_idle and (self._settler is not None or not self._ended)
        popped = self.book.pop(free, timeout=IDLE_BLOCK_SECONDS if block else None)
        if not popped:
            return 0
        self._poll_delay = self.interval
        running = self.book.start(popped)
        with self._running_lock:
            self._running.update((job.job.id, job) for job in running)
        self.stats.claimed += len(running)
        for job, attempt in self._claim_attempts(running):
            if pool is None:
                self._execute(job, attempt)
            else:
                future = pool.submit(self._execute, job, attempt)
                future.add_done_callback(self._ring)
                self._in_flight.add(future)
        return len(running)

    def _ring(self, _future: Future) -> None:
        self.ended.set()
        self._rung.set()

    @property
    def _batch_size(self) -> int:
        return max(1, min(MAX_BATCH, int(BATCH_BUDGET / max(self._attempt_seconds, 1e-6))))

    def _is_suspended(self) -> bool:
        """``rq suspend`` in force (asked at most once a second)."""
        now = time.monotonic()
        if now >= self._next_suspension_check:
            from rq.suspension import is_suspended

            self._next_suspension_check = now + SUSPENSION_CHECK_SECONDS
            suspended = bool(is_suspended(self.rq.connection))
            if suspended != self._suspended:
                logger.warning(
                    "Worker %s %s",
                    self.worker_id,
                    "suspended (rq suspend)" if suspended else "resumed",
                )
            self._suspended = suspended
        return self._suspended

    def _claim_attempts(
        self, running: list[RunningJob]
    ) -> list[tuple[RunningJob, Callable[[], Any]]]:
        """Pair each job with what runs it, claiming our tasks in one transaction.

        Tasks the batch could not claim (a duplicate job, a polled task to resume, a row another
        worker holds) fall back to ``run_attempt``, which claims or skips them one at a time.
        """
        task_ids = {job.job.id: _task_id(job) for job in running}
        ours = [task_id for task_id in task_ids.values() if task_id is not None]
        claimed: dict[int, tuple] = {}
        lease = self.lease or lifecycle.lease_seconds()
        if ours:
            try:
                for task, execution in lifecycle.claim_attempts(
                    ours, worker_id=self.worker_id, lease=self.lease, skip_locked=True
                ):
                    heartbeat.track(execution.pk)  # leases of attempts waiting their turn too
                    claimed[task.pk] = (task, execution)
            except DATABASE_ERRORS:
                # Not raised: these jobs are RQ's started ones now, and each must run (or fail
                # in RQ) for its entry to leave the started registry.
                logger.exception("Batch claim failed; claiming one at a time")
                drop_broken_connection()
        work: list[tuple[RunningJob, Callable[[], Any]]] = []
        for job in running:
            task_id = task_ids[job.job.id]
            if task_id is None:
                work.append((job, partial(_perform_foreign_job, job)))
            elif task_id in claimed:
                task, execution = claimed.pop(task_id)
                work.append(
                    (
                        job,
                        partial(
                            runner.run_claimed_attempt,
                            task,
                            execution,
                            worker_id=self.worker_id,
                            lease=lease,
                            completions=self._completions,
                        ),
                    )
                )
            else:
                work.append(
                    (
                        job,
                        partial(
                            runner.run_attempt,
                            task_id,
                            worker_id=self.worker_id,
                            lease=self.lease,
                            completions=self._completions,
                        ),
                    )
                )
        return work

    # -- running ------------------------------------------------------------------------------

    def _execute(self, job: RunningJob, attempt: Callable[[], Any]) -> None:
        from rq.utils import now

        started = time.monotonic()
        value, failure = None, None
        try:
            value = attempt()
        except DATABASE_UNAVAILABLE:
            # This thread's connection broke. RQ records the job failed; a claim made before the
            # break is recovered by the reaper from its lease, an unclaimed task as an orphan.
            logger.exception("RQ job %s lost its database connection", job.job.id)
            connection.close()
            failure = traceback.format_exc()
        except Exception:
            logger.exception("RQ job %s failed", job.job.id)
            failure = traceback.format_exc()
        finally:
            took = time.monotonic() - started
            with self._ended_lock:
                self._ended.append(EndedJob(job, now(), value, failure))
                self.stats.finished += 1
                outcome = value if isinstance(value, str) and _task_id(job) else "job"
                outcome = outcome if failure is None else "error"
                self.stats.outcomes[outcome] = self.stats.outcomes.get(outcome, 0) + 1
                self._attempt_seconds = 0.8 * self._attempt_seconds + 0.2 * took

    # -- writing what ended -------------------------------------------------------------------

    def settle(self) -> None:
        """Write the completions that gathered (one transaction), then RQ's records of the jobs
        that ended (one pipeline). The jobs are taken first: an attempt hands its completion over
        before its job is listed as ended, so each job taken has its completion in this flush."""
        with self._ended_lock:
            ended, self._ended = self._ended, []
        try:
            self._completions.flush()
            if ended:
                with self._running_lock:
                    for end in ended:
                        self._running.pop(end.running.job.id, None)
                    idle = not self._running
                self._finish(ended, idle=idle)
        except BaseException:
            with self._ended_lock:
                self._ended[:0] = ended
            with self._running_lock:
                self._running.update((end.running.job.id, end.running) for end in ended)
            raise

    def _finish(self, ended: list[EndedJob], *, idle: bool) -> None:
        """RQ's records of the ended jobs; Redis errors propagate (the records wait for the next
        pass), any other one is the record of some job that RQ cannot write (a return value it
        cannot serialize, say): the jobs are then written one by one, and one that still fails
        is left to RQ's cleanup, which fails it once its started entry goes unrenewed."""
        try:
            self.book.finish(ended, idle=idle)
        except RedisError:
            raise
        except Exception:
            logger.exception("Could not record %d ended job(s) in RQ; one at a time", len(ended))
            for end in ended:
                try:
                    self.book.finish([end], idle=False)
                except RedisError:
                    raise
                except Exception:
                    logger.exception("RQ job %s left unrecorded", end.running.job.id)

    def _maintain_if_due(self) -> None:
        """RQ's registry maintenance every reaper interval, on this thread: the failure callbacks
        of abandoned jobs that it runs set an alarm signal."""
        now = time.monotonic()
        if now < self._next_maintenance:
            return
        self._next_maintenance = now + self.reap_interval * (0.75 + random.random() / 2)  # noqa: S311
        self.book.maintain()


def _task_id(job: RunningJob) -> int | None:
    """The task of a Task Center job; None for any other job on the queue."""
    try:
        if job.job.func_name == RUN_ATTEMPT_PATH and job.job.args:
            return int(job.job.args[0])
    except Exception:  # a job RQ cannot read: run as a foreign job, whose perform fails
        return None
    return None


def _perform_foreign_job(job: RunningJob) -> Any:
    """Another ``django_tasks`` task (or any RQ job) on our queue: run as ``SimpleWorker`` runs
    it, with its timeout and callbacks, on this thread (timer-based death penalties: RQ's alarm
    signal works only on the main thread)."""
    from rq.timeouts import JobTimeoutException, TimerDeathPenalty

    rq_job = job.job
    timeout = rq_job.timeout or job.queue.DEFAULT_TIMEOUT
    try:
        with TimerDeathPenalty(timeout, JobTimeoutException, job_id=rq_job.id):
            value = rq_job.perform()
        rq_job.execute_success_callback(TimerDeathPenalty, value)
    except Exception:
        with contextlib.suppress(Exception):
            rq_job.execute_failure_callback(TimerDeathPenalty, *sys.exc_info())
        raise
    return value


def run_rq_worker(
    *,
    worker_id: str,
    queue_names: tuple[str, ...],
    concurrency: int = 1,
    interval: float = 0.02,
    reap_interval: float,
    max_tasks: int | None,
    exit_when_idle: bool,
) -> WorkerStats:
    """Work the RQ queues until stopped (signals: see the module's docstring)."""
    runner.name_this_worker(worker_id)
    worker = RQWorker(
        worker_id=worker_id,
        queue_names=queue_names,
        concurrency=concurrency,
        interval=interval,
        reap_interval=reap_interval,
        max_tasks=max_tasks,
        exit_when_idle=exit_when_idle,
    )
    worker.install_signal_handlers()
    return worker.run()
