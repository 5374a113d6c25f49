"""Quota: charge a task when it is created, refund it exactly once when it ends badly.

Every function here runs inside the caller's transaction (the lifecycle's), so a charge is
committed with the task it pays for and a refund with the status change that causes it. Each
balance change is one guarded UPDATE whose row count decides, followed by one ledger row:

* charge: ``UPDATE account SET balance = balance - N WHERE user = ? AND balance >= N``; no row
  means the balance is short and ``InsufficientQuota`` rolls the whole transaction back;
* refund: ``UPDATE task SET quota_refunded_at = now WHERE pk = ? AND quota > 0 AND
  quota_refunded_at IS NULL``; only the transaction that flips it credits the balance, so a
  cancel racing a final failure (or the reaper) refunds once. The refund row also points at the
  charge it returns through a one-to-one column: the database refuses a second one.

Retrying a FAILED or CANCELLED task charges again (it is a new run on the platform); see
``recharge_task``. A STOPPED task keeps its charge and is not charged again when resumed.

Many new tasks (``charge_many``, a bulk submission) take one guarded UPDATE per owner for the sum
of that owner's tasks, and still write one charge row per task, all in one INSERT: a refund
gives back one task's charge and names that row, so a single row for the whole batch could not
be refunded task by task exactly once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone

from taskcenter.errors import InsufficientQuota
from taskcenter.lib.bulk_insert import RowInserter
from taskcenter.lifecycle.hooks import Charge, Clause
from taskcenter.models import Task

from .models import LedgerKind, QuotaBalance, QuotaLedgerEntry

_CHARGE_ROWS = RowInserter(
    QuotaLedgerEntry,
    ("user", "task", "kind", "amount", "balance_after", "at", "note"),
    returning=False,
)


def default_balance() -> int:
    """The opening balance of a user's account (``TASKCENTER_QUOTA_DEFAULT_BALANCE``)."""
    return int(settings.TASKCENTER.get("QUOTA_DEFAULT_BALANCE", 0))


def ensure_balance(user_id: int) -> QuotaBalance:
    """The user's account, created with the opening balance (and its ledger row) if missing."""
    account = QuotaBalance.objects.filter(user_id=user_id).first()
    if account is not None:
        return account
    opening = max(default_balance(), 0)
    with transaction.atomic():
        account, created = QuotaBalance.objects.get_or_create(
            user_id=user_id, defaults={"balance": opening}
        )
        if created and opening:
            QuotaLedgerEntry.objects.create(
                user_id=user_id,
                kind=LedgerKind.GRANT,
                amount=opening,
                balance_after=opening,
                note="opening balance",
            )
    return account


def balance_of(user_id: int) -> int:
    """The user's current balance (creating the account with its opening balance)."""
    return ensure_balance(user_id).balance


def _balance_now(user_id: int) -> int:
    # Read after our own UPDATE of the row: we hold its lock (PostgreSQL) or the database write
    # lock (SQLite) until commit, so this is exactly the balance our change produced.
    return QuotaBalance.objects.filter(user_id=user_id).values_list("balance", flat=True).get()


