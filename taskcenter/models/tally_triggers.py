"""Running totals behind the statistics endpoint, kept by database triggers.

Counting a million tasks by status, type and platform, and ranking their durations, takes
seconds; reading a few thousand pre-summed rows takes milliseconds. The sums live in
``TaskTally`` and ``DurationTally`` and are kept by triggers rather than by ``lifecycle``: a
trigger runs in the transaction of every write to the task and execution tables, whatever makes
it (lifecycle, the admin, ``prune_tasks``, a bulk import, a cascade), so the totals are exactly
the tables' contents at every commit.

SQLite gets row triggers. PostgreSQL gets statement triggers over transition tables, which
write each key once per statement in key order: two transactions moving tasks between the same
statuses queue on a tally row instead of deadlocking on two rows taken in opposite orders.

Durations go into log-scale bins, four per doubling from 1 ms; a bin's value is its geometric
middle, so percentiles read from the histogram are within 9% of the exact ones.
"""

from __future__ import annotations

import math

from django.db import connection, transaction

TASKS = "taskcenter_task"
EXECUTIONS = "taskcenter_taskexecution"
TASK_TALLY = "taskcenter_tasktally"
DURATION_TALLY = "taskcenter_durationtally"
TASK_KEY = "owner_id, status, task_type, platform"
DURATION_KEY = "owner_id, task_type, platform, bin"

BIN_BASE = 0.001  # seconds: the upper edge of bin 0
BINS_PER_DOUBLING = 4
BIN_COUNT = 120  # the last bin holds everything from ~12 days up


def bin_edge(index: int) -> float:
    """Lower edge of bin ``index`` (bin 0 also holds everything shorter than 1 ms)."""
    return BIN_BASE * 2 ** ((index - 1) / BINS_PER_DOUBLING) if index else 0.0


def duration_bin(seconds: float) -> int:
    """The bin of a duration, as the triggers compute it."""
    if seconds < BIN_BASE:
        return 0
    return min(BIN_COUNT - 1, int(math.log2(seconds / BIN_BASE) * BINS_PER_DOUBLING) + 1)


def bin_value(index: int) -> float:
    """The duration a bin stands for: the geometric middle of its edges."""
    if index == 0:
        return BIN_BASE / 2
    return BIN_BASE * 2 ** ((index - 0.5) / BINS_PER_DOUBLING)


def _bin_sql(column: str) -> str:
    # A CASE ladder: SQLite has no LOG2 unless compiled with math functions. Edges are exact
    # binary fractions of 1 ms, written with repr() so the SQL and ``duration_bin`` agree.
    ladder = " ".join(
        f"WHEN {column} < {bin_edge(index + 1)!r} THEN {index}" for index in range(BIN_COUNT - 1)
    )
    return f"(CASE {ladder} ELSE {BIN_COUNT - 1} END)"


def _counted(alias: str) -> str:
    return f"{alias}.status = 'COMPLETED' AND {alias}.duration IS NOT NULL"


# --- SQLite: row triggers ----------------------------------------------------------------------


def _sqlite_task_upsert(row: str, delta: int) -> str:
    return (
        f"INSERT INTO {TASK_TALLY} ({TASK_KEY}, n) "
        f"VALUES ({row}.owner_id, {row}.status, {row}.task_type, {row}.platform, {delta}) "
        f"ON CONFLICT ({TASK_KEY}) DO UPDATE SET n = n + {delta};"
    )


def _sqlite_duration_upsert(row: str, delta: int) -> str:
    return (
        f"INSERT INTO {DURATION_TALLY} ({DURATION_KEY}, n) "
        f"SELECT t.owner_id, t.task_type, t.platform, {_bin_sql(row + '.duration')}, {delta} "
        f"FROM {TASKS} t WHERE t.id = {row}.task_id AND {_counted(row)} "
        f"ON CONFLICT ({DURATION_KEY}) DO UPDATE SET n = n + {delta};"
    )


def sqlite_statements() -> list[str]:
    key_changed = " OR ".join(
        f"OLD.{column} IS NOT NEW.{column}" for column in TASK_KEY.split(", ")
    )
    return [
        f"CREATE TRIGGER tally_task_insert AFTER INSERT ON {TASKS} "
        f"BEGIN {_sqlite_task_upsert('NEW', 1)} END",
        f"CREATE TRIGGER tally_task_update AFTER UPDATE OF {TASK_KEY} ON {TASKS} "
        f"WHEN {key_changed} "
        f"BEGIN {_sqlite_task_upsert('OLD', -1)} {_sqlite_task_upsert('NEW', 1)} END",
        f"CREATE TRIGGER tally_task_delete AFTER DELETE ON {TASKS} "
        f"BEGIN {_sqlite_task_upsert('OLD', -1)} END",
        f"CREATE TRIGGER tally_execution_insert AFTER INSERT ON {EXECUTIONS} "
        f"WHEN {_counted('NEW')} BEGIN {_sqlite_duration_upsert('NEW', 1)} END",
        f"CREATE TRIGGER tally_execution_update AFTER UPDATE OF status, duration ON {EXECUTIONS} "
        f"WHEN OLD.status IS NOT NEW.status OR OLD.duration IS NOT NEW.duration "
        f"BEGIN {_sqlite_duration_upsert('OLD', -1)} {_sqlite_duration_upsert('NEW', 1)} END",
        f"CREATE TRIGGER tally_execution_delete AFTER DELETE ON {EXECUTIONS} "
        f"WHEN {_counted('OLD')} BEGIN {_sqlite_duration_upsert('OLD', -1)} END",
    ]


SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS tally_{table}_{event}"
    for table in ("task", "execution")
    for event in ("insert", "update", "delete")
]


# --- PostgreSQL: statement triggers over transition tables -------------------------------------


def _pg_task_rows(table: str, sign: int) -> str:
    return f"SELECT {TASK_KEY}, {sign} AS d FROM {table}"


def _pg_duration_rows(table: str, sign: int) -> str:
    return (
        f"SELECT t.owner_id, t.task_type, t.platform, {_bin_sql('e.duration')} AS bin, "
        f"{sign} AS d FROM {table} e JOIN {TASKS} t ON t.id = e.task_id WHERE {_counted('e')}"
    )


def _pg_apply(tally: str, key: str, rows: str) -> str:
    return (
        f"INSERT INTO {tally} AS tally ({key}, n) "
        f"SELECT {key}, SUM(d) FROM ({rows}) changes GROUP BY {key} HAVING SUM(d) <> 0 "
        f"ORDER BY {key} "
        f"ON CONFLICT ({key}) DO UPDATE SET n = tally.n + EXCLUDED.n;"
    )


def _pg_function(name: str, tally: str, key: str, rows) -> str:
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_pg_apply(tally, key, rows("new_rows", 1))}
    ELSIF TG_OP = 'UPDATE' THEN
        {_pg_apply(tally, key, rows("new_rows", 1) + " UNION ALL " + rows("old_rows", -1))}
    ELSE
        {_pg_apply(tally, key, rows("old_rows", -1))}
    END IF;
    RETURN NULL;
END $$"""


def postgresql_statements() -> list[str]:
    statements = [
        _pg_function("tally_task_rows", TASK_TALLY, TASK_KEY, _pg_task_rows),
        _pg_function("tally_execution_rows", DURATION_TALLY, DURATION_KEY, _pg_duration_rows),
    ]
    for table, short, function in (
        (TASKS, "task", "tally_task_rows"),
        (EXECUTIONS, "execution", "tally_execution_rows"),
    ):
        for event, referencing in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        ):
            statements.append(
                f"CREATE TRIGGER tally_{short}_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    return statements


POSTGRESQL_DROP = [
    f"DROP TRIGGER IF EXISTS tally_{short}_{event} ON {table}"
    for table, short in ((TASKS, "task"), (EXECUTIONS, "execution"))
    for event in ("insert", "update", "delete")
] + [
    "DROP FUNCTION IF EXISTS tally_task_rows()",
    "DROP FUNCTION IF EXISTS tally_execution_rows()",
]


def install_statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return postgresql_statements()
    if vendor == "sqlite":
        return sqlite_statements()
    raise NotImplementedError(f"No tally triggers for {vendor}")


def drop_statements(vendor: str) -> list[str]:
    return POSTGRESQL_DROP if vendor == "postgresql" else SQLITE_DROP


def rebuild_statements() -> list[str]:
    """Recount both tallies from the tables (after a restore, or to check them)."""
    return [
        f"DELETE FROM {TASK_TALLY}",
        f"INSERT INTO {TASK_TALLY} ({TASK_KEY}, n) "
        f"SELECT {TASK_KEY}, COUNT(*) FROM {TASKS} GROUP BY {TASK_KEY}",
        f"DELETE FROM {DURATION_TALLY}",
        f"INSERT INTO {DURATION_TALLY} ({DURATION_KEY}, n) "
        f"SELECT owner_id, task_type, platform, bin, COUNT(*) FROM ("
        f"SELECT t.owner_id, t.task_type, t.platform, {_bin_sql('e.duration')} AS bin "
        f"FROM {EXECUTIONS} e JOIN {TASKS} t ON t.id = e.task_id WHERE {_counted('e')}"
        f") binned GROUP BY {DURATION_KEY}",
    ]


def rebuild_tallies() -> None:
    """Recount the tallies in one transaction (the triggers keep them from then on)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in rebuild_statements():
            cursor.execute(statement)
