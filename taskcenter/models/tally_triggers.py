"""Running totals behind the statistics endpoint, kept by database triggers.

Counting a million tasks by status, type and platform, and ranking their durations, takes
seconds; reading a few thousand pre-summed rows takes milliseconds. The sums live in
``TaskTally`` and ``DurationTally`` and are kept by triggers rather than by ``lifecycle``: a
trigger runs in the transaction of every write to the task and execution tables, whatever makes
it (lifecycle, the admin, ``prune_tasks``, a bulk import, a cascade), so the totals are exactly
the tables' contents at every commit.

SQLite gets row triggers. PostgreSQL gets statement triggers over transition tables, which
write each key once per statement in key order.

Every key is split over shards so that concurrent writers never wait on each other. With one
row per key, every worker completing a task upserts the same few rows (same owner, status, kind
and platform), and on PostgreSQL four workers queued on those row locks inside ``UPDATE
taskcenter_task SET status=...`` at a third of the throughput they reached with the triggers
dropped. Now shard 0 holds a key's folded total and shards 1..``SHARDS`` hold deltas (which may
be negative); a key's count is the sum over its shards, and readers sum anyway (the statistics
group by status, kind and platform across owners).

- On PostgreSQL a transaction writes one shard, held by a transaction-level advisory lock
  (``tally_shard()``): it tries its connection's own shard (backend pid modulo ``SHARDS``, so a
  connection keeps updating the same rows), then the next ones, with ``pg_try_advisory_xact_lock``,
  and keeps the one it got for the rest of the transaction. Two open transactions therefore
  never write the same tally row and never wait on each other, however their pids fall; only
  when ``SHARDS`` transactions are writing at once does the next one queue for its own shard.
  A per-connection shard (``pg_backend_pid() % SHARDS`` alone) would still put two of four
  workers on the same rows one time in three (a birthday collision), and a per-transaction one
  (the transaction id) would spread every key over all shards at once.
- SQLite has one writer at a time, so its triggers write shard 0 directly.
- ``taskcenter.models.tally_fold`` moves shard rows into shard 0 and deletes rows that sum to
  nothing (the reaper runs it), so the rows a reader sums stay about one per key. It locks the
  shard it folds the same way, so a writer never waits for it either: it takes another shard.
- A rebuild (``rebuild_tallies``) takes every shard's lock in order first, which makes the
  recount exact even while workers run: a transaction that has not yet written its deltas waits,
  and its change is not in the recount either.

Durations go into log-scale bins, four per doubling from 1 ms; a bin's value is its geometric
middle, so percentiles read from the histogram are within 9% of the exact ones.
"""

from __future__ import annotations

import math
from functools import partial

from django.db import connection, transaction

TASKS = "taskcenter_task"
EXECUTIONS = "taskcenter_taskexecution"
TASK_TALLY = "taskcenter_tasktally"
DURATION_TALLY = "taskcenter_durationtally"
TASK_KEY = "owner_id, status, task_type, platform"
DURATION_KEY = "owner_id, task_type, platform, bin"

# Writers' shards on PostgreSQL are 1..SHARDS; shard 0 is the folded total (and SQLite's only).
SHARDS = 16
# The first key of the tally shards' advisory locks (the second is the shard): "tall" in ASCII.
ADVISORY_LOCK = 0x74616C6C

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


def _columns(key: str, sharded: bool) -> str:
    return f"{key}, shard" if sharded else key


def _sqlite_task_upsert(row: str, delta: int, sharded: bool) -> str:
    shard = ", 0" if sharded else ""
    return (
        f"INSERT INTO {TASK_TALLY} ({_columns(TASK_KEY, sharded)}, n) "
        f"VALUES ({row}.owner_id, {row}.status, {row}.task_type, {row}.platform{shard}, "
        f"{delta}) ON CONFLICT ({_columns(TASK_KEY, sharded)}) DO UPDATE SET n = n + {delta};"
    )