def _debit(user_id: int, amount: int, now: datetime) -> int | None:
    """Take ``amount`` if the balance covers it: the balance after, or None when it does not.

    One ``UPDATE ... RETURNING`` where the database has it (PostgreSQL, SQLite 3.35+: the same
    versions that return ids from an INSERT), else the ORM's UPDATE and a read.
    """
    connection = connections[router.db_for_write(QuotaBalance)]
    if not connection.features.can_return_columns_from_insert:
        paid = QuotaBalance.objects.filter(user_id=user_id, balance__gte=amount).update(
            balance=F("balance") - amount, updated_at=now
        )
        return _balance_now(user_id) if paid == 1 else None
    at = QuotaBalance._meta.get_field("updated_at").get_db_prep_save(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(_debit_sql(connection.alias), [amount, at, user_id, amount])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


@functools.cache
def _debit_sql(alias: str) -> str:
    qn = connections[alias].ops.quote_name
    balance, stamp = qn("balance"), qn("updated_at")
    # Only quoted model identifiers are formatted in; every value is a parameter.
    return (
        f"UPDATE {qn(QuotaBalance._meta.db_table)} SET {balance} = {balance} - %s, "  # noqa: S608
        f"{stamp} = %s WHERE {qn('user_id')} = %s AND {balance} >= %s RETURNING {balance}"
    )


def _take(
    user_id: int,
    amount: int,
    now: datetime,
    *,
    task_id: int,
    action: str = "create",
    current_status: str | None = None,
    tasks: int = 1,
) -> int:
    """``_debit``, opening the account first if it has none; ``InsufficientQuota`` if short."""
    after = _debit(user_id, amount, now)
    if after is None:
        # Short, or no account yet (opened on first use): open it, then try once more.
        ensure_balance(user_id)
        after = _debit(user_id, amount, now)
    if after is None:
        raise InsufficientQuota(
            needed=amount,
            balance=_balance_now(user_id),
            task_id=task_id,
            action=action,
            current_status=current_status,
            tasks=tasks,
        )
    return after


def charge(
    *,
    user_id: int,
    amount: int,
    task_id: int,
    note: str = "",
    action: str = "create",
    current_status: str | None = None,
) -> QuotaLedgerEntry:
    """Take ``amount`` from the user's balance for ``task_id``, or raise ``InsufficientQuota``.

    Must run inside ``transaction.atomic()``: the raise rolls back whatever the caller wrote.
    """
    now = timezone.now()
    after = _take(
        user_id, amount, now, task_id=task_id, action=action, current_status=current_status
    )
    return QuotaLedgerEntry.objects.create(
        user_id=user_id,
        task_id=task_id,
        kind=LedgerKind.CHARGE,
        amount=-amount,
        balance_after=after,
        at=now,
        note=note[:255],
    )


def charge_many(charges: Sequence[Charge]) -> None:
    """Charge many new tasks: one guarded UPDATE per owner for the sum of their prices, one
    charge row per task (``balance_after`` as if charged one after the other, in the order
    given), all rows in one INSERT. ``InsufficientQuota`` names the first owner, by id, whose
    balance cannot pay for all of their tasks; the caller's transaction then rolls back.

    Owners are debited in id order, so two batches charging the same owners never wait on
    each other's accounts crosswise. Must run inside ``transaction.atomic()``, after the tasks'
    own rows are written (the task rows first, then the accounts: the quota lock order).
    """
    by_owner: dict[int, list[Charge]] = {}
    for item in charges:
        if item.amount < 0:
            raise ValueError("quota cannot be negative")
        if item.amount:
            by_owner.setdefault(item.user_id, []).append(item)
    now = timezone.now()
    rows = []
    kind = LedgerKind.CHARGE.value
    for user_id in sorted(by_owner):
        owed = by_owner[user_id]
        total = sum(item.amount for item in owed)
        only = owed[0].task_id if len(owed) == 1 else 0
        running = _take(user_id, total, now, task_id=only, tasks=len(owed)) + total
        for item in owed:
            running -= item.amount
            rows.append((user_id, item.task_id, kind, -item.amount, running, now, item.note[:255]))
    _CHARGE_ROWS.insert(rows, using=router.db_for_write(QuotaLedgerEntry))


def charge_clauses(item: Charge, *, using: str) -> list[Clause] | None:
    """``charge_many([item])`` for a task written by the same statement (``new_task``): a gate
    that debits the balance if it covers the amount, and the charge's ledger row. None when the
    accounts live in another database than ``using``; no account yet gates the task out (the
    general path opens it)."""
    if item.amount < 0:
        raise ValueError("quota cannot be negative")
    if not item.amount:
        return []
    if router.db_for_write(QuotaBalance) != using or router.db_for_write(QuotaLedgerEntry) != using:
        return None
    connection = connections[using]
    now = timezone.now()
    at = QuotaBalance._meta.get_field("updated_at").get_db_prep_save(now, connection)
    debit_params = (item.amount, at, item.user_id, item.amount)
    debit = Clause(_DEBIT, _debit_sql(using), debit_params, gate=True)
    sql, params = _CHARGE_ROWS.from_source(
        (item.user_id, LedgerKind.CHARGE.value, -item.amount, now, item.note[:255]),
        source=f"new_task, {_DEBIT}",
        computed={"task": "new_task.id", "balance_after": f"{_DEBIT}.{_BALANCE}"},
        using=using,
    )
    return [debit, Clause("quota_charge", sql, params)]


_DEBIT, _BALANCE = "quota_debit", "balance"


def refund_task(task_id: int, *, now: datetime, note: str = "") -> QuotaLedgerEntry | None:
    """Give back the task's quota if it was charged and not refunded yet; else do nothing.

    Call it in the transaction that moves the task to FAILED or CANCELLED, after that UPDATE
    (the task row lock comes first, then the account's: the order every quota writer keeps).
    """
    flipped = Task.objects.filter(pk=task_id, quota__gt=0, quota_refunded_at__isnull=True).update(
        quota_refunded_at=now
    )
    if flipped != 1:
        return None
    owner_id, amount = Task.objects.filter(pk=task_id).values_list("owner_id", "quota").get()
    charged = (
        QuotaLedgerEntry.objects.filter(
            task_id=task_id, kind=LedgerKind.CHARGE, refunded_by__isnull=True
        )
        .order_by("-id")
        .first()
    )
    if charged is None:
        # Nothing was paid for this run (a task older than the ledger): nothing to give back.
        return None
    ensure_balance(owner_id)
    QuotaBalance.objects.filter(user_id=owner_id).update(
        balance=F("balance") + amount, updated_at=now
    )
    return QuotaLedgerEntry.objects.create(
        user_id=owner_id,
        task_id=task_id,
        kind=LedgerKind.REFUND,
        amount=amount,
        balance_after=_balance_now(owner_id),
        refund_of=charged,
        at=now,
        note=note[:255],
    )


def recharge_task(task_id: int, *, action: str, current_status: str) -> QuotaLedgerEntry | None:
    """Charge a refunded task again before it runs again (retry of FAILED or CANCELLED).

    Clearing ``quota_refunded_at`` is guarded like the refund, so the next bad ending of this
    run refunds this charge exactly once. Raises ``InsufficientQuota`` when the balance is short.
    """
    reopened = Task.objects.filter(pk=task_id, quota__gt=0, quota_refunded_at__isnull=False).update(
        quota_refunded_at=None
    )
    if reopened != 1:
        return None
    owner_id, amount = Task.objects.filter(pk=task_id).values_list("owner_id", "quota").get()
    return charge(
        user_id=owner_id,
        amount=amount,
        task_id=task_id,
        note=action,
        action=action,
        current_status=current_status,
    )


def grant(user_id: int, amount: int, *, note: str = "", actor: str = "") -> QuotaLedgerEntry:
    """Add ``amount`` (negative takes away, never below zero) and write a ``grant`` row.

    Raises ``ValueError`` when a negative grant would overdraw the balance.
    """
    now = timezone.now()
    text = " - ".join(part for part in (actor, note) if part)[:255]
    with transaction.atomic():
        ensure_balance(user_id)
        moved = QuotaBalance.objects.filter(user_id=user_id, balance__gte=-amount).update(
            balance=F("balance") + amount, updated_at=now
        )
        if moved != 1:
            raise ValueError(f"Cannot take {-amount}: the balance is only {_balance_now(user_id)}")
        return QuotaLedgerEntry.objects.create(
            user_id=user_id,
            kind=LedgerKind.GRANT,
            amount=amount,
            balance_after=_balance_now(user_id),
            at=now,
            note=text,
        )


class QuotaLedger:
    """The lifecycle's billing (``taskcenter.lifecycle.hooks.Billing``), installed at start-up."""

    def charge(self, *, user_id: int, amount: int, task_id: int, note: str) -> QuotaLedgerEntry:
        return charge(user_id=user_id, amount=amount, task_id=task_id, note=note)

    def charge_many(self, charges: Sequence[Charge]) -> None:
        charge_many(charges)

    def clauses(self, charge: Charge, *, using: str) -> list[Clause] | None:
        return charge_clauses(charge, using=using)

    def refund(self, task_id: int, *, now: datetime, note: str) -> QuotaLedgerEntry | None:
        return refund_task(task_id, now=now, note=note)

    def recharge(
        self, task_id: int, *, action: str, current_status: str
    ) -> QuotaLedgerEntry | None:
        return recharge_task(task_id, action=action, current_status=current_status)
