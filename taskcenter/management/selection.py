"""Shared pieces of the operators' bulk commands: option parsing, task selection, bulk actions.

``retry_tasks`` and ``cancel_tasks`` select tasks the same way and push each one through a
lifecycle function, so both are a few lines on top of ``BulkActionCommand``. ``prune_tasks``
reuses the duration and status parsers.
"""

from __future__ import annotations

import re
import sys
from argparse import ArgumentTypeError
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.dateparse import parse_duration as parse_iso_duration
from tqdm import tqdm

from taskcenter.errors import InvalidTransition
from taskcenter.models import Status, Task

# Ids per query when walking a selection: small enough for SQLite's variable limit and short
# lock times, big enough that a million tasks take a thousand queries rather than a million.
CHUNK_SIZE = 500
PREVIEW_ROWS = 10
# Below this many tasks a progress bar is noise; above it an operator wants to see movement.
PROGRESS_THRESHOLD = 50

# Units: "m" alone is refused, since operators mean minutes and months by it alike (and
# "--older-than 1m" meaning a minute once pruned everything). A month is 30 days, a year 365.
_UNIT_SECONDS = {
    "s": 1,
    "min": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "mo": 30 * 86400,
    "y": 365 * 86400,
}
_UNIT = r"min|mo|m|s|h|d|w|y"  # longest first: "min" and "mo" before "m"
_DURATION_PART = re.compile(rf"(\d+(?:\.\d+)?)\s*({_UNIT})", re.IGNORECASE)
_DURATION_WHOLE = re.compile(rf"(?:\s*\d+(?:\.\d+)?\s*(?:{_UNIT}))+\s*", re.IGNORECASE)
DURATION_HELP = (
    "a duration such as 90s, 30min, 24h, 7d, 2w, 3mo, 1y or 1d12h (a month is 30 days, a "
    "year 365), or ISO 8601 such as P7D or PT30M"
)


# --- value parsers (argparse ``type=`` callables, so errors name the option) ------------------


