"""What a handler gets besides its task: progress, checkpoints, a results sink, poll-again."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from taskcenter.errors import LeaseLost, PollAgain, TaskCancelled, TaskStopped
from taskcenter.kinds import account_holds
from taskcenter.kinds.results import results_model
from taskcenter.lib.db_outage import DATABASE_UNAVAILABLE, drop_broken_connection
from taskcenter.models import EventVerb, ExecutionStatus, Status, Task, TaskEvent, TaskExecution

if TYPE_CHECKING:
    from taskcenter.kinds import TaskKind

logger = logging.getLogger(__name__)

# Handlers may report progress in a tight loop; one row write per quarter second is plenty for
# anyone watching, and keeps the single SQLite writer free for other work.
PROGRESS_MIN_INTERVAL = 0.25
# An event row (what the event streams deliver) at most this often per attempt, ``force`` or
# not: a kind reporting a hundred times a second writes two rows a second, not a hundred.
PROGRESS_EVENT_MIN_INTERVAL = 0.5


class AttemptContext:
    """Passed to ``handler(task, ctx)`` for one attempt.

    Every write it makes is fenced on this attempt still owning the task, so a handler whose
    task was stopped, cancelled or taken over learns it at the next call and unwinds.
    """

    def __init__(
        self, *, task: Task, execution: TaskExecution, kind: TaskKind, worker_id: str, lease: float
    ) -> None:
        self.task = task
        self.execution = execution
        self.kind = kind
        self.worker_id = worker_id
        self.lease = lease
        self.attempt = execution.attempt
        self.result_count = execution.result_count
        self._last_progress_write = 0.0
        self._last_progress_event = float("-inf")

    # -- fences -------------------------------------------------------------------------------

    def _owned_task(self) -> Any:
        return Task.objects.filter(
            pk=self.task.pk, status=Status.RUNNING, total_attempts=self.attempt
        )

    def _raise_interruption(self) -> None:
        row = Task.objects.filter(pk=self.task.pk).values_list("status", "total_attempts").first()
        status, total_attempts = row if row else (Status.CANCELLED, self.attempt)
        if status == Status.CANCELLED:
            raise TaskCancelled(f"Task {self.task.pk} was cancelled")
        if status == Status.STOPPED:
            raise TaskStopped(f"Task {self.task.pk} was stopped")
        raise LeaseLost(
            f"Attempt {self.attempt} of task {self.task.pk} no longer owns it "
            f"(task is {status}, attempt {total_attempts})"
        )

    def _renew_lease(self) -> int:
        now = timezone.now()
        return TaskExecution.objects.filter(
            pk=self.execution.pk, status=ExecutionStatus.RUNNING
        ).update(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=self.lease))

    # -- the handler's API --------------------------------------------------------------------

    def _database_away(self, exc: BaseException, doing: str) -> None:
        """A progress write or a checkpoint could not reach the database (a restart).

        Neither is worth ending the attempt for: the handler carries on, the heartbeat thread
        keeps the lease while it can, and the next call (or the outcome write, which is
        retried) learns of a stop or a cancel. Inside a handler's own transaction the error
        stands, since that transaction is lost either way.
        """
        if connection.in_atomic_block:
            raise exc
        drop_broken_connection()
        logger.warning("Task %s: could not %s (%s); carrying on", self.task.pk, doing, exc)

    def checkpoint(self) -> None:
        """Raise ``TaskStopped``/``TaskCancelled``/``LeaseLost`` if this attempt must end now."""
        try:
            still_ours = (
                TaskExecution.objects.filter(pk=self.execution.pk, status=ExecutionStatus.RUNNING)
                .filter(task__status=Status.RUNNING, task__total_attempts=self.attempt)
                .exists()
            )
        except DATABASE_UNAVAILABLE as exc:
            self._database_away(exc, "check for a stop or cancel")
            return
        if not still_ours:
            self._raise_interruption()

    def progress(self, percent: float, message: str = "", *, force: bool = False) -> None:
        """Record progress (0-100) and a short message; also a heartbeat and a checkpoint."""
        now = time.monotonic()
        percent = int(max(0, min(100, percent)))
        if not force and percent < 100 and now - self._last_progress_write < PROGRESS_MIN_INTERVAL:
            return
        self._last_progress_write = now
        with_event = now - self._last_progress_event >= PROGRESS_EVENT_MIN_INTERVAL
        try:
            with transaction.atomic():
                updated = self._owned_task().update(
                    progress=percent, progress_message=message[:255], updated_at=timezone.now()
                )
                if updated == 1:
                    updated = self._renew_lease()
                if updated == 1 and with_event:
                    self._record_progress_event(percent, message[:255])
        except DATABASE_UNAVAILABLE as exc:
            self._database_away(exc, "record progress")
            return
        if updated != 1:
            self._raise_interruption()

    def _record_progress_event(self, percent: int, message: str) -> None:
        TaskEvent.objects.create(
            task_id=self.task.pk,
            execution_id=self.execution.pk,
            actor=f"worker:{self.worker_id}",
            verb=EventVerb.PROGRESS,
            from_status=Status.RUNNING,
            to_status=Status.RUNNING,
            data={"progress": percent, "message": message},
        )
        self._last_progress_event = time.monotonic()

    def save_results(self, items: Iterable[dict], *, batch_size: int = 500) -> int:
        """Bulk-insert result rows; items already stored for this task (same ``key``) are skipped.

        Each item is ``{"data": {...}, "data_type": "...", "metadata": {...}, "key": "..."}``.
        Returns how many new rows were written.
        """
        model = results_model()
        written = 0
        batch: list[dict] = []
        for item in items:
            batch.append(item)
            if len(batch) >= batch_size:
                written += self._write_results(model, batch)
                batch = []
        if batch:
            written += self._write_results(model, batch)
        return written

    def _write_results(self, model: Any, batch: list[dict]) -> int:
        keys = [str(item["key"]) for item in batch if item.get("key") not in (None, "")]
        with transaction.atomic():
            seen = set(
                model.objects.filter(task_id=self.task.pk, item_key__in=keys).values_list(
                    "item_key", flat=True
                )
            )
            rows = []
            for item in batch:
                key = "" if item.get("key") in (None, "") else str(item["key"])
                if key:
                    if key in seen:
                        continue
                    seen.add(key)
                rows.append(
                    model(
                        task_id=self.task.pk,
                        execution_id=self.execution.pk,
                        data_type=item.get("data_type", ""),
                        data=item.get("data", {}),
                        metadata=item.get("metadata", {}),
                        item_key=key or None,
                    )
                )
            counted = TaskExecution.objects.filter(
                pk=self.execution.pk, status=ExecutionStatus.RUNNING
            ).update(result_count=F("result_count") + len(rows))
            if counted != 1 or not self._owned_task().exists():
                # Raising rolls the count back; set_rollback() first would break the query
                # that tells stopped from cancelled from lost (TransactionManagementError).
                self._raise_interruption()
            model.objects.bulk_create(rows, ignore_conflicts=True)
        self.result_count += len(rows)
        return len(rows)

    def hold_account(
        self, account_id: str, *, platform: str = "", cooldown: float = 0.0, wait: float = 5.0
    ) -> None:
        """Return once this attempt is the only one using the account; else call back later.

        A busy or resting account ends the attempt like ``poll_again`` (no worker is held) and
        the handler runs again after at most ``wait`` seconds. The hold lasts until this
        attempt's execution closes; ``cooldown`` seconds must pass before the next one takes it.
        """
        if not account_id:
            return
        busy = account_holds.acquire_account(
            self.execution,
            str(account_id),
            platform=platform or self.task.platform,
            cooldown=cooldown,
            wait=wait,
        )
        if busy is not None:
            raise PollAgain(max(0.0, busy.seconds), busy.reason, waiting_for="account")

    # -- the job on the remote platform ---------------------------------------------------------

    def remote_job(self) -> tuple[str, str]:
        """(remote id, remote status) stored for this task: what an earlier attempt started on
        the platform, so a retry or a later poll picks it up instead of starting it again."""
        return (
            Task.objects.filter(pk=self.task.pk).values_list("external_id", "remote_status").get()
        )

    def remember_remote_job(self, remote_id: str, remote_status: str) -> None:
        """Store the platform's id and status of this task's job.

        Not fenced, and not the task's status: what exists on the platform exists even if the
        task was stopped or cancelled a moment ago, and a retry must find it.
        """
        Task.objects.filter(pk=self.task.pk).update(
            external_id=remote_id, remote_status=remote_status, updated_at=timezone.now()
        )

    def poll_again(self, seconds: float, message: str = "") -> NoReturn:
        """End this attempt now and have the handler called again after ``seconds``."""
        raise PollAgain(max(0.0, float(seconds)), message)

    def sleep(self, seconds: float, *, step: float = 0.5) -> None:
        """Sleep, checking for stop/cancel at least every ``step`` seconds."""
        deadline = time.monotonic() + seconds
        while True:
            self.checkpoint()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(step, remaining))
