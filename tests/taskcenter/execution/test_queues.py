"""Queue depth: tasks waiting for a worker, for a remote platform (poll-again) and for a busy
account, counted apart, by kind, platform and account, with the oldest one's age."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from taskcenter import lifecycle
from taskcenter.execution import queues
from taskcenter.execution.runner import run_attempt
from taskcenter.kinds.account_holds import acquire_account
from taskcenter.models import ExecutionStatus, Status, Task, TaskExecution

pytestmark = pytest.mark.django_db


def key(row: dict) -> tuple:
    return (row["kind"], row["platform"], row["account"], row["waiting_for"])


def test_depth_counts_queued_held_on_an_account_and_polling_tasks_apart(make_task):
    for _ in range(3):
        make_task("demo.noop", platform="x", start=True)
    old = make_task("demo.noop", platform="x", account_id="a1", start=True)
    Task.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(seconds=100))
    # Not due for an hour (a retry's back-off): in the queue, but it has not waited yet.
    later = make_task("demo.noop", platform="y", start=True)
    Task.objects.filter(pk=later.pk).update(run_after=timezone.now() + timedelta(hours=1))

    # One task holds account acct-1; a second one needs it and is told to come back later.
    holder = make_task("demo.account", account_id="acct-1", start=True)
    _, holding = lifecycle.claim_attempt(holder, worker_id="w")
    assert acquire_account(holding, "acct-1") is None
    waiter = make_task("demo.account", account_id="acct-1", start=True)
    assert run_attempt(waiter.pk, worker_id="w") == "waiting"
    # A task polling its remote job: no worker holds it meanwhile.
    poller = make_task("demo.poll", {"polls": 3, "interval": 30}, platform="suno", start=True)
    assert run_attempt(poller.pk, worker_id="w") == "waiting"

    rows = queues.depth_rows()

    by_key = {key(row): row for row in rows}
    assert {k: row["count"] for k, row in by_key.items()} == {
        ("demo.noop", "x", "", "worker"): 3,
        ("demo.noop", "x", "a1", "worker"): 1,
        ("demo.noop", "y", "", "worker"): 1,
        ("demo.account", "", "acct-1", "account"): 1,
        ("demo.poll", "suno", "", "platform"): 1,
    }
    assert rows[0]["count"] == 3  # the largest group first
    assert {row["queue"] for row in rows} == {"default"}
    assert by_key[("demo.noop", "x", "a1", "worker")]["oldest_age_seconds"] >= 100
    assert by_key[("demo.noop", "y", "", "worker")]["oldest_age_seconds"] == 0
    assert set(rows[0]) == {
        "queue",
        "kind",
        "platform",
        "account",
        "waiting_for",
        "count",
        "oldest_age_seconds",
    }
    assert queues.waiting_totals(rows) == {"worker": 5, "platform": 1, "account": 1}
    assert 100 <= queues.oldest_queued_age() < 200
    executions = TaskExecution.objects.filter(status=ExecutionStatus.WAITING)
    assert dict(executions.values_list("task_id", "waiting_for")) == {
        waiter.pk: "account",
        poller.pk: "platform",
    }
    assert Task.objects.get(pk=poller.pk).status == Status.RUNNING


def test_an_empty_queue_has_no_rows_and_no_oldest_age(make_task):
    make_task("demo.noop")  # PENDING: not queued

    assert queues.depth_rows() == []
    assert queues.oldest_queued_age() is None