def _sqlite_duration_upsert(row: str, delta: int, sharded: bool) -> str:
    shard = ", 0" if sharded else ""
    return (
        f"INSERT INTO {DURATION_TALLY} ({_columns(DURATION_KEY, sharded)}, n) "
        f"SELECT t.owner_id, t.task_type, t.platform, {_bin_sql(row + '.duration')}{shard}, "
        f"{delta} FROM {TASKS} t WHERE t.id = {row}.task_id AND {_counted(row)} "
        f"ON CONFLICT ({_columns(DURATION_KEY, sharded)}) DO UPDATE SET n = n + {delta};"
    )


def sqlite_statements(*, sharded: bool = True) -> list[str]:
    """The SQLite triggers; ``sharded=False`` gives them as they were before the shard column
    (for the migrations that ran before it)."""
    task = partial(_sqlite_task_upsert, sharded=sharded)
    duration = partial(_sqlite_duration_upsert, sharded=sharded)
    key_changed = " OR ".join(
        f"OLD.{column} IS NOT NEW.{column}" for column in TASK_KEY.split(", ")
    )
    return [
        f"CREATE TRIGGER tally_task_insert AFTER INSERT ON {TASKS} BEGIN {task('NEW', 1)} END",
        f"CREATE TRIGGER tally_task_update AFTER UPDATE OF {TASK_KEY} ON {TASKS} "
        f"WHEN {key_changed} "
        f"BEGIN {task('OLD', -1)} {task('NEW', 1)} END",
        f"CREATE TRIGGER tally_task_delete AFTER DELETE ON {TASKS} BEGIN {task('OLD', -1)} END",
        f"CREATE TRIGGER tally_execution_insert AFTER INSERT ON {EXECUTIONS} "
        f"WHEN {_counted('NEW')} BEGIN {duration('NEW', 1)} END",
        f"CREATE TRIGGER tally_execution_update AFTER UPDATE OF status, duration ON {EXECUTIONS} "
        f"WHEN OLD.status IS NOT NEW.status OR OLD.duration IS NOT NEW.duration "
        f"BEGIN {duration('OLD', -1)} {duration('NEW', 1)} END",
        f"CREATE TRIGGER tally_execution_delete AFTER DELETE ON {EXECUTIONS} "
        f"WHEN {_counted('OLD')} BEGIN {duration('OLD', -1)} END",
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


def _pg_apply(tally: str, key: str, rows: str, sharded: bool) -> str:
    # tally_shard() sits in the select list of the grouped query, so it runs only when the
    # statement changed a count: heartbeats and progress writes take no shard lock.
    shard = ", tally_shard()" if sharded else ""
    return (
        f"INSERT INTO {tally} AS tally ({_columns(key, sharded)}, n) "
        f"SELECT {key}{shard}, SUM(d) FROM ({rows}) changes GROUP BY {key} "
        f"HAVING SUM(d) <> 0 ORDER BY {key} "
        f"ON CONFLICT ({_columns(key, sharded)}) DO UPDATE SET n = tally.n + EXCLUDED.n;"
    )


def _pg_function(name: str, tally: str, key: str, rows, sharded: bool) -> str:
    both = rows("new_rows", 1) + " UNION ALL " + rows("old_rows", -1)
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_pg_apply(tally, key, rows("new_rows", 1), sharded)}
    ELSIF TG_OP = 'UPDATE' THEN
        {_pg_apply(tally, key, both, sharded)}
    ELSE
        {_pg_apply(tally, key, rows("old_rows", -1), sharded)}
    END IF;
    RETURN NULL;
