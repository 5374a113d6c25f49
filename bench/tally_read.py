"""Statistics read latency at a million tasks, on SQLite or PostgreSQL, tallies folded or not.

    .venv/bin/python bench/tally_read.py [--database-url postgres://...] [--size 1000000]
        [--before /path/to/older/checkout] [--rounds 3]

A fresh database (a SQLite file in a temp dir, or the PostgreSQL database named, dropped and
created again) is migrated and loaded with ``--size`` tasks by one ``INSERT ... SELECT``, so the
tally triggers count them as they would a bulk import, and recounted to one tally row per key;
every finished task gets an execution with a duration. The spread follows
``bench/api_latency.py``: 10 owners (the normal benchmark user ~10%, a staff user ~5%),
6 platforms of unequal weight, 8 kinds, ~70% COMPLETED and ~10% FAILED; durations over some 70
histogram bins.

``GET /api/v1/tasks/statistics`` (unfiltered, and ``status=FAILED&platform=<p>``) is then timed
in-process with DRF's test client (no HTTP server: the view and its queries only), as staff and
as the normal user. With ``--before`` (another checkout, with this file copied into its
``bench/``), the database is loaded by that tree, copied, the copy migrated by this one, and
the two trees are measured in turn, ``--rounds`` times each, on the same rows: on a shared
machine only interleaved runs on the same data compare. This tree then also measures

    unfolded   every key spread over shard 0 and all writer shards, the most rows a reader can
               meet (every shard wrote every key since the last fold); sums unchanged
    refolded   after ``rebuild_tallies --fold`` (its time is printed)

Each query's plan is printed (``EXPLAIN ANALYZE`` on PostgreSQL, ``EXPLAIN QUERY PLAN`` on
SQLite). The last line of output is the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from report import percentile, print_table, versions  # sibling module: these files run as scripts
from report import postgres_admin as _postgres_admin

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "taskcenter.settings"
PLATFORMS = (("douyin", 30), ("xhs", 25), ("weibo", 15), ("bilibili", 12), ("kuaishou", 10))
PLATFORMS += (("zhihu", 8),)
STATUSES = (
    ("COMPLETED", 70),
    ("FAILED", 10),
    ("CANCELLED", 4),
    ("PENDING", 5),
    ("QUEUED", 5),
    ("RUNNING", 3),
    ("STOPPED", 3),
)
KINDS = 8
OWNERS = 10
USER, STAFF = "bench", "bench-staff"


def _buckets(expression: str, weighted: tuple[tuple[str, int], ...]) -> str:
    """A CASE picking a value by ``expression`` (0..99) with the given percentage weights."""
    cases, edge = [], 0
    for value, weight in weighted[:-1]:
        edge += weight
        cases.append(f"WHEN {expression} < {edge} THEN '{value}'")
    return f"(CASE {' '.join(cases)} ELSE '{weighted[-1][0]}' END)"


MULTIPLIERS = (2654435761, 2246822519, 3266489917, 668265263, 374761393, 1181783497)


def _spread(column: str, which: int, modulo: int = 100) -> str:
    """A pseudo-random 0..modulo-1 from an integer column, the same on both databases: the
    column times a large odd number (``MULTIPLIERS[which]``) modulo a prime, a different
    multiplier per attribute so that owner, status, kind and platform come out independent."""
    multiplier = MULTIPLIERS[which]
    return f"(((CAST({column} AS BIGINT) * {multiplier}) % 1000003) % {modulo})"


def _owner_sql(expression: str, owner_ids: list[int]) -> str:
    # owner_ids[0] is the normal user (10%), [1] the staff user (5%), the rest share 85%.
    cases = [f"WHEN {expression} < 10 THEN {owner_ids[0]}", f"WHEN {expression} < 15 THEN "]
    cases[-1] += str(owner_ids[1])
    others = owner_ids[2:]
    for n, owner in enumerate(others[:-1]):
        cases.append(f"WHEN {expression} < {15 + 85 * (n + 1) // len(others)} THEN {owner}")
    return f"(CASE {' '.join(cases)} ELSE {others[-1]} END)"


def _insert_select(table: str, model, expressions: dict[str, str], source: str) -> tuple:
    """``INSERT INTO table (...) SELECT ...``: the given expressions, every other column its
    default (as a parameter), so the loader keeps up with new NOT NULL columns."""
    from django.db import connection

    columns, values, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.column)
        if field.column in expressions:
            values.append(expressions[field.column].replace("%", "%%"))  # parameters follow
        elif field.null:
            values.append("NULL")
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
    source = source.replace("%", "%%")
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} {source}"
    return sql, params


def load(size: int, owner_ids: list[int]) -> dict:
    from django.db import connection, transaction
    from django.utils import timezone

    from taskcenter.models import Task, TaskExecution

    if connection.vendor == "postgresql":
        series, prefix = f"FROM generate_series(1, {size}) AS s(i)", ""
    else:
        series = "FROM s"
        prefix = (
            f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {size}) "  # noqa: S608
        )
    now = f"'{timezone.now():%Y-%m-%d %H:%M:%S}'"  # UTC, a literal both databases read
    task_sql, task_params = _insert_select(
        "taskcenter_task",
        Task,
        {
            "name": "'bench task ' || i",
            "task_type": f"'bench.kind' || {_spread('i', 0, KINDS)}",
            "platform": _buckets(_spread("i", 1), PLATFORMS),
            "owner_id": _owner_sql(_spread("i", 2), owner_ids),
            "status": _buckets(_spread("i", 3), STATUSES),
            "created_at": now,
            "updated_at": now,
        },
        series,
    )
    exec_sql, exec_params = _insert_select(
        "taskcenter_taskexecution",
        TaskExecution,
        {
            "task_id": "id",
            "attempt": "1",
            "worker_id": "'bench'",
            "status": "status",
            "started_at": "created_at",
            "completed_at": "created_at",
            # 1 ms to about 5 minutes: some 70 bins
            "duration": f"(0.001 * (1 + {_spread('id', 4, 1000)}) * (1 + {_spread('id', 5, 300)}))",
        },
        "FROM taskcenter_task WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')",
    )
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(prefix.replace("%", "%%") + task_sql, task_params)
        tasks = time.perf_counter()
        cursor.execute(exec_sql, exec_params)
    loaded = time.perf_counter()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return {"tasks_s": tasks - started, "executions_s": loaded - tasks}


def spread_over_shards() -> int:
    """Give every key a row in every writer shard (+1 each, shard 0 less as much): sums kept."""
    from django.db import connection, transaction

    from taskcenter.models.tally_triggers import (
        DURATION_KEY,
        DURATION_TALLY,
        SHARDS,
        TASK_KEY,
        TASK_TALLY,
    )

    rows = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for table, key in ((TASK_TALLY, TASK_KEY), (DURATION_TALLY, DURATION_KEY)):
            cursor.execute(f"UPDATE {table} SET n = n - {SHARDS} WHERE shard = 0")  # noqa: S608
            for shard in range(1, SHARDS + 1):
                cursor.execute(
                    f"INSERT INTO {table} ({key}, shard, n) "  # noqa: S608
                    f"SELECT {key}, {shard}, 1 FROM {table} WHERE shard = 0"
                )
                rows += cursor.rowcount
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {TASK_TALLY}")
            cursor.execute(f"ANALYZE {DURATION_TALLY}")
    return rows


def endpoints() -> list[tuple[str, list[str]]]:
    names = [name for name, _ in PLATFORMS]
    return [
        ("statistics (no filter)", ["/api/v1/tasks/statistics"]),
        (
            "statistics FAILED+platform",
            [f"/api/v1/tasks/statistics?status=FAILED&platform={name}" for name in names],
        ),
    ]


def time_requests(users: dict, count: int) -> dict:
    from rest_framework.test import APIClient

    figures = {}
    for role, user in users.items():
        client = APIClient()
        client.force_authenticate(user)
        for label, paths in endpoints():
            for path in paths:  # warm-up
                assert client.get(path).status_code == 200
            samples = []
            for n in range(count):
                started = time.perf_counter()
                response = client.get(paths[n % len(paths)])
                samples.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
            figures[f"{role}|{label}"] = {
                "p50": percentile(samples, 0.50),
                "p95": percentile(samples, 0.95),
            }
    return figures


def plans(users: dict) -> list[str]:
    """The statistics queries of one request per endpoint, as staff, with their plans."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(users["staff"])
    lines = []
    for label, paths in endpoints():
        with CaptureQueriesContext(connection) as captured:
            client.get(paths[0])
        for query in captured.captured_queries:
            sql = query["sql"]
            if "tally" not in sql:
                continue
            explain = (
                "EXPLAIN (ANALYZE, COSTS OFF) "
                if connection.vendor == "postgresql"
                else "EXPLAIN QUERY PLAN "
            )
            with connection.cursor() as cursor:
                cursor.execute(explain + sql)
                rows = cursor.fetchall()
            lines.append(f"- {label}: {sql[:300]}")
            lines += [
                f"    {row[0] if connection.vendor == 'postgresql' else row[3]}" for row in rows
            ]
    return lines