def split_values(raw: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: options accept comma lists as well as repeats."""
    return [part.strip() for part in raw.split(",") if part.strip()]


def parse_duration(raw: str) -> timedelta:
    """Parse ``30min``, ``24h``, ``7d``, ``3mo``, ``1d12h`` (s/min/h/d/w/mo/y) or an ISO 8601
    duration in days and time (``P7D``, ``PT30M``, Django's ``parse_duration``).

    ``m`` is refused as ambiguous; so are ISO years, months and weeks, which Django does not
    read (``P1M`` is a month in ISO 8601, and guessing its length is what this avoids).
    """
    text = raw.strip()
    if _DURATION_WHOLE.fullmatch(text):
        parts = [(n, unit.lower()) for n, unit in _DURATION_PART.findall(text)]
        if any(unit == "m" for _, unit in parts):
            raise ArgumentTypeError(
                f"{raw!r}: 'm' is ambiguous; write 'min' for minutes or 'mo' for months"
            )
        return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[unit] for n, unit in parts))
    if text.upper().startswith("P"):
        iso = parse_iso_duration(text.upper())
        if iso is not None:
            return iso
        raise ArgumentTypeError(
            f"{raw!r} is not an ISO 8601 duration in days and time (P7D, PT30M, P1DT12H); "
            "for weeks, months or years write 2w, 3mo or 1y"
        )
    raise ArgumentTypeError(f"{raw!r} is not {DURATION_HELP}")


def parse_age(raw: str) -> timedelta:
    """A duration, or a plain integer meaning that many days (``prune_tasks --older-than 30``)."""
    if raw.strip().isdigit():
        return timedelta(days=int(raw))
    return parse_duration(raw)


def _aware(moment: datetime) -> datetime:
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _parse_moment(raw: str, *, end_of_day: bool) -> datetime:
    text = raw.strip()
    try:
        # Date first: parse_datetime would read a bare date as midnight, losing "whole day".
        day = parse_date(text)
        moment = None if day else parse_datetime(text)
    except ValueError as exc:  # well-formed but impossible, e.g. 2024-02-30
        raise ArgumentTypeError(f"{raw!r} is not a valid date: {exc}") from None
    if moment is not None:
        return _aware(moment)
    if day is not None:
        # A bare date in --until means "up to the end of that day", so that
        # ``--since 2024-05-01 --until 2024-05-01`` selects the whole day.
        start = datetime.combine(day, time.min)
        return _aware(start + timedelta(days=1) if end_of_day else start)
    try:
        return timezone.now() - parse_duration(text)
    except ArgumentTypeError:
        raise ArgumentTypeError(
            f"{raw!r} is not an ISO 8601 date or datetime, nor {DURATION_HELP} ago"
        ) from None


def parse_since(raw: str) -> datetime:
    """``--since``: an ISO date/datetime (local time when naive) or a duration before now."""
    return _parse_moment(raw, end_of_day=False)


def parse_until(raw: str) -> datetime:
    """``--until``: like ``--since``, but a bare date means the end of that day."""
    return _parse_moment(raw, end_of_day=True)


def parse_statuses(raw: str) -> list[str]:
    """Comma-separated task statuses, case-insensitive, validated against ``Status``."""
    statuses = []
    for word in split_values(raw):
        status = word.upper()
        if status not in Status.values:
            raise ArgumentTypeError(
                f"unknown status {word!r} (choose from {', '.join(Status.values)})"
            )
        statuses.append(status)
    return statuses


def parse_ids(raw: str) -> list[int]:
    """Comma-separated positive task ids."""
    ids = []
    for word in split_values(raw):
        if not word.isdigit() or int(word) < 1:
            raise ArgumentTypeError(f"{word!r} is not a task id")
        ids.append(int(word))
    return ids


def flatten(groups: Iterable[Iterable[Any]] | None) -> tuple[Any, ...]:
    """Merge the lists of a repeated comma-list option, dropping duplicates, keeping order."""
    return tuple(dict.fromkeys(item for group in groups or () for item in group))


# --- selection -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSelection:
    """Which tasks an operator asked for. Empty fields do not narrow."""

    ids: tuple[int, ...] = ()
    statuses: tuple[str, ...] = ()
    task_types: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> TaskSelection:
        """Build a selection from the options ``add_selection_arguments`` declared."""
        selection = cls(
            ids=flatten(options.get("ids")),
            statuses=flatten(options.get("statuses")),
            task_types=flatten(options.get("task_types")),
            platforms=flatten(options.get("platforms")),
            owners=flatten(options.get("owners")),
            since=options.get("since"),
            until=options.get("until"),
        )
        selection.validate()
        return selection

    @property
    def has_filters(self) -> bool:
        return any((self.ids, self.statuses, self.task_types, self.platforms, self.owners)) or any(
            moment is not None for moment in (self.since, self.until)
        )

    def validate(self) -> None:
        """Refuse what parses but cannot be meant: an empty range, an owner who does not exist."""
        if self.since and self.until and self.since >= self.until:
            raise CommandError("--since must be earlier than --until")
        if self.owners:
            user_model = get_user_model()
            field = user_model.USERNAME_FIELD
            known = set(
                user_model.objects.filter(**{f"{field}__in": self.owners}).values_list(
                    field, flat=True
                )
            )
            unknown = [name for name in self.owners if name not in known]
            if unknown:
                raise CommandError(f"--owner: no user named {', '.join(map(repr, unknown))}")

    def queryset(self, default_statuses: Iterable[str] = ()) -> QuerySet[Task]:
        """The selected tasks, ordered by id.

        ``default_statuses`` applies only when neither ``--status`` nor ``--id`` was given:
        ids named one by one are meant whatever their status.
        """
        tasks = Task.objects.all()
        if self.ids:
            tasks = tasks.filter(pk__in=self.ids)
        statuses = self.statuses or (() if self.ids else tuple(default_statuses))
        if statuses:
            tasks = tasks.filter(status__in=statuses)
        if self.task_types:
            tasks = tasks.filter(task_type__in=self.task_types)
        if self.platforms:
            tasks = tasks.filter(platform__in=self.platforms)
        if self.owners:
            field = get_user_model().USERNAME_FIELD
            tasks = tasks.filter(**{f"owner__{field}__in": self.owners})
        if self.since:
            tasks = tasks.filter(created_at__gte=self.since)
        if self.until:
            tasks = tasks.filter(created_at__lt=self.until)
        return tasks.order_by("pk")


def add_selection_arguments(parser: CommandParser) -> None:
    """Declare the selectors shared by the bulk commands (repeatable, comma lists allowed)."""
    parser.add_argument(
        "--id", dest="ids", action="append", type=parse_ids, metavar="ID[,ID...]", help="Task ids."
    )
    parser.add_argument(
        "--status",
        dest="statuses",
        action="append",
        type=parse_statuses,
        metavar="STATUS[,...]",
        help=f"Task statuses, any case: {', '.join(Status.values)}.",
    )
    parser.add_argument(
        "--type",
        dest="task_types",
        action="append",
        type=split_values,
        metavar="TYPE[,...]",
        help="Task types.",
    )
    parser.add_argument(
        "--platform",
        dest="platforms",
        action="append",
        type=split_values,
        metavar="NAME[,...]",
        help="Platforms.",
    )
    parser.add_argument(
        "--owner",
        dest="owners",
        action="append",
        type=split_values,
        metavar="USER[,...]",
        help="Owner usernames.",
    )
    parser.add_argument(
        "--since",
        type=parse_since,
        metavar="WHEN",
        help="Created at or after: 2024-05-01, 2024-05-01T08:00, or a duration ago (24h, 7d).",
    )
    parser.add_argument(
        "--until",
        type=parse_until,
        metavar="WHEN",
        help="Created before: same forms as --since; a bare date includes that whole day.",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="Required when no other selector is given, so nothing acts on every task by accident.",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="Print the count and a preview; change nothing."
    )
    parser.add_argument(
        "--progress", action="store_true", help="Show a progress bar on stderr whatever the size."
    )


def iter_id_chunks(tasks: QuerySet[Task], size: int = CHUNK_SIZE) -> Iterator[list[int]]:
    """Yield the selected ids in ascending chunks without holding a cursor open.

    Keyset pagination (``pk > last``) rather than OFFSET or a streaming cursor: acting on a
    task usually moves it out of the selection, which would make OFFSET skip rows, and SQLite
    gives no isolation between a cursor and writes on the same connection.
    """
    ids = tasks.order_by("pk").values_list("pk", flat=True)
    last = 0
    while chunk := list(ids.filter(pk__gt=last)[:size]):
        yield chunk
        last = chunk[-1]


def preview_lines(tasks: QuerySet[Task], limit: int = PREVIEW_ROWS) -> list[str]:
    """A small fixed-width table of the first ``limit`` selected tasks."""
    field = get_user_model().USERNAME_FIELD
    rows = tasks.values_list(
        "pk", "task_type", "platform", "status", f"owner__{field}", "created_at"
    )[:limit]
    header = ("ID", "TYPE", "PLATFORM", "STATUS", "OWNER", "CREATED")
    cells = [header] + [
        (
            str(pk),
            task_type,
            platform or "-",
            status,
            owner,
            timezone.localtime(created).strftime("%Y-%m-%d %H:%M"),
        )
        for pk, task_type, platform, status, owner, created in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def refusal_summary(refused: Counter[str], *, outcome: str = "refused") -> str:
    """``"3 refused (already QUEUED: 2, COMPLETED: 1)"``; most common status first."""
    total = sum(refused.values())
    if not total:
        return f"0 {outcome}"
    parts = ", ".join(f"{status}: {n}" for status, n in refused.most_common())
    return f"{total} {outcome} (already {parts})"


def missing_ids(selection: TaskSelection) -> list[int]:
    """Ids named with ``--id`` that no task has (deleted, or mistyped)."""
    if not selection.ids:
        return []
    found = set(Task.objects.filter(pk__in=selection.ids).values_list("pk", flat=True))
    return [task_id for task_id in selection.ids if task_id not in found]


def not_found_note(missing: list[int]) -> str:
    return f"; not found: {', '.join(map(str, missing))}" if missing else ""


# --- the bulk action command ---------------------------------------------------------------


class BulkActionCommand(BaseCommand):
    """Select tasks and push each through one lifecycle function.

    Subclasses set ``verb``/``done`` (for messages), ``default_statuses``, ``accepts`` (the
    statuses the lifecycle function moves, so a dry run can tell what it would refuse) and
    implement ``act(task_id, options)``; an ``InvalidTransition`` from it is counted as refused.
    """

    verb = "act on"
    done = "Acted on"
    default_statuses: tuple[str, ...] = ()
    accepts: tuple[str, ...] = tuple(Status.values)  # none refused unless a subclass says

    def add_arguments(self, parser: CommandParser) -> None:
        add_selection_arguments(parser)

    def act(self, task_id: int, options: dict[str, Any]) -> None:
        raise NotImplementedError

    def handle(self, *args: Any, **options: Any) -> None:
        selection = TaskSelection.from_options(options)
        if not selection.has_filters and not options["all"]:
            raise CommandError(
                f"No selector given: pass --id, --status, --type, --platform, --owner, --since "
                f"or --until, or --all to {self.verb} every matching task."
            )
        tasks = selection.queryset(self.default_statuses)
        missing = missing_ids(selection)
        total = tasks.count()
        if options["dry_run"]:
            self._dry_run(tasks, total, missing)
            return
        done, refused = self._run(tasks, total, options)
        self.stdout.write(
            f"{self.done} {done} task(s); {refusal_summary(refused)}{not_found_note(missing)}"
        )

    def _dry_run(self, tasks: QuerySet[Task], total: int, missing: list[int]) -> None:
        """Say what a real run would do: act on, refuse (by status), and not find."""
        refused = Counter[str](
            dict(
                tasks.exclude(status__in=self.accepts)
                .order_by()
                .values_list("status")
                .annotate(n=Count("pk"))
                .values_list("status", "n")
            )
        )
        summary = f"Would {self.verb} {total - sum(refused.values())} task(s)"
        if refused:
            summary += "; " + refusal_summary(refused, outcome="would be refused")
        self.stdout.write(f"{summary}{not_found_note(missing)} (dry run: nothing changed).")
        if total:
            self.stdout.write("\n".join(preview_lines(tasks)))
            if total > PREVIEW_ROWS:
                self.stdout.write(f"... and {total - PREVIEW_ROWS} more")

    def _run(
        self, tasks: QuerySet[Task], total: int, options: dict[str, Any]
    ) -> tuple[int, Counter[str]]:
        done, refused = 0, Counter[str]()
        with self._progress_bar(total, options) as bar:
            for chunk in iter_id_chunks(tasks):
                for task_id in chunk:
                    try:
                        self.act(task_id, options)
                    except InvalidTransition as refusal:
                        # Somebody else moved it, or it was selected in a status this action
                        # does not leave: an expected outcome of a bulk run, not a failure.
                        refused[refusal.current_status or "deleted"] += 1
                    else:
                        done += 1
                    bar.update(1)
        return done, refused

    def _progress_bar(self, total: int, options: dict[str, Any]) -> tqdm:
        stream = options.get("stderr") or sys.stderr
        wanted = options["progress"] or (total > PROGRESS_THRESHOLD and self.stdout.isatty())
        return tqdm(total=total, file=stream, disable=not wanted, unit="task", desc=self.done)
