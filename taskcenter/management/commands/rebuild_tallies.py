"""``manage.py rebuild_tallies``: recount the statistics tallies, check them, or fold them."""

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models import Sum

from taskcenter.models import DurationTally, TaskTally
from taskcenter.models.tally_fold import fold_tallies
from taskcenter.models.tally_triggers import (
    DURATION_TALLY,
    TASK_TALLY,
    lock_all_shards,
    rebuild_tallies,
)

KEYS = (
    (TaskTally, ("owner_id", "status", "task_type", "platform")),
    (DurationTally, ("owner_id", "task_type", "platform", "bin")),
)


def _rows() -> Counter:
    """Every key's count: the sum of its rows over the shards (keys that sum to zero left out)."""
    rows: Counter = Counter()
    for model, key in KEYS:
        sums = model.objects.order_by().values_list(*key).annotate(total=Sum("n"))
        for *values, n in sums.exclude(total=0):
            rows[(model.__name__, *values)] = n
    return rows


class Command(BaseCommand):
    help = (
        "Recount the running totals behind GET /api/v1/tasks/statistics from the task and "
        "execution tables. Triggers keep them exact; run this after loading tasks with the "
        "triggers dropped, or with --check to compare without writing (exit 1 on drift), or "
        "with --fold to fold the per-writer shards into one row per key. Workers may run "
        "meanwhile: a recount or check makes their tally writes wait until it ends."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--check", action="store_true", help="Compare only; write nothing.")
        group.add_argument(
            "--fold",
            action="store_true",
            help="Fold the shards into one row per key and delete rows of zero (no recount).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["fold"]:
            report = fold_tallies()
            vacuum = connection.vendor == "postgresql" and not connection.in_atomic_block
            if report.done and vacuum:
                # A big fold leaves as many dead rows as it moved, and the statistics scan the
                # tables: do not leave that to autovacuum's next round.
                with connection.cursor() as cursor:
                    cursor.execute(f"VACUUM (ANALYZE) {TASK_TALLY}, {DURATION_TALLY}")
            self.stdout.write(
                f"Folded {report.moved} shard rows and deleted {report.deleted} rows of zero "
                f"in {report.batches} transactions"
                + (f"; {report.busy} shards were busy, left for later" if report.busy else "")
            )
            return
        with transaction.atomic():
            lock_all_shards()
            before = _rows()
            rebuild_tallies()
            after = _rows()
            if options["check"]:
                transaction.set_rollback(True)
        drifted = sorted(set(before) ^ set(after) | {k for k in before if before[k] != after[k]})
        self.stdout.write(
            f"{sum(n for k, n in after.items() if k[0] == 'TaskTally')} tasks and "
            f"{sum(n for k, n in after.items() if k[0] == 'DurationTally')} timed attempts; "
            f"{len(drifted)} tally rows differed"
            + (" (checked, nothing written)" if options["check"] else "")
        )
        if options["check"] and drifted:
            raise CommandError(f"Tallies drifted: {drifted[:5]}")
