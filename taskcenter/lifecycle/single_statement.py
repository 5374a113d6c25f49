"""``create_task`` on PostgreSQL in one statement: the task, its event, its charge and its job.

The general submission (``submission._submit``) writes a task in five statements and two more
for its transaction (``BEGIN``, ``COMMIT``), each a round trip to the server: 4 ms of which
Python and the server's own work are a third. PostgreSQL runs the data-modifying clauses of a
``WITH`` as one statement, so outside a transaction as one transaction too; a single task is
written so, in one round trip:

    WITH quota_debit AS (UPDATE ... balance - price WHERE user ... AND balance >= price
                         RETURNING balance),                      -- a gate (billing)
         new_task AS (INSERT INTO task ... SELECT ... FROM quota_debit RETURNING id),
         created AS (INSERT INTO event ... SELECT new_task.id, ... FROM new_task),
         quota_charge AS (INSERT INTO ledger ... FROM new_task, quota_debit),   -- billing
         engine_job AS (INSERT INTO job ... FROM new_task RETURNING 1),          -- dispatcher
         wakeup AS (SELECT pg_notify(...) FROM engine_job)                      -- read
    SELECT new_task.id, (SELECT count(*) FROM wakeup) FROM new_task

The billing and the bulk dispatcher write their parts as ``hooks.Clause``\\ s, the same rows
their ``charge_many`` and ``__call__`` write. A gate that yields no row (a balance that does not
cover the price, or no account yet) leaves every clause with nothing to read, so the statement
writes nothing and returns no row; the caller then takes the general path, which opens the
account or raises ``InsufficientQuota`` as always. A hook that cannot write its part as a
clause (an engine outside the database) sends every task the general way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from django.conf import settings
from django.db import connections

from taskcenter.lifecycle import hooks
from taskcenter.lifecycle.submission_rows import (
    EVENT_ROWS,
    TASK_FIELDS,
    TASK_ROWS,
    Item,
    created_events,
    loaded_task,
    task_row,
)
from taskcenter.lifecycle.transitions import Actor
from taskcenter.models import Task

NEW_TASK = "new_task"
# The value a clause reads as the new task's id.
_NEW_TASK_ID = f"{NEW_TASK}.id"


def submit(item: Item, actor: Actor, now: datetime, *, using: str) -> Task | None:
    """Write ``item`` in one statement on PostgreSQL: its ``Task``, or None when nothing was
    written (a gate refused it, or a hook cannot write its part in one statement)."""
    connection = connections[using]
    row = task_row(item)
    clauses = _hook_clauses(item, row, using)
    if clauses is None:
        return None
    gates = [clause for clause in clauses if clause.gate]
    task_sql, task_params = TASK_ROWS.from_source(
        row, source=", ".join(clause.name for clause in gates), computed={}, using=using
    )
    returning, _ = cast(Any, connection.ops).return_insert_columns([Task._meta.pk])
    event_sql, event_params = EVENT_ROWS.from_source(
        created_events([item], actor, now)[0][1:],
        source=NEW_TASK,
        computed={"task": _NEW_TASK_ID},
        using=using,
    )
    parts = [
        *gates,
        hooks.Clause(NEW_TASK, f"{task_sql} {returning}", task_params),
        hooks.Clause("created", event_sql, event_params),
        *(clause for clause in clauses if not clause.gate),
    ]
    if not connection.in_atomic_block and settings.TASKCENTER["ASYNC_SUBMIT"]:
        # This statement is its own transaction: skip the wait for its WAL to reach the disk,
        # as ``submission`` does (see its note on durability).
        parts.append(_ASYNC_COMMIT)
    sql, params = _statement(parts)
    from taskcenter.lib.postgres_cursors import numbered, raw_cursor  # psycopg: PostgreSQL only

    # Values apart from the text, and the statement prepared once per connection: 2.6 ms for
    # this statement with Django's cursor (values quoted into the text, parsed and planned at
    # each call), 1.7 ms with the values apart, 1.2 ms prepared (1,500 calls of each, p50).
    with raw_cursor(connection) as cursor:
        cursor.execute(numbered(sql), params)
        written = cursor.fetchone()
    if written is None:
        return None
    item.task = loaded_task(written[0], row, item.owner, using)
    return item.task


def _hook_clauses(item: Item, row: tuple, using: str) -> list[hooks.Clause] | None:
    charge = hooks.Charge(item.owner.pk, 0, item.price, item.kind.name)
    charged = _clauses(hooks.billing(), charge, using) if item.price else []
    if charged is None or not item.start:
        return charged
    queued = hooks.QueuedTask(0, row[_PRIORITY], row[_RUN_AFTER])
    dispatched = _clauses(hooks.bulk_dispatcher(), queued, using)
    return None if dispatched is None else [*charged, *dispatched]


def _clauses(hook: object, what: object, using: str) -> list[hooks.Clause] | None:
    # A billing or dispatcher installed by another app may predate ``clauses``: then every
    # task it handles goes the general way.
    clauses = getattr(hook, "clauses", None)
    return None if clauses is None else clauses(what, using=using)


_COLUMNS = [field.name for field in TASK_FIELDS]
_PRIORITY, _RUN_AFTER = _COLUMNS.index("priority"), _COLUMNS.index("run_after")


_ASYNC_COMMIT = hooks.Clause(
    "async_commit", "SELECT set_config('synchronous_commit', 'off', true)", (), read=True
)


def _statement(parts: list[hooks.Clause]) -> tuple[str, list[Any]]:
    names = [part.name for part in parts]
    if len(set(names)) != len(names):
        raise ValueError(f"Two clauses share a name: {names}")
    # Only the clauses' own SQL and names go into the text; every value is a parameter.
    reads = [f"(SELECT count(*) FROM {part.name})" for part in parts if part.read]  # noqa: S608
    clauses = ", ".join(f"{part.name} AS ({part.sql})" for part in parts)
    selected = ", ".join([_NEW_TASK_ID, *reads])
    sql = f"WITH {clauses} SELECT {selected} FROM {NEW_TASK}"  # noqa: S608
    return sql, [value for part in parts for value in part.params]
