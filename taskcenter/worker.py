"""The Task Center worker: claims engine jobs and runs up to N attempts at once.

It takes django-tasks-db's jobs the way that package's ``db_worker`` does (a short exclusive
transaction, ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL), but claims as many jobs as it
has free slots in that one transaction and runs them on a thread pool: most handlers wait on
HTTP, so one process can keep many platforms busy. The same loop reaps lost attempts.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from django.db import close_old_connections, connection
from django.db.utils import OperationalError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from . import reaper
from .dispatch import RUN_ATTEMPT_PATH
from .runner import run_attempt

logger = logging.getLogger("taskcenter.worker")


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
        self._finished: list[tuple[str, str]] = []
        self._finished_lock = threading.Lock()
        self._next_reap = 0.0

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
        logger.warning(
            "%s: finishing %d running attempt(s), then exiting (again to force).",
            signal.strsignal(signum),
            len(self._in_flight),
        )
        self._stopping.set()

    def stop(self) -> None:
        self._stopping.set()

    # -- main loop ----------------------------------------------------------------------------

    def run(self) -> WorkerStats:
        logger.info(
            "Worker %s started: concurrency=%d queues=%s poll=%gs",
            self.worker_id,
            self.concurrency,
            ",".join(self.queue_names),
            self.interval,
        )
        # Spread the reapers of workers started together.
        self._next_reap = time.monotonic() + random.random() * self.reap_interval  # noqa: S311
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="attempt") as pool:
            while not self._stopping.is_set():
                self._in_flight = {future for future in self._in_flight if not future.done()}
                self._reap_if_due()
                claimed = self._claim_and_submit(pool)
                self._flush_finished()
                if self._reached_max_tasks():
                    break
                if claimed:
                    continue
                if self.exit_when_idle and not self._in_flight:
                    break
                self._wait_for_slot_or_work()
            self._drain()
        logger.info("Worker %s stopped after %d attempt(s)", self.worker_id, self.stats.finished)
        return self.stats

    def _reached_max_tasks(self) -> bool:
        return self.max_tasks is not None and self.stats.claimed >= self.max_tasks

    def _wait_for_slot_or_work(self) -> None:
        if len(self._in_flight) >= self.concurrency:
            wait(list(self._in_flight), return_when=FIRST_COMPLETED)
        elif self._in_flight:
            # Wake early when an attempt ends: its engine row is flushed and its slot refilled.
            wait(list(self._in_flight), timeout=self.interval, return_when=FIRST_COMPLETED)
        else:
            self._stopping.wait(self.interval)

    def _drain(self) -> None:
        if self._in_flight:
            wait(list(self._in_flight))
        self._flush_finished()

    # -- claiming -----------------------------------------------------------------------------

    def _claim_and_submit(self, pool: ThreadPoolExecutor) -> int:
        free = self.concurrency - len(self._in_flight)
        if self.max_tasks is not None:
            free = min(free, self.max_tasks - self.stats.claimed)
        if free <= 0:
            return 0
        jobs = self._claim_jobs(free)
        for job in jobs:
            self._in_flight.add(pool.submit(self._execute, job))
        self.stats.claimed += len(jobs)
        return len(jobs)

    def _claim_jobs(self, limit: int) -> list[DBTaskResult]:
        close_old_connections()
        ready = DBTaskResult.objects.ready().filter(
            backend_name=self.backend_name, queue_name__in=self.queue_names
        )
        try:
            with exclusive_transaction(ready.db):
                jobs = list(ready.select_for_update(skip_locked=True)[:limit])
                if jobs:
                    DBTaskResult.objects.filter(pk__in=[job.pk for job in jobs]).update(
                        status="RUNNING", started_at=timezone.now(), worker_ids=[self.worker_id]
                    )
        except OperationalError as exc:
            if is_locked_database_exception(exc):
                return []
            raise
        return jobs

    # -- running ------------------------------------------------------------------------------

    def _execute(self, job: DBTaskResult) -> None:
        outcome = "error"
        try:
            if job.task_path == RUN_ATTEMPT_PATH:
                task_id = job.args_kwargs["args"][0]
                outcome = run_attempt(task_id, worker_id=self.worker_id, lease=self.lease)
            else:
                outcome = self._execute_foreign_job(job)
        except Exception:
            logger.exception("Engine job %s crashed the runner", job.pk)
        finally:
            with self._finished_lock:
                self._finished.append((str(job.pk), outcome))
                self.stats.finished += 1
                self.stats.outcomes[outcome] = self.stats.outcomes.get(outcome, 0) + 1

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

    def _flush_finished(self) -> None:
        """Mark finished engine jobs done, one UPDATE per batch instead of one per job."""
        with self._finished_lock:
            finished, self._finished = self._finished, []
        ours = [job_id for job_id, outcome in finished if not outcome.startswith("foreign")]
        if not ours:
            return
        try:
            DBTaskResult.objects.filter(pk__in=ours, status="RUNNING").update(
                status="SUCCESSFUL", finished_at=timezone.now()
            )
        except OperationalError:
            logger.exception("Could not mark %d engine jobs finished; will retry", len(ours))
            with self._finished_lock:
                self._finished.extend((job_id, "retry") for job_id in ours)

    # -- reaping ------------------------------------------------------------------------------

    def _reap_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_reap:
            return
        self._next_reap = now + self.reap_interval * (0.75 + random.random() / 2)  # noqa: S311
        try:
            report = reaper.reap()
        except OperationalError:
            logger.exception("Reaper pass failed; trying again next round")
            connection.close()
            return
        if report.lost or report.redispatched:
            logger.warning(
                "Reaper: %d lost attempt(s) (%d requeued, %d failed), %d orphan(s) re-dispatched",
                report.lost,
                report.requeued,
                report.failed,
                report.redispatched,
            )
