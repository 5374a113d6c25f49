"""The Task Center worker: claims engine jobs and runs up to N attempts at once.

It takes django-tasks-db's jobs the way that package's ``db_worker`` does (a short exclusive
transaction, ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL), but claims as many jobs as it
has free slots in that one transaction and runs them on a thread pool: most handlers wait on
HTTP, so one process can keep many platforms busy. With one slot the attempt runs on the main
thread. Attempts that ended are written together before the next claim (``completions``: group
commit), and their jobs marked done in the claim's transaction. The same loop reaps lost
attempts. ``bench/worker_throughput.py`` measures it against ``db_worker``.

An idle worker sleeps until a job is announced (``wakeup``: PostgreSQL's LISTEN/NOTIFY, a local
socket on SQLite), an attempt of its own ends, or the next job it knows of comes due; it polls
every ``safety_interval`` in case an announcement went missing, and every ``interval`` while it
cannot hear announcements at all. ``bench/wakeup_latency.py`` measures how soon it starts a job.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import close_old_connections, connection
from django.db.utils import OperationalError
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from taskcenter import lifecycle
from taskcenter.execution import reaper, wakeup, worker_registry
from taskcenter.execution.completions import PendingCompletions
from taskcenter.execution.dispatch import RUN_ATTEMPT_PATH, EngineJob, JobTable
from taskcenter.execution.heartbeat import heartbeat
from taskcenter.execution.runner import run_attempt, run_claimed_attempt
from taskcenter.lib.db_outage import (
    DATABASE_ERRORS,
    DATABASE_UNAVAILABLE,
    drop_broken_connection,
)
from taskcenter.models import WorkerEngine

logger = logging.getLogger("taskcenter.execution.worker")

# A one-slot worker claims as many attempts at once as it expects to finish in this time.
BATCH_BUDGET = 0.025
MAX_BATCH = 32
# A worker with a pool claims ahead of its slots as many attempts as it expects them to finish
# in this time: they wait in the pool's queue and start the moment a slot frees, and the loop
# claims again once half of them have started, so one claim serves several slots.
AHEAD_BUDGET = 0.1
# The outcome of a job whose thread lost its database connection: back to the queue, unrun.
RELEASED = "released"
# Back-off between claims while the database is unreachable.
OUTAGE_FIRST_DELAY = 1.0
OUTAGE_MAX_DELAY = 30.0


@dataclass
class WorkerStats:
    claimed: int = 0
    finished: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class Worker:
    def __init__(
        self,
        *,
        worker_id: str,
        concurrency: int = 4,
        interval: float = 0.02,
        safety_interval: float = 1.0,
        wakeups: bool | None = None,
        queue_names: tuple[str, ...] = ("default",),
        backend_name: str = "default",
        reap_interval: float = 10.0,
        max_tasks: int | None = None,
        exit_when_idle: bool = False,
        lease: float | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.interval = interval
        self.queue_names = queue_names
        self.backend_name = backend_name
        self.reap_interval = reap_interval
        self.max_tasks = max_tasks
        self.exit_when_idle = exit_when_idle
        self.lease = lease
        self.stats = WorkerStats()
        self._stopping = threading.Event()
        self._in_flight: set[Future] = set()
        self._finished: list[tuple[Any, str]] = []
        self._finished_lock = threading.Lock()
        self._completions = PendingCompletions()
        self._next_reap = 0.0
        self._idle = True
        self._rung = False  # the last wait ended on the doorbell (most often: a job announced)
        self._next_tidy = 0.0
        # Moving average of how long an attempt takes; starts "long" so a fresh worker claims
        # one at a time until it knows better.
        self._attempt_seconds = BATCH_BUDGET
        self._jobs = JobTable(
            backend_name=backend_name, queue_names=queue_names, worker_id=worker_id
        )
        self._wakeups = wakeup.Wakeups(
            using=self._jobs.using,
            queue_names=queue_names,
            interval=interval,
            safety_interval=safety_interval,
            enabled=wakeup.enabled() if wakeups is None else wakeups,
        )

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
            raise SystemExit(1)
        # Stopping first, then the message: a second signal may arrive as soon as the message
        # is out (or run its handler in the middle of this one), and must find the worker
        # stopping, or it would be taken for the first and the worker would not exit.
        self.stop()
        logger.warning(
            "%s: finishing %d running attempt(s), then exiting (again to force).",
            signal.strsignal(signum),
            len(self._in_flight),
        )

    def stop(self) -> None:
        self._stopping.set()
        self._wakeups.ring()

    # -- main loop ----------------------------------------------------------------------------

    def run(self) -> WorkerStats:
        logger.info(
            "Worker %s started: concurrency=%d queues=%s poll=%gs (%gs while wake-ups arrive%s)",
            self.worker_id,
            self.concurrency,
            ",".join(self.queue_names),
            self.interval,
            self._wakeups.safety_interval,
            "" if self._wakeups.listener else "; none on this database or turned off",
        )
        self._wakeups.start()
        # In the registry from here on, refreshed by the heartbeat thread; only a clean exit
        # (the loop ends and running attempts drained) says "stopped".
        registration = worker_registry.register(
            name=self.worker_id,
            engine=WorkerEngine.DATABASE,
            queues=self.queue_names,
            concurrency=self.concurrency,
            counters=self._counters,
        )
        # Spread the reapers of workers started together.
        self._next_reap = time.monotonic() + random.random() * self.reap_interval  # noqa: S311
        # One slot runs its attempt on this thread: no hand-off per task, and one database
        # connection, so the claim never waits on SQLite's busy handler for our own attempt.
        pool = (
            None
            if self.concurrency == 1
            else ThreadPoolExecutor(self.concurrency, thread_name_prefix="attempt")
        )
        outage_delay = OUTAGE_FIRST_DELAY
        try:
            while not self._stopping.is_set():
                self._in_flight = {future for future in self._in_flight if not future.done()}
                self._reap_if_due()
                try:
                    claimed = self._claim_and_submit(pool)
                except DATABASE_ERRORS:
                    # A restarting server or a dropped connection must not end the worker (and
                    # with it run_service); running attempts carry on, claims resume later.
                    logger.exception("Database unavailable; next claim in %gs", outage_delay)
                    connection.close()
                    self._stopping.wait(outage_delay)
                    outage_delay = min(outage_delay * 2, OUTAGE_MAX_DELAY)
                    continue
                outage_delay = OUTAGE_FIRST_DELAY
                if self._reached_max_tasks():
                    break
                if claimed:
                    continue
                if self.exit_when_idle and not self._in_flight:
                    break
                self._wait_for_slot_or_work()
            self._drain()
        finally:
            self._wakeups.close()
            if pool is not None:
                pool.shutdown(wait=True)
        registration.stop()
        logger.info("Worker %s stopped after %d attempt(s)", self.worker_id, self.stats.finished)
        return self.stats

    def _counters(self) -> tuple[int, dict[str, int]]:
        """Attempts finished and their outcomes so far, for the registry (heartbeat thread)."""
        with self._finished_lock:
            return self.stats.finished, dict(self.stats.outcomes)

    def _reached_max_tasks(self) -> bool:
        return self.max_tasks is not None and self.stats.claimed >= self.max_tasks

    def _wait_for_slot_or_work(self) -> None:
        # The reaper runs from this loop: sleep no longer than its next pass.
        until_reap = max(self._next_reap - time.monotonic(), 0.0)
        # (Every slot busy and a claim ahead that found nothing: wait for an announced job or
        # an attempt's end below, which rings too, rather than claim again at once.)
        if len(self._in_flight) >= self.concurrency and self._pool_claim_size() == 0:
            self._wait_for_attempts(until_reap)
        elif not self._stopping.is_set():
            # An attempt that ends rings too: its engine row is flushed and its slot refilled.
            self._rung = self._wakeups.wait(min(self._wakeups.timeout(), until_reap))

    def _wait_for_attempts(self, timeout: float) -> None:
        """Every slot is busy: wait until enough attempts have ended to claim again."""
        deadline = time.monotonic() + timeout
        while not self._stopping.is_set():
            self._in_flight = {future for future in self._in_flight if not future.done()}
            remaining = deadline - time.monotonic()
            if self._pool_claim_size() > 0 or remaining <= 0:
                return
            wait(self._in_flight, timeout=remaining, return_when=FIRST_COMPLETED)

    def _drain(self) -> None:
        if self._in_flight:
            wait(list(self._in_flight))
        self._completions.flush()
        self._flush_finished()

    # -- claiming -----------------------------------------------------------------------------

    def _claim_and_submit(self, pool: ThreadPoolExecutor | None) -> int:
        # What ended since the last pass, in one transaction, before the claim marks its jobs
        # done (a crash between the two leaves the attempts to the reaper, never a job marked
        # done with its attempt unwritten and unrecoverable).
        self._completions.flush()
        # One slot: take a small batch whose attempts, run one after another, last about
        # BATCH_BUDGET; its last attempt then shows RUNNING at most that long before it starts.
        # Long attempts shrink the batch to one.
        free = self._batch_size if pool is None else self._pool_claim_size()
        if self.max_tasks is not None:
            free = min(free, self.max_tasks - self.stats.claimed)
        if free <= 0:
            self._flush_finished()
            return 0
        jobs = self._claim_jobs(free)
        self.stats.claimed += len(jobs)
        for job, attempt in self._claim_attempts(jobs):
            if pool is None:
                self._execute(job, attempt)
            else:
                future = pool.submit(self._execute, job, attempt)
                future.add_done_callback(self._ring)
                self._in_flight.add(future)
        return len(jobs)

    def _ring(self, _future: Future) -> None:
        self._wakeups.ring()

    def _claim_attempts(self, jobs: list[EngineJob]) -> list[tuple[EngineJob, Callable[[], str]]]:
        """Pair each engine job with what runs it, claiming our tasks in one transaction.

        Tasks the batch could not claim (a duplicate job, a polled task to resume, a row another
        worker holds) fall back to ``run_attempt``, which claims or skips them one at a time.
        """
        ours = [job.args_kwargs["args"][0] for job in jobs if job.task_path == RUN_ATTEMPT_PATH]
        claimed: dict[int, tuple] = {}
        if ours:
            try:
                for task, execution in lifecycle.claim_attempts(
                    ours, worker_id=self.worker_id, lease=self.lease, skip_locked=True
                ):
                    heartbeat.track(execution.pk)  # leases of attempts waiting their turn too
                    claimed[task.pk] = (task, execution)
            except DATABASE_UNAVAILABLE:
                logger.exception("Batch claim failed; claiming one at a time")
                drop_broken_connection()
        work: list[tuple[EngineJob, Callable[[], str]]] = []
        for job in jobs:
            if job.task_path != RUN_ATTEMPT_PATH:
                work.append((job, partial(self._execute_foreign_job, self._jobs.get(job))))
                continue
            task_id = job.args_kwargs["args"][0]
            if task_id in claimed:
                task, execution = claimed.pop(task_id)
                attempt = partial(
                    run_claimed_attempt,
                    task,
                    execution,
                    worker_id=self.worker_id,
                    lease=self.lease or lifecycle.lease_seconds(),
                    completions=self._completions,
                )
            else:
                attempt = partial(
                    run_attempt,
                    task_id,
                    worker_id=self.worker_id,
                    lease=self.lease,
                    completions=self._completions,
                )
            work.append((job, attempt))
        return work

    def _claim_jobs(self, limit: int) -> list[EngineJob]:
        """Claim up to ``limit`` ready jobs; finished jobs are marked done in the same commit."""
        finished = self._take_finished()
        rung, self._rung = self._rung, False
        if self._idle and not finished:
            now = time.monotonic()
            if not rung or now >= self._next_tidy:
                # On PostgreSQL this makes the next query a health check: a round trip that an
                # announced job need not wait for more than once a second.
                self._next_tidy = now + 1.0
                close_old_connections()
            # Idle polls read without a lock, so a worker waiting for work every 20 ms does not
            # take SQLite's write lock from the web process 50 times a second. An announced job
            # is most likely there: claim it straight away.
            if not rung and not self._jobs.any_ready():
                self._learn_next_due()
                return []
        try:
            if finished or not self._jobs.can_claim_alone:
                with exclusive_transaction(self._jobs.using):
                    self._settle(finished)
                    jobs = self._jobs.claim(limit)
            else:
                jobs = self._jobs.claim_alone(limit)
        except DATABASE_UNAVAILABLE as exc:
            # Keep what ended for the next claim: those jobs must still be marked done.
            self._restore_finished(finished)
            if isinstance(exc, OperationalError) and is_locked_database_exception(exc):
                return []
            raise
        self._idle = not jobs
        if not jobs:
            self._learn_next_due()
        return jobs

    def _learn_next_due(self) -> None:
        """Found nothing to run: when does the next waiting job come due? (The idle loop sleeps
        until then; a job announced meanwhile with an earlier time shortens the sleep.)"""
        if self._wakeups.wants_due_check():
            self._wakeups.checked_due(self._jobs.next_due())

    # -- running ------------------------------------------------------------------------------

    def _execute(self, job: EngineJob, attempt: Callable[[], str]) -> None:
        outcome = "error"
        started = time.monotonic()
        try:
            outcome = attempt()
        except DATABASE_UNAVAILABLE:
            # This thread's connection broke (a server restart, a dropped link). Drop it, and
            # hand the job back to the queue rather than record it run: a claim made before the
            # break is recovered by the reaper, and the job's next run skips it.
            logger.exception("Engine job %s lost its database connection; released", job.pk)
            connection.close()
            outcome = RELEASED
        except Exception:
            logger.exception("Engine job %s crashed the runner", job.pk)
        finally:
            took = time.monotonic() - started
            with self._finished_lock:
                self._finished.append((job.pk, outcome))
                self.stats.finished += 1
                self.stats.outcomes[outcome] = self.stats.outcomes.get(outcome, 0) + 1
                self._attempt_seconds = 0.8 * self._attempt_seconds + 0.2 * took

    @property
    def _batch_size(self) -> int:
        return max(1, min(MAX_BATCH, int(BATCH_BUDGET / max(self._attempt_seconds, 1e-6))))

    def _pool_claim_size(self) -> int:
        """How many jobs a worker with a pool claims now; 0 while it should wait.

        A free slot is filled at once. While every slot is busy, up to ``ahead`` more wait in
        the pool's queue (claimed, so RUNNING about AHEAD_BUDGET before they start), topped up
        once half of them have started: the other half keeps the slots that free meanwhile
        busy, and the claim's transactions serve several jobs instead of one. Attempts that
        take long make ``ahead`` 0 (a claim per freed slot, as without it); a fresh worker
        waits until its slots have each run an attempt before it claims ahead.
        """
        busy = len(self._in_flight)
        ahead = 0
        if self.stats.finished >= self.concurrency:
            ahead = int(self.concurrency * AHEAD_BUDGET / max(self._attempt_seconds, 1e-6))
            ahead = min(ahead, self.concurrency)
        free = self.concurrency + ahead - busy
        if busy >= self.concurrency and free < max(1, (ahead + 1) // 2):
            return 0
        return max(free, 0)

    @staticmethod
    def _execute_foreign_job(job: DBTaskResult) -> str:
        """Other ``django_tasks`` jobs on the same queue run as ``db_worker`` would run them."""
        try:
            task = job.task
            result = job.task_result
            job.set_successful(task.call(*result.args, **result.kwargs))
            return "foreign-ok"
        except Exception as exc:
            job.set_failed(exc)
            return "foreign-failed"

    def _take_finished(self) -> list[tuple[Any, str]]:
        """Engine jobs of ours that ended since the last flush (foreign ones record themselves)."""
        with self._finished_lock:
            finished, self._finished = self._finished, []
        return [
            (job_id, outcome) for job_id, outcome in finished if not outcome.startswith("foreign")
        ]

    def _restore_finished(self, finished: list[tuple[Any, str]]) -> None:
        with self._finished_lock:
            self._finished.extend(finished)

    def _settle(self, finished: list[tuple[Any, str]]) -> None:
        """Mark the engine jobs that ran done and hand released ones back, in bulk."""
        self._jobs.mark_finished([job_id for job_id, outcome in finished if outcome != RELEASED])
        self._jobs.release([job_id for job_id, outcome in finished if outcome == RELEASED])

    def _flush_finished(self) -> None:
        finished = self._take_finished()
        try:
            self._settle(finished)
        except DATABASE_UNAVAILABLE:
            logger.exception("Could not settle %d engine jobs; will retry", len(finished))
            connection.close()
            self._restore_finished(finished)

    # -- reaping ------------------------------------------------------------------------------

    def _reap_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_reap:
            return
        self._next_reap = now + self.reap_interval * (0.75 + random.random() / 2)  # noqa: S311
        try:
            report = reaper.reap()
        except DATABASE_UNAVAILABLE:
            logger.exception("Reaper pass failed; trying again next round")
            connection.close()
            return
        report.log(logger)
