"""``manage.py prune_tasks``: delete finished tasks (and finished engine jobs) past retention."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models
from django.db.models import QuerySet
from django.utils import timezone

from taskcenter.management.selection import DURATION_HELP, flatten, parse_age, parse_statuses
from taskcenter.models import FINISHED_STATUSES, Task

# One DELETE per this many tasks: bounded lock time, and under SQLite's variable limit.
BATCH_SIZE = 1000
# Above this many tasks the command asks first (or needs --yes): a typo in --older-than should
# cost a question, not the history.
CONFIRM_ABOVE = 1000
ENGINE_FINISHED = ("SUCCESSFUL", "FAILED")


def cascade_relations() -> list[models.ForeignObjectRel]:
    """Relations whose rows go when a task is deleted (``on_delete=CASCADE``).

    Read from the model graph rather than listed, so results and records that other apps hang
    on a task are counted too.
    """
    return [
        relation for relation in Task._meta.related_objects if relation.on_delete is models.CASCADE
    ]


def cascaded_counts(tasks: QuerySet[Task]) -> Counter[str]:
    """Rows that deleting ``tasks`` would take with them, by model label (for --dry-run)."""
    counts: Counter[str] = Counter()
    for relation in cascade_relations():
        related = relation.related_model._default_manager
        counts[relation.related_model._meta.label] += related.filter(
            **{f"{relation.field.name}__in": tasks.values("pk")}
        ).count()
    return counts


def engine_rows(cutoff: datetime) -> QuerySet | None:
    """Finished django-tasks-db jobs older than ``cutoff`` (None when that app is not used)."""
    if not apps.is_installed("django_tasks_db"):
        return None
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(status__in=ENGINE_FINISHED, finished_at__lt=cutoff)


def delete_in_batches(rows: QuerySet, batch_size: int = BATCH_SIZE) -> Counter[str]:
    """Delete ``rows`` (and their cascades) ``batch_size`` primary keys per transaction."""
    deleted: Counter[str] = Counter()
    ids = rows.order_by("pk").values_list("pk", flat=True)
    while batch := list(ids[:batch_size]):
        # Filtering again by the same conditions, not just the ids, keeps a task retried
        # since the ids were read (it is no longer finished) out of the DELETE.
        _, per_model = rows.filter(pk__in=batch).delete()
        deleted.update(per_model)
        if len(batch) < batch_size:
            break
    return deleted


class Command(BaseCommand):
    help = (
        "Delete finished tasks (COMPLETED, FAILED, CANCELLED) whose finished_at is older than "
        "--older-than, with their executions, events and results, plus django-tasks-db jobs "
        "that finished (SUCCESSFUL or FAILED) before the same cutoff. Deletes in batches. "
        "Asks before deleting more than --confirm-above tasks; without a terminal, needs --yes."
    )
    stealth_options = ("stdin",)  # tests answer the question through call_command(stdin=...)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            required=True,
            type=parse_age,
            help=f"Retention: {DURATION_HELP}, or a plain number of days (30).",
        )
        parser.add_argument(
            "--status",
            dest="statuses",
            action="append",
            type=parse_statuses,
            metavar="STATUS[,...]",
            help="Only these finished statuses (default: COMPLETED, FAILED, CANCELLED).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Print counts; delete nothing.")
        parser.add_argument(
            "--yes", action="store_true", help="Do not ask, however many tasks are deleted."
        )
        parser.add_argument(
            "--confirm-above",
            type=int,
            default=CONFIRM_ABOVE,
            metavar="N",
            help="Ask before deleting more than N tasks (default: %(default)s).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help="Tasks per DELETE (default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        statuses = flatten(options["statuses"]) or tuple(sorted(FINISHED_STATUSES))
        unfinished = [status for status in statuses if status not in FINISHED_STATUSES]
        if unfinished:
            raise CommandError(
                f"--status: {', '.join(unfinished)} is not a finished status; only COMPLETED, "
                "FAILED and CANCELLED tasks are pruned"
            )
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        if options["confirm_above"] < 0:
            raise CommandError("--confirm-above must be 0 or more")
        if options["older_than"].total_seconds() <= 0:
            raise CommandError("--older-than must be more than zero")
        cutoff = timezone.now() - options["older_than"]
        tasks = Task.objects.filter(status__in=statuses, finished_at__lt=cutoff)
        jobs = engine_rows(cutoff)
        when = f"finished before {timezone.localtime(cutoff):%Y-%m-%d %H:%M:%S %Z}"

        if options["dry_run"]:
            counts = Counter({Task._meta.label: tasks.count(), **cascaded_counts(tasks)})
            if jobs is not None:
                counts[jobs.model._meta.label] = jobs.count()
            self.stdout.write(f"Would delete, {when} (dry run: nothing changed):")
        else:
            self._confirm(tasks.count(), when, options)
            counts = delete_in_batches(tasks, options["batch_size"])
            if jobs is not None:
                counts.update(delete_in_batches(jobs, options["batch_size"]))
            self.stdout.write(f"Deleted, {when}:")
        self._write_counts(counts, engine_label=jobs.model._meta.label if jobs is not None else "")

    def _confirm(self, count: int, when: str, options: dict[str, Any]) -> None:
        """Ask on a terminal before deleting more than --confirm-above tasks; refuse without
        one (cron, CI, a pipe) unless --yes was given."""
        limit = options["confirm_above"]
        if count <= limit or options["yes"]:
            return
        stdin = options.get("stdin") or sys.stdin
        if stdin is None or not stdin.isatty():
            raise CommandError(
                f"{count} tasks {when} would be deleted, more than --confirm-above {limit}, and "
                "there is no terminal to ask: check with --dry-run, then pass --yes. "
                "Nothing was deleted."
            )
        self.stdout.write(f"Delete {count} tasks {when}, with their history? [y/N] ", ending="")
        self.stdout.flush()
        if stdin.readline().strip().lower() not in ("y", "yes"):
            raise CommandError("Not confirmed. Nothing was deleted.")

    def _write_counts(self, counts: Counter[str], *, engine_label: str) -> None:
        """Tasks first, then what cascaded with them, then engine jobs; zeros included."""
        labels = [relation.related_model._meta.label for relation in cascade_relations()]
        order = [Task._meta.label, *sorted(set(labels))] + ([engine_label] if engine_label else [])
        order += sorted(set(counts) - set(order))
        for label in order:
            self.stdout.write(f"  {label}: {counts[label]}")
