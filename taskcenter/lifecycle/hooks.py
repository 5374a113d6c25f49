"""The ports through which the lifecycle reaches what is built around it.

The lifecycle sits below the engine and below the apps, so it cannot import them. Two things it
must still set in motion, in the same transaction as a transition, are given to it here when
Django starts:

- the **dispatcher** hands a QUEUED task to the engine once the transaction commits
  (``taskcenter.execution.dispatch.enqueue_attempt``, installed by ``TaskCenterConfig.ready``);
- the **billing** charges a task's price to its owner when it is created or retried and refunds
  it when it fails or is cancelled (the ``quota`` app installs its ledger; without it tasks are
  free).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Dispatcher(Protocol):
    def __call__(self, task_id: int, *, priority: int, run_after: datetime | None) -> object: ...


class Billing(Protocol):
    """Charges and refunds; each runs inside the transition's transaction."""

    def charge(self, *, user_id: int, amount: int, task_id: int, note: str) -> object:
        """Take ``amount`` for ``task_id`` or raise ``InsufficientQuota`` (rolls back)."""

    def refund(self, task_id: int, *, now: datetime, note: str) -> object:
        """Refund the task's charge if it was charged and not refunded yet; exactly once."""

    def recharge(self, task_id: int, *, action: str, current_status: str) -> object:
        """Charge again a refunded task that runs again (retry); raise ``InsufficientQuota``."""


class FreeOfCharge:
    """The billing when no app provides one: every task is free."""

    def charge(self, *, user_id: int, amount: int, task_id: int, note: str) -> None:
        return None

    def refund(self, task_id: int, *, now: datetime, note: str) -> None:
        return None

    def recharge(self, task_id: int, *, action: str, current_status: str) -> None:
        return None


_dispatcher: Dispatcher | None = None
_billing: Billing = FreeOfCharge()


def install_dispatcher(dispatcher: Dispatcher) -> None:
    global _dispatcher
    _dispatcher = dispatcher


def install_billing(billing: Billing) -> None:
    global _billing
    _billing = billing


def dispatcher() -> Dispatcher:
    if _dispatcher is None:  # only before Django's app registry is ready
        raise RuntimeError("No dispatcher installed: is 'taskcenter' in INSTALLED_APPS?")
    return _dispatcher


def billing() -> Billing:
    return _billing