END $$"""


# The shard this transaction writes: the one it already holds, else the first free one from
# its connection's own, else (all SHARDS busy) it queues for its own. The choice is kept in a
# transaction-local setting, which a rolled-back savepoint undoes together with its lock.
PG_SHARD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION tally_shard() RETURNS smallint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    held text := current_setting('taskcenter.tally_shard', true);
    home integer := pg_backend_pid() % {SHARDS};
    candidate integer;
BEGIN
    IF held IS NOT NULL AND held <> '' THEN
        RETURN held::smallint;
    END IF;
    FOR step IN 0 .. {SHARDS - 1} LOOP
        candidate := 1 + (home + step) % {SHARDS};
        IF pg_try_advisory_xact_lock({ADVISORY_LOCK}, candidate) THEN
            PERFORM set_config('taskcenter.tally_shard', candidate::text, true);
            RETURN candidate;
        END IF;
    END LOOP;
    candidate := 1 + home;
    PERFORM pg_advisory_xact_lock({ADVISORY_LOCK}, candidate);
    PERFORM set_config('taskcenter.tally_shard', candidate::text, true);
    RETURN candidate;
END $$"""


def postgresql_statements(*, sharded: bool = True) -> list[str]:
    """The PostgreSQL trigger functions and triggers (``sharded=False``: before the shard
    column, for the migrations that ran before it)."""
    statements = [PG_SHARD_FUNCTION] if sharded else []
    statements += [
        _pg_function("tally_task_rows", TASK_TALLY, TASK_KEY, _pg_task_rows, sharded),
        _pg_function(
            "tally_execution_rows", DURATION_TALLY, DURATION_KEY, _pg_duration_rows, sharded
        ),
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
    "DROP FUNCTION IF EXISTS tally_shard()",
]


def install_statements(vendor: str, *, sharded: bool = True) -> list[str]:
    if vendor == "postgresql":
        return postgresql_statements(sharded=sharded)
    if vendor == "sqlite":
        return sqlite_statements(sharded=sharded)
    raise NotImplementedError(f"No tally triggers for {vendor}")


def drop_statements(vendor: str) -> list[str]:
    return POSTGRESQL_DROP if vendor == "postgresql" else SQLITE_DROP


def rebuild_statements(*, sharded: bool = True) -> list[str]:
    """Recount both tallies from the tables into shard 0 (after a restore, or to check them)."""
    shard = ", 0" if sharded else ""
    return [
        f"DELETE FROM {TASK_TALLY}",
        f"INSERT INTO {TASK_TALLY} ({_columns(TASK_KEY, sharded)}, n) "
        f"SELECT {TASK_KEY}{shard}, COUNT(*) FROM {TASKS} GROUP BY {TASK_KEY}",
        f"DELETE FROM {DURATION_TALLY}",
        f"INSERT INTO {DURATION_TALLY} ({_columns(DURATION_KEY, sharded)}, n) "
        f"SELECT owner_id, task_type, platform, bin{shard}, COUNT(*) FROM ("
        f"SELECT t.owner_id, t.task_type, t.platform, {_bin_sql('e.duration')} AS bin "
        f"FROM {EXECUTIONS} e JOIN {TASKS} t ON t.id = e.task_id WHERE {_counted('e')}"
        f") binned GROUP BY {DURATION_KEY}",
    ]


def lock_all_shards() -> None:
    """Wait for every tally shard (PostgreSQL; SQLite's write lock already excludes writers).

    Inside a transaction, from then until its end no other transaction changes a tally: writers
    that have not written theirs yet queue for a shard, so their changes are in neither the
    tallies nor the task rows this transaction reads. Taken in shard order, so two callers
    cannot deadlock on them; a writer holds at most one.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK}, shard) "
            f"FROM generate_series(0, {SHARDS}) AS shard ORDER BY shard"
        )


def rebuild_tallies() -> None:
    """Recount the tallies in one transaction (the triggers keep them from then on).

    Exact while workers run: writers wait for the recount (``lock_all_shards``).
    """
    with transaction.atomic():
        lock_all_shards()
        with connection.cursor() as cursor:
            for statement in rebuild_statements():
                cursor.execute(statement)