def tally_rows() -> int:
    from taskcenter.models import DurationTally, TaskTally

    return TaskTally.objects.count() + DurationTally.objects.count()


def _roles() -> dict:
    from django.contrib.auth import get_user_model

    User = get_user_model()
    return {"staff": User.objects.get(username=STAFF), "user": User.objects.get(username=USER)}


def measure(count: int) -> dict:
    roles = _roles()
    return {"rows": tally_rows(), "plans": plans(roles), "timings": time_requests(roles, count)}


def drive(mode: str, size: int, count: int) -> dict:
    """One step in a process bound to the database in ``DATABASE_URL``."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    if mode == "load":
        call_command("migrate", verbosity=0, interactive=False)
        User = get_user_model()
        users = [User.objects.create_user(USER, password=None)]
        users.append(User.objects.create_user(STAFF, password=None, is_staff=True))
        users += [User.objects.create_user(f"owner{n}", password=None) for n in range(OWNERS - 2)]
        loaded = load(size, [user.pk for user in users])
        call_command("rebuild_tallies", stdout=StringIO())  # one row per key, as a quiet system
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the file alone is a copy
        return {"load": loaded}
    if mode == "migrate":
        call_command("migrate", verbosity=0, interactive=False)
        return {}
    if mode == "measure":
        return measure(count)
    # mode == "shards": the worst a reader meets between folds, then a fold
    result = {"unfolded": {"spread": spread_over_shards(), **measure(count)}}
    started = time.perf_counter()
    call_command("rebuild_tallies", "--fold", stdout=StringIO())
    result["refolded"] = {"fold_s": time.perf_counter() - started, **measure(count)}
    return result


# --- the orchestrator -------------------------------------------------------------------------


def _recreate(url: str, create: bool, template: str | None = None) -> None:
    connection, name = _postgres_admin(url)
    with connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            copy = f' TEMPLATE "{template}"' if template else ""
            connection.execute(f'CREATE DATABASE "{name}"{copy}')


class Databases:
    """The loaded database, and a copy of it for the other tree when comparing."""

    def __init__(self, database_url: str | None, tmp: Path) -> None:
        self.postgres = database_url
        self.tmp = tmp

    def url(self, side: str) -> str:
        if self.postgres:
            parts = urlsplit(self.postgres)
            name = parts.path.lstrip("/") + ("" if side == "after" else "_before")
            return urlunsplit(parts._replace(path=f"/{name}"))
        return f"sqlite:///{self.tmp}/{side}.sqlite3"

    def create(self, side: str) -> None:
        if self.postgres:
            _recreate(self.url(side), create=True)

    def copy(self, source: str, target: str) -> None:
        if self.postgres:
            template = urlsplit(self.url(source)).path.lstrip("/")
            _recreate(self.url(target), create=True, template=template)
        else:
            shutil.copyfile(self.tmp / f"{source}.sqlite3", self.tmp / f"{target}.sqlite3")

    def drop(self) -> None:
        if self.postgres:
            for side in ("after", "before"):
                _recreate(self.url(side), create=False)


def step(tree: Path, url: str, tmp: Path, mode: str, size: int, count: int) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "LOG_LEVEL": "WARNING",
        "TASKCENTER_VAR_DIR": str(tmp),
        "DATABASE_URL": url,
        "PYTHONPATH": str(tree),
        "THROTTLE_USER_RATE": "1000000/min",
    }
    env.pop("DEBUG", None)
    script = tree / "bench" / Path(__file__).name
    command = [sys.executable, str(script), "--driver", mode, "--size", str(size)]
    command += ["--requests", str(count)]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:])
        raise SystemExit(f"{mode} in {tree} failed ({done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(database_url: str | None, size: int, count: int, rounds: int, before: Path | None):
    """Load once (with the older tree when comparing), then measure the trees in turn."""
    tmp = Path(tempfile.mkdtemp(prefix="tc-bench-tally-"))
    databases = Databases(database_url, tmp)
    trees = {"after": ROOT} if before is None else {"before": before, "after": ROOT}
    first = next(iter(trees))
    try:
        databases.create(first)
        loaded = step(trees[first], databases.url(first), tmp, "load", size, count)
        if before is not None:
            databases.copy("before", "after")
            step(ROOT, databases.url("after"), tmp, "migrate", size, count)
        results: dict = {"load": loaded["load"], "rounds": []}
        for _ in range(rounds):
            results["rounds"].append(
                {
                    side: step(tree, databases.url(side), tmp, "measure", size, count)
                    for side, tree in trees.items()
                }
            )
            print(f"  round {len(results['rounds'])} done", file=sys.stderr)
        if sharded_tree(ROOT):
            results.update(step(ROOT, databases.url("after"), tmp, "shards", size, count))
        return results
    finally:
        databases.drop()
        shutil.rmtree(tmp, ignore_errors=True)


def sharded_tree(tree: Path) -> bool:
    return "shard" in (tree / "taskcenter" / "models" / "tallies.py").read_text()


def _cell(figures: list[dict]) -> str:
    p50s = sorted(figure["p50"] for figure in figures)
    p95s = sorted(figure["p95"] for figure in figures)
    middle = len(p50s) // 2
    spread = f" ({p50s[0]:.1f}-{p50s[-1]:.1f})" if len(p50s) > 1 else ""
    return f"{p50s[middle]:.1f}{spread} / {p95s[middle]:.1f}"


def report(result: dict, size: int) -> None:
    load = result["load"]
    print(
        f"Loaded {size:,} tasks in {load['tasks_s']:.1f} s and their executions in "
        f"{load['executions_s']:.1f} s (triggers counting); "
        f"{result['rounds'][0]['after']['rows']:,} tally rows, one per key"
    )
    if "unfolded" in result:
        print(
            f"unfolded: {result['unfolded']['rows']:,} tally rows; the fold took "
            f"{result['refolded']['fold_s']:.2f} s (and a VACUUM on PostgreSQL)"
        )
    print()
    sides = list(result["rounds"][0])
    columns = [(side, [r[side] for r in result["rounds"]]) for side in sides]
    columns += [(state, [result[state]]) for state in ("unfolded", "refolded") if state in result]
    rows = []
    for key in result["rounds"][0]["after"]["timings"]:
        role, label = key.split("|")
        cells = [_cell([run["timings"][key] for run in runs]) for _, runs in columns]
        rows.append((role, label, *cells))
    headers = [f"{name} p50 / p95 ms" for name, _ in columns]
    print_table(("as", "endpoint", *headers), rows)
    print()
    print(
        f"ms per request in-process (DRF test client), {len(result['rounds'])} round(s) of "
        "interleaved runs on the same data; median of the rounds' p50 (their range) / median "
        "p95. before/after: tallies folded to one row per key; unfolded: every key in every "
        "shard; refolded: after rebuild_tallies --fold."
    )
    print()
    for name, state in (
        ("before", result["rounds"][0].get("before")),
        ("after", result["rounds"][0]["after"]),
        ("unfolded", result.get("unfolded")),
    ):
        if state:
            print(f"Plans, {name}:")
            print("\n".join(state["plans"]))
            print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="A PostgreSQL database to recreate.")
    parser.add_argument("--size", type=int, default=1_000_000, help="Tasks to load.")
    parser.add_argument("--requests", type=int, default=100, help="Timed requests per row.")
    parser.add_argument("--rounds", type=int, default=3, help="Measurements of each tree.")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="A checkout of the code to compare with (git worktree or git archive of a commit).",
    )
    parser.add_argument("--driver", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        print(json.dumps(drive(args.driver, args.size, args.requests)))
        return
    if args.database_url and not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url must be a postgres:// URL (SQLite is the default)")
    if args.before and not (args.before / "bench" / Path(__file__).name).exists():
        parser.error(f"copy {Path(__file__).name} into {args.before / 'bench'} first")
    print(
        f"Machine: {platform.machine()} {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} cores; {versions('Django', 'djangorestframework', 'psycopg')}; "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    print(f"Database: {'PostgreSQL' if args.database_url else 'SQLite'}; after = {ROOT}", end="")
    print(f", before = {args.before}" if args.before else "")
    result = run(args.database_url, args.size, args.requests, args.rounds, args.before)
    report(result, args.size)
    summary = {
        "rounds": [{side: r[side]["timings"] for side in r} for r in result["rounds"]],
        **{
            state: result[state]["timings"] for state in ("unfolded", "refolded") if state in result
        },
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
