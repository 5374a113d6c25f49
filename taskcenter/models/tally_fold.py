"""Folding the statistics tallies' shards back into one row per key.

On PostgreSQL every writing transaction adds its deltas to a shard of its own
(``tally_triggers.tally_shard()``), so a busy key gathers a row per shard, and keys whose tasks
have all moved on (nothing RUNNING for that owner any more) keep rows that sum to zero. Readers
sum whatever is there, so this only keeps the rows they read near one per live key; the counts
are exact with or without it.

A fold works one shard and one small batch per transaction, and stays exact while workers write:

- It takes the shard's advisory lock with ``pg_try_advisory_xact_lock``, the lock a writer holds
  while it adds to that shard. Got: no open transaction has written the shard or can until this
  one commits (a writer that wants it takes the next free shard instead, so it never waits for
  the fold). Not got: a writer is using it; the shard is left for the next pass.
- It deletes up to ``batch`` rows of that shard with ``DELETE ... RETURNING`` and adds their
  sums to shard 0 in the same statement. Triggers only ever add to a shard, and the delete and
  the additions commit together, so every key's sum over its shards is the same before and
  after, at every commit. Shard 0 is written by folds alone on PostgreSQL, and a fold holds
  its lock (``try`` again: a second fold at the same moment simply skips its pass).
- Rows of shard 0 that reached zero are deleted in batches under the same lock.

On SQLite the triggers write shard 0 directly (one writer at a time), so a fold there only
deletes zero rows; the single write lock makes each batch exact. The reaper runs a bounded fold
on every pass; ``manage.py rebuild_tallies --fold`` runs one to the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction

from taskcenter.models.tally_triggers import (
    ADVISORY_LOCK,
    DURATION_KEY,
    DURATION_TALLY,
    TASK_KEY,
    TASK_TALLY,
)

TABLES = ((TASK_TALLY, TASK_KEY), (DURATION_TALLY, DURATION_KEY))
BATCH = 500


@dataclass
class FoldReport:
    moved: int = 0  # shard rows folded into shard 0
    deleted: int = 0  # rows of shard 0 deleted because they held zero
    busy: int = 0  # shards left for later: a writer held them, or another fold ran
    batches: int = 0

    @property
    def done(self) -> int:
        return self.moved + self.deleted


def _try_lock(cursor, shard: int) -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite: the transaction's write lock excludes every other writer
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [ADVISORY_LOCK, shard])
    return bool(cursor.fetchone()[0])


def _move_postgresql(cursor, table: str, key: str, shard: int, batch: int) -> int:
    cursor.execute(
        f"WITH moved AS ("
        f"  DELETE FROM {table} WHERE id IN ("
        f"    SELECT id FROM {table} WHERE shard = %s ORDER BY id LIMIT %s"
        f"  ) RETURNING {key}, n"
        f"), folded AS ("
        f"  INSERT INTO {table} AS tally ({key}, shard, n) "
        f"  SELECT {key}, 0, SUM(n) FROM moved GROUP BY {key} HAVING SUM(n) <> 0 "
        f"  ORDER BY {key} "
        f"  ON CONFLICT ({key}, shard) DO UPDATE SET n = tally.n + EXCLUDED.n RETURNING 1"
        f") SELECT (SELECT COUNT(*) FROM moved), (SELECT COUNT(*) FROM folded)",
        [shard, batch],
    )
    return cursor.fetchone()[0]


def _move_sqlite(cursor, table: str, key: str, shard: int, batch: int) -> int:
    # No data-modifying CTEs in SQLite; the write lock keeps the batch the same between the two.
    picked = f"SELECT id FROM {table} WHERE shard = %s ORDER BY id LIMIT %s"
    cursor.execute(
        f"INSERT INTO {table} AS tally ({key}, shard, n) "
        f"SELECT {key}, 0, SUM(n) FROM {table} WHERE id IN ({picked}) "
        f"GROUP BY {key} HAVING SUM(n) <> 0 "
        f"ON CONFLICT ({key}, shard) DO UPDATE SET n = tally.n + excluded.n",
        [shard, batch],
    )
    cursor.execute(f"DELETE FROM {table} WHERE id IN ({picked})", [shard, batch])
    return cursor.rowcount


def _delete_zeros(cursor, table: str, batch: int) -> int:
    cursor.execute(
        f"DELETE FROM {table} WHERE id IN ("
        f"SELECT id FROM {table} WHERE shard = 0 AND n = 0 ORDER BY id LIMIT %s)",
        [batch],
    )
    return cursor.rowcount


def _work(table: str) -> list[int]:
    """The shards with rows to fold, and 0 if shard 0 has rows that hold zero (a plain read)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT shard FROM {table} WHERE shard <> 0 OR n = 0 ORDER BY shard"
        )
        return [row[0] for row in cursor.fetchall()]


def _batch(report: FoldReport, table: str, key: str, shard: int, batch: int) -> int | None:
    """One short transaction; how many rows it handled, or None when a lock was busy."""
    move = _move_postgresql if connection.vendor == "postgresql" else _move_sqlite
    with transaction.atomic(), connection.cursor() as cursor:
        if not _try_lock(cursor, 0) or (shard and not _try_lock(cursor, shard)):
            report.busy += 1
            return None
        if shard:
            done = move(cursor, table, key, shard, batch)
            report.moved += done
        else:
            done = _delete_zeros(cursor, table, batch)
            report.deleted += done
    report.batches += 1
    return done


def fold_tallies(*, batch: int = BATCH, max_batches: int | None = None) -> FoldReport:
    """Fold shard rows into shard 0 and delete rows of zero, ``batch`` rows per transaction.

    Stops after ``max_batches`` transactions (the reaper's bound) or when nothing is left but
    shards that writers hold at the moment. Never waits for a lock.
    """
    report = FoldReport()
    for table, key in TABLES:
        shards = _work(table)
        if not shards:
            continue
        # Shard rows first: folding them can bring shard 0 rows to zero, deleted last.
        for shard in [shard for shard in shards if shard] + [0]:
            while max_batches is None or report.batches < max_batches:
                done = _batch(report, table, key, shard, batch)
                if done is None or done < batch:
                    break
            else:
                return report
    return report
