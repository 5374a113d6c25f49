"""Failures grouped by the shape of their error message, for the triage page.

Grouping happens when the page is read, over a bounded set: the tasks that failed in the
chosen window (FAILED, by ``finished_at``, which is indexed) and the tasks still being retried
after a failure (QUEUED, RUNNING or STOPPED with an error message), newest first and at most
``SCAN_LIMIT`` of each. Each message is fingerprinted in Python (``lib.error_fingerprints``):
the same code on SQLite and PostgreSQL, no column or work added to the task table's write
path, and a cost bounded whatever the table's size: at a million tasks on PostgreSQL, reading
10,000 failures took 0.1 s through the partial index on FAILED tasks, grouping them under 1 s
on a busy 2-core machine.
When the limit cuts the window short the page says so.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Q
from django.db.models.functions import Substr

from taskcenter import lifecycle
from taskcenter.lib.error_fingerprints import MAX_LENGTH, fingerprint, normalise
from taskcenter.models import Status, Task

WINDOWS = {"24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30)}
DEFAULT_WINDOW = "7d"
SCAN_LIMIT = 10_000
# Still being retried after a failure: the tasks "cancel all" calls off.
RETRYING = tuple(s for s in lifecycle.CANCELLABLE if s != Status.PENDING)
SHOWN = 5  # kinds, platforms, owners and accounts named per group


@dataclass
class FailureGroup:
    fingerprint: str
    message: str  # the normalised message
    example: str = ""  # the newest real message of the group
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    failed_ids: list[int] = field(default_factory=list)
    retrying_ids: list[int] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    platforms: Counter[str] = field(default_factory=Counter)
    owners: Counter[str] = field(default_factory=Counter)
    accounts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return len(self.failed_ids) + len(self.retrying_ids)

    # For the template, which cannot call ``most_common(SHOWN)`` (and would look a Counter's
    # attributes up as keys first, getting 0).
    @property
    def top_kinds(self) -> list[tuple[str, int]]:
        return self.kinds.most_common(SHOWN)

    @property
    def top_platforms(self) -> list[tuple[str, int]]:
        return self.platforms.most_common(SHOWN)

    @property
    def top_owners(self) -> list[tuple[str, int]]:
        return self.owners.most_common(SHOWN)

    @property
    def top_accounts(self) -> list[tuple[str, int]]:
        return self.accounts.most_common(SHOWN)

    def ids_for(self, action: str) -> list[int]:
        """The tasks an action applies to: retry the failed ones, cancel the retrying ones."""
        return self.failed_ids if action == "retry" else self.retrying_ids


@dataclass
class Triage:
    groups: list[FailureGroup]
    since: dt.datetime
    truncated: bool  # the scan limit was reached: older failures of the window are left out


def _rows(since: dt.datetime, limit: int):
    columns = (
        "pk",
        "task_type",
        "platform",
        "account_id",
        "owner__username",
        "finished_at",
        "updated_at",
        "message",
    )
    failed = (
        Task.objects.filter(status=Status.FAILED, finished_at__gte=since)
        .annotate(message=Substr("error_message", 1, MAX_LENGTH))
        .order_by("-finished_at")
        .values_list(*columns)[:limit]
    )
    retrying = (
        Task.objects.filter(status__in=RETRYING, updated_at__gte=since)
        .exclude(Q(error_message="") | Q(error_message__isnull=True))
        .annotate(message=Substr("error_message", 1, MAX_LENGTH))
        .order_by("-pk")
        .values_list(*columns)[:limit]
    )
    return list(failed), list(retrying)


def group_failures(
    *, since: dt.datetime, limit: int = SCAN_LIMIT, fingerprint_only: str | None = None
) -> Triage:
    """The failures since ``since`` grouped by fingerprint, the largest group first."""
    failed, retrying = _rows(since, limit)
    groups: dict[str, FailureGroup] = {}
    for rows, is_failed in ((failed, True), (retrying, False)):
        for pk, kind, platform, account, owner, finished, updated, message in rows:
            key = fingerprint(message or "")
            if fingerprint_only is not None and key != fingerprint_only:
                continue
            group = groups.get(key)
            if group is None:
                group = groups[key] = FailureGroup(key, normalise(message or ""), message or "")
            seen = finished if is_failed else updated
            (group.failed_ids if is_failed else group.retrying_ids).append(pk)
            if group.last_seen is None or seen > group.last_seen:
                group.last_seen, group.example = seen, message or ""
            if group.first_seen is None or seen < group.first_seen:
                group.first_seen = seen
            group.kinds[kind] += 1
            group.platforms[platform or "-"] += 1
            group.owners[owner] += 1
            if account:
                group.accounts[account] += 1
    ordered = sorted(groups.values(), key=lambda g: (-g.total, g.message))
    return Triage(ordered, since, len(failed) >= limit or len(retrying) >= limit)
