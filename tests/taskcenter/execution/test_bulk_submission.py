"""A bulk submission racing a real worker process: every task runs once, and the books balance.

The jobs of a ``create_tasks`` call commit with its tasks (database engine), so the worker,
which claims while later batches are still being written, can never see a job whose task is
missing or a queued task without its job.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from quota import ledger as quota
from quota.models import LedgerKind, QuotaLedgerEntry
from taskcenter import lifecycle
from taskcenter.models import ExecutionStatus, Status, Task, TaskEvent, TaskExecution
from tests.support.processes import wait_for

pytestmark = pytest.mark.slow

BATCHES, SIZE, PRICE = 6, 80, 2


def test_bulk_submissions_racing_a_worker_run_every_task_once(start_worker, user):
    quota.grant(user.pk, BATCHES * SIZE * PRICE, note="tests")
    worker = start_worker("--concurrency", "4")
    worker.wait_until_polling()

    submitted: list[int] = []
    for batch in range(BATCHES):
        items = [
            {"task_type": "demo.noop", "start": True, "quota": PRICE, "name": f"{batch}/{n}"}
            for n in range(SIZE)
        ]
        submitted += [task.pk for task in lifecycle.create_tasks(items, owner=user)]

    total = BATCHES * SIZE
    wait_for(lambda: Task.objects.filter(status=Status.COMPLETED).count() == total, timeout=120)

    assert sorted(submitted) == sorted(Task.objects.values_list("pk", flat=True))
    executions = TaskExecution.objects.filter(status=ExecutionStatus.COMPLETED)
    assert sorted(executions.values_list("task_id", flat=True)) == sorted(submitted)
    assert TaskExecution.objects.count() == total
    assert TaskEvent.objects.filter(verb="created").count() == total
    assert TaskEvent.objects.filter(verb="completed").count() == total
    assert DBTaskResult.objects.filter(status="SUCCESSFUL").count() == total
    assert DBTaskResult.objects.count() == total
    charges = QuotaLedgerEntry.objects.filter(kind=LedgerKind.CHARGE)
    assert sorted(charges.values_list("task_id", flat=True)) == sorted(submitted)
    assert not QuotaLedgerEntry.objects.filter(kind=LedgerKind.REFUND).exists()
    assert quota.balance_of(user.pk) == 0
    out = StringIO()
    # Once the worker is idle: this command's recount is not exact beside running workers on
    # PostgreSQL (it reads the tallies and the tables in separate statements).
    call_command("rebuild_tallies", "--check", stdout=out)
    assert f"{total} tasks" in out.getvalue()
    assert worker.terminate() == 0
