"""The ports through which the lifecycle reaches what is built around it.

The lifecycle sits below the engine and below the apps, so it cannot import them. What it must
still set in motion, in the same transaction as a transition, is given to it here when Django
starts:

- the **dispatcher** hands a QUEUED task to the engine once the transaction commits
  (``taskcenter.execution.dispatch.enqueue_attempt``, installed by ``TaskCenterConfig.ready``);
- the **bulk dispatcher** hands newly submitted tasks to the engine all at once
  (``taskcenter.execution.dispatch.EngineJobs``): in the submitting transaction itself when the
  engine's jobs are rows of the same database, otherwise once it commits;
- the **billing** charges a task's price to its owner when it is created or retried and refunds
  it when it fails or is cancelled (the ``quota`` app installs its ledger; without it tasks are
  free).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple, Protocol


class Clause(NamedTuple):
    """A part of a one-statement submission (PostgreSQL): ``<name> AS (<sql>)`` in its ``WITH``.

    The new task's row is ``new_task`` (``new_task.id``). A ``gate`` comes before it and yields
    at most one row: the task is written only if every gate yields one (a charge the balance
    covers), and otherwise the statement writes nothing. A ``read`` clause (a plain ``SELECT``,
    which PostgreSQL runs only if the statement reads it) is read by the statement.
    """

    name: str
    sql: str
    params: Sequence[object]
    gate: bool = False
    read: bool = False


class Dispatcher(Protocol):
    def __call__(self, task_id: int, *, priority: int, run_after: datetime | None) -> object: ...


class QueuedTask(NamedTuple):
    """A task to hand to the engine: what ``Dispatcher`` takes, as one value."""

    task_id: int
    priority: int
    run_after: datetime | None


class BulkDispatcher(Protocol):
    def in_transaction(self) -> bool:
        """Whether jobs are rows of the caller's database, written in its transaction (so they
        commit with the tasks or not at all); otherwise call it once the transaction commits."""

    def __call__(self, tasks: Sequence[QueuedTask]) -> object: ...

    def clauses(self, task: QueuedTask, *, using: str) -> list[Clause] | None:
        """What ``__call__`` writes for one new task (``task.task_id`` unused: it is
        ``new_task.id``), as clauses of a one-statement submission on database ``using``; None
        when it cannot be written that way."""


class Charge(NamedTuple):
    """One new task's price, charged to its owner."""

    user_id: int
    task_id: int
    amount: int
    note: str


class Billing(Protocol):
    """Charges and refunds; each runs inside the transition's transaction."""

    def charge(self, *, user_id: int, amount: int, task_id: int, note: str) -> object:
        """Take ``amount`` for ``task_id`` or raise ``InsufficientQuota`` (rolls back)."""

    def charge_many(self, charges: Sequence[Charge]) -> object:
        """``charge`` for many new tasks at once, each refundable on its own; all or nothing."""

    def refund(self, task_id: int, *, now: datetime, note: str) -> object:
        """Refund the task's charge if it was charged and not refunded yet; exactly once."""

    def recharge(self, task_id: int, *, action: str, current_status: str) -> object:
        """Charge again a refunded task that runs again (retry); raise ``InsufficientQuota``."""

    def clauses(self, charge: Charge, *, using: str) -> list[Clause] | None:
        """``charge_many([charge])`` for a new task (``charge.task_id`` unused: it is
        ``new_task.id``) as clauses of a one-statement submission on database ``using``: a gate
        that takes the amount if the balance covers it, and the ledger's record. None when it
        cannot be written that way; an empty list when there is nothing to charge."""


class FreeOfCharge:
    """The billing when no app provides one: every task is free."""

    def charge(self, *, user_id: int, amount: int, task_id: int, note: str) -> None:
        return None

    def charge_many(self, charges: Sequence[Charge]) -> None:
        return None

    def refund(self, task_id: int, *, now: datetime, note: str) -> None:
        return None

    def recharge(self, task_id: int, *, action: str, current_status: str) -> None:
        return None

    def clauses(self, charge: Charge, *, using: str) -> list[Clause]:
        return []


class OneByOne:
    """The bulk dispatcher when none is installed: the dispatcher, task by task, after commit."""

    def in_transaction(self) -> bool:
        return False

    def __call__(self, tasks: Sequence[QueuedTask]) -> None:
        for task in tasks:
            dispatcher()(task.task_id, priority=task.priority, run_after=task.run_after)

    def clauses(self, task: QueuedTask, *, using: str) -> None:
        return None  # after the commit, never in it


_dispatcher: Dispatcher | None = None
_bulk_dispatcher: BulkDispatcher = OneByOne()
_billing: Billing = FreeOfCharge()


def install_dispatcher(dispatcher: Dispatcher) -> None:
    global _dispatcher
    _dispatcher = dispatcher


def install_bulk_dispatcher(dispatcher: BulkDispatcher) -> None:
    global _bulk_dispatcher
    _bulk_dispatcher = dispatcher


def install_billing(billing: Billing) -> None:
    global _billing
    _billing = billing


def dispatcher() -> Dispatcher:
    if _dispatcher is None:  # only before Django's app registry is ready
        raise RuntimeError("No dispatcher installed: is 'taskcenter' in INSTALLED_APPS?")
    return _dispatcher


def bulk_dispatcher() -> BulkDispatcher:
    return _bulk_dispatcher


def billing() -> Billing:
    return _billing
