"""One task at a time per platform account, with a cooldown between uses.

Platforms ban accounts that publish or scrape from two places at once, or too often. A handler
calls ``ctx.hold_account(account_id)`` before it touches the platform; the hold belongs to the
attempt's execution and lapses by itself when that execution closes, so nothing has to release
it on every exit path and a worker killed with SIGKILL frees the account once the reaper marks
its execution LOST. A busy account does not block a worker: the attempt is deferred with
``poll_again`` and tried again later.

Account ids are chosen by clients, so a hold is keyed by the task's owner as well: the same id
in two users' tasks names two accounts, and one user can neither delay another's tasks nor
learn from a Busy message which of their tasks use an account. Publishing's ids are its
``PlatformAccount`` rows, which only their owner can name, so nothing is lost there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from taskcenter.models import AccountHold, ExecutionStatus, TaskExecution

OPEN_EXECUTION = (ExecutionStatus.RUNNING, ExecutionStatus.WAITING)
# Never poll a busy account faster than this, whatever the caller asks.
MIN_WAIT = 0.2


@dataclass(frozen=True)
class Busy:
    """Why an account cannot be taken now, and when to look again."""

    seconds: float
    reason: str


def acquire_account(
    execution: TaskExecution,
    account_id: str,
    *,
    platform: str = "",
    cooldown: float = 0.0,
    wait: float = 5.0,
) -> Busy | None:
    """Make ``execution`` the holder of the account, or say why not (``Busy``).

    The account is the task owner's: holds of other users' tasks on the same id are other
    accounts. Re-entrant: an execution resumed after ``poll_again`` still holds what it held.
    ``cooldown`` is how long the account must rest after this execution closes, at most
    ``TASKCENTER["ACCOUNT_COOLDOWN_MAX_SECONDS"]``.
    """
    owner_id = execution.task.owner_id
    cooldown = min(max(0.0, cooldown), max_cooldown())
    with transaction.atomic():
        hold = _locked_hold(owner_id, platform, account_id)
        # Read after the lock, which BEGIN IMMEDIATE on SQLite may wait seconds for: the check
        # and held_since are then never dated before a release read under that lock.
        now = timezone.now()
        if hold.execution_id == execution.pk:
            return None
        busy = _busy(hold, now, wait)
        if busy is not None:
            return busy
        # The guard repeats what was read, so a racing acquirer that read the same holder loses
        # here even where the row lock above is a no-op (SQLite serializes writers instead).
        taken = AccountHold.objects.filter(pk=hold.pk, execution_id=hold.execution_id).update(
            execution_id=execution.pk, cooldown=cooldown, held_since=now, released_at=None
        )
        if taken != 1:
            return Busy(max(MIN_WAIT, wait), f"Account {account_id} was just taken")
        TaskExecution.objects.filter(pk=execution.pk).update(account_id=account_id[:64])
    return None


def max_cooldown() -> float:
    """The longest rest an account may be given (operators' settings are checked against it)."""
    return float(settings.TASKCENTER["ACCOUNT_COOLDOWN_MAX_SECONDS"])


def _locked_hold(owner_id: int, platform: str, account_id: str) -> AccountHold:
    key: dict[str, Any] = {"owner_id": owner_id, "platform": platform, "account_id": account_id}
    try:
        with transaction.atomic():  # a savepoint: losing the insert race must not spoil the block
            AccountHold.objects.get_or_create(**key)
    except IntegrityError:
        pass  # a concurrent acquirer created the row first; lock theirs
    return AccountHold.objects.select_for_update().get(**key)


def _busy(hold: AccountHold, now: datetime, wait: float) -> Busy | None:
    released_at = hold.released_at
    if hold.execution_id is not None:
        holder = (
            TaskExecution.objects.filter(pk=hold.execution_id)
            .values("status", "completed_at", "task_id", "task__owner_id")
            .first()
        )
        if holder and holder["status"] in OPEN_EXECUTION:
            # Only the owner's own tasks hold the owner's accounts; the check keeps the message
            # from naming anyone else's task should a hold ever say otherwise.
            by = (
                f"task #{holder['task_id']}"
                if holder["task__owner_id"] == hold.owner_id
                else "another task"
            )
            return Busy(max(MIN_WAIT, wait), f"Account {hold.account_id} is in use by {by}")
        released_at = (holder["completed_at"] if holder else None) or released_at or now
    if released_at is None:
        return None
    # Another machine's clock may run ahead; a release "in the future" counts as now.
    free_at = min(released_at, now) + timedelta(seconds=hold.cooldown)
    if now < free_at:
        remaining = (free_at - now).total_seconds()
        return Busy(
            max(MIN_WAIT, min(wait, remaining) if wait > 0 else remaining),
            f"Account {hold.account_id} is cooling down for {remaining:.1f}s",
        )
    return None


def account_state(hold: AccountHold) -> str:
    """A word for operators: "free", "in use by task #N" or "cooling down"."""
    busy = _busy(hold, timezone.now(), 0)
    return busy.reason if busy else "free"
