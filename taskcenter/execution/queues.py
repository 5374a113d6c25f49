"""How deep the queues are now, and what their tasks wait for.

Three kinds of waiting task, counted apart because each calls for a different remedy:

- ``worker``: QUEUED, waiting for a free worker slot (more workers help);
- ``platform``: RUNNING with a WAITING execution whose handler polls a remote platform
  (``ctx.poll_again``): no worker is held, the engine calls it again later (more workers do
  not help; the platform is slow);
- ``account``: RUNNING with a WAITING execution whose platform account is busy with another
  task or resting (``ctx.hold_account``): the account is the bottleneck.

A poll-again is stored as the execution turning WAITING (``lifecycle.defer_attempt``) and a new
engine job due after the wait; the worker counts it as the outcome "waiting" (the registry's
``attempts_deferred``). Both reads stay cheap at a million tasks: queued tasks through the
partial index ``task_queued_depth_idx`` (queued rows only), waiting executions through
``exec_status_started_idx``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from django.db.models import Count, DateTimeField, Min
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from taskcenter.execution.dispatch import run_attempt_job
from taskcenter.models import ExecutionStatus, Status, Task, TaskExecution, WaitingFor

WORKER = "worker"


class DepthRow(TypedDict):
    queue: str
    kind: str
    platform: str
    account: str
    waiting_for: str
    count: int
    oldest_age_seconds: float


def _queued_since() -> Greatest:
    # A queued task waits from when it was queued, or from when it became due (a retry's
    # back-off, a scheduled start): one not due yet counts with an age of zero.
    return Greatest("updated_at", Coalesce("run_after", "updated_at"), output_field=DateTimeField())


def _age(now: datetime, since: datetime | None) -> float:
    return max((now - since).total_seconds(), 0.0) if since else 0.0


def depth_rows(now: datetime | None = None) -> list[dict[str, Any]]:
    """Tasks waiting now by queue, kind, platform, account and what they wait for, the largest
    groups first: ``{queue, kind, platform, account, waiting_for, count, oldest_age_seconds}``.
    """
    now = now or timezone.now()
    queue = run_attempt_job.queue_name  # every attempt of every kind goes to this engine queue
    rows: list[DepthRow] = []
    queued = (
        Task.objects.filter(status=Status.QUEUED)
        .order_by()
        .values("task_type", "platform", "account_id")
        # COUNT(*), not COUNT(id): the partial index answers it alone (an index-only scan).
        .annotate(count=Count("*"), since=Min(_queued_since()))
    )
    for group in queued:
        rows.append(
            DepthRow(
                queue=queue,
                kind=group["task_type"],
                platform=group["platform"],
                account=group["account_id"],
                waiting_for=WORKER,
                count=group["count"],
                oldest_age_seconds=_age(now, group["since"]),
            )
        )
    waiting = (
        TaskExecution.objects.filter(status=ExecutionStatus.WAITING, task__status=Status.RUNNING)
        .order_by()
        .values("task__task_type", "task__platform", "task__account_id", "waiting_for")
        .annotate(count=Count("id"), since=Min("started_at"))
    )
    for wait in waiting:
        rows.append(
            DepthRow(
                queue=queue,
                kind=wait["task__task_type"],
                platform=wait["task__platform"],
                account=wait["task__account_id"],
                # Executions deferred before the field existed polled a platform.
                waiting_for=wait["waiting_for"] or WaitingFor.PLATFORM.value,
                count=wait["count"],
                oldest_age_seconds=_age(now, wait["since"]),
            )
        )
    merged = _merge(rows)
    merged.sort(key=lambda r: (-r["count"], r["waiting_for"], r["kind"], r["platform"]))
    return [dict(row) for row in merged]


def _merge(rows: list[DepthRow]) -> list[DepthRow]:
    """One row per key (old blank ``waiting_for`` rows and "platform" ones fold together)."""
    merged: dict[tuple[str, ...], DepthRow] = {}
    for row in rows:
        key = (row["queue"], row["kind"], row["platform"], row["account"], row["waiting_for"])
        if key in merged:
            seen = merged[key]
            seen["count"] += row["count"]
            seen["oldest_age_seconds"] = max(seen["oldest_age_seconds"], row["oldest_age_seconds"])
        else:
            merged[key] = row
    return list(merged.values())


def oldest_queued_age(now: datetime | None = None) -> float | None:
    """Seconds the longest-waiting QUEUED task has waited (since queued or due), or None."""
    now = now or timezone.now()
    since = Task.objects.filter(status=Status.QUEUED).aggregate(since=Min(_queued_since()))["since"]
    return None if since is None else _age(now, since)


def waiting_totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Tasks waiting for a worker, a platform and an account, from ``depth_rows``."""
    totals = {WORKER: 0, WaitingFor.PLATFORM.value: 0, WaitingFor.ACCOUNT.value: 0}
    for row in rows:
        totals[row["waiting_for"]] = totals.get(row["waiting_for"], 0) + row["count"]
    return totals
