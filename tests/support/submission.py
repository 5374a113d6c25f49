"""What the submission tests read back: everything a submission writes, and the tallies."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from quota.models import QuotaBalance, QuotaLedgerEntry
from taskcenter.models import IdempotencyKey, Task, TaskEvent


def database() -> dict:
    """Everything a submission writes, for 'nothing changed' checks."""
    return {
        "tasks": list(Task.objects.order_by("pk").values()),
        "events": list(TaskEvent.objects.order_by("pk").values()),
        "jobs": DBTaskResult.objects.count(),
        "ledger": list(QuotaLedgerEntry.objects.order_by("pk").values()),
        "balances": list(QuotaBalance.objects.order_by("pk").values("user_id", "balance")),
        "keys": list(IdempotencyKey.objects.order_by("pk").values()),
    }


def assert_tallies_exact() -> None:
    out = StringIO()
    call_command("rebuild_tallies", "--check", stdout=out)  # raises CommandError on drift
    assert "0 tally rows differed" in out.getvalue()
