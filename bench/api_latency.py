"""API read latency at 10k and 1M tasks: the filtered list and the statistics endpoint.

    .venv/bin/python bench/api_latency.py [--quick] [--requests 200] [--budget 20]

For every size (10k and 1M; ``--quick``: 10k and 100k) the bench makes a fresh SQLite file in a
temp dir (``TASKCENTER_VAR_DIR``, ``DATABASE_URL``), migrates it, and bulk-loads the tasks with
raw ``executemany`` in chunks of 10k inside one transaction. The indexes of the two big tables
are dropped for the load and created again afterwards (same schema, built from sorted data in a
fraction of the time). The data: 10 owners, one of them the normal benchmark user with ~10% of
the tasks, plus a staff user; 6 platforms of unequal weight; 8 task types; ~10% FAILED, ~70%
COMPLETED, the rest spread over the other statuses; ``created_at`` spread over 90 days (ids
ascending with it); ``finished_at`` on finished tasks, and one execution per finished task
(status matching the task's, a log-normal ``duration``) for the statistics' percentiles. No
``ANALYZE`` is run: a Django application's SQLite file has no planner statistics unless someone
adds them, so the plans are the ones production would get.

A real server then serves the file (``gunicorn taskcenter.wsgi --workers 2``, throttles raised
through ``THROTTLE_USER_RATE``), and one client times sequential requests over HTTP with a
Bearer token, as the staff user and as the normal user (whose queries are owner-scoped and use
other indexes):

    list            GET /api/v1/tasks?status=FAILED&platform=<p>&page=<1..5>
    stats           GET /api/v1/tasks/statistics
    stats filtered  GET /api/v1/tasks/statistics?status=FAILED&platform=<p>

Targets: p95 < 100 ms at the largest size, and p50(largest) / p50(10k) < 2 (index-backed, no
full scans). Before the server starts, the same requests run once in-process under
``CaptureQueriesContext`` and ``EXPLAIN QUERY PLAN`` of every task/execution query is printed,
so a reader sees which index serves each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from report import (  # sibling module: these files run as scripts
    gunicorn,
    percentile,
    print_table,
    run_driver,
    server_env,
    versions,
)

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "taskcenter.settings"
CHUNK = 10_000
DAYS = 90
PLATFORMS = (("douyin", 30), ("xhs", 25), ("weibo", 15), ("bilibili", 12), ("kuaishou", 10))
PLATFORMS += (("zhihu", 8),)
TYPES = tuple(f"bench.kind{n}" for n in range(8))
STATUSES = (
    ("COMPLETED", 70),
    ("FAILED", 10),
    ("CANCELLED", 4),
    ("PENDING", 5),
    ("QUEUED", 5),
    ("RUNNING", 3),
    ("STOPPED", 3),
)
FINISHED = {"COMPLETED", "FAILED", "CANCELLED"}
OWNERS = 10  # "bench" (normal user, ~10%), "bench-staff" (staff, ~5%), 8 others
USER, STAFF = "bench", "bench-staff"
TARGET_P95_MS = 100.0
TARGET_RATIO = 2.0
PAGES = 5


def endpoints() -> list[tuple[str, list[str]]]:
    """(label, paths cycled through): the platform and page vary from request to request."""
    names = [name for name, _ in PLATFORMS]
    lists = [
        f"/api/v1/tasks?status=FAILED&platform={name}&page={page}"
        for page in range(1, PAGES + 1)
        for name in names
    ]
    stats_filtered = [f"/api/v1/tasks/statistics?status=FAILED&platform={name}" for name in names]
    return [
        ("list FAILED+platform, page 1-5", lists),
        ("statistics (no filter)", ["/api/v1/tasks/statistics"]),
        ("statistics FAILED+platform", stats_filtered),
    ]


# --- the driver: runs in a subprocess bound to one fresh database -----------------------------


def _stamp(moment: datetime) -> str:
    # Django's SQLite format for an aware datetime stored in UTC.
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


TASK_COLUMNS = [
    "id",
    "name",
    "description",
    "task_type",
    "platform",
    "action",
    "owner_id",
    "parameters",
    "status",
    "progress",
    "progress_message",
    "priority",
    "attempts",
    "total_attempts",
    "max_attempts",
    "quota",
    "error_message",
    "external_id",
    "remote_status",
    "account_id",
    "proxy_id",
    "data_source_id",
    "batch_id",
    "created_at",
    "updated_at",
    "submitted_at",
    "started_at",
    "finished_at",
]
EXEC_COLUMNS = [
    "id",
    "task_id",
    "attempt",
    "worker_id",
    "status",
    "account_id",
    "proxy_id",
    "started_at",
    "completed_at",
    "duration",
    "result_count",
    "error_message",
    "traceback",
]


def _check_columns(db: sqlite3.Connection, table: str, given: list[str]) -> None:
    missing = [
        row[1]
        for row in db.execute(f"PRAGMA table_info({table})")
        if row[3] and row[4] is None and row[1] not in given and not row[5]
    ]
    if missing:
        raise SystemExit(f"{table}: NOT NULL columns the loader does not fill: {missing}")


def _rows(size: int, owner_ids: list[int], rng: random.Random):
    """Yield (task row, execution row or None) in id order."""
    statuses = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES], k=size)
    platforms = rng.choices([p for p, _ in PLATFORMS], [w for _, w in PLATFORMS], k=size)
    # owner_ids[0] is the benchmark user (10%), [1] staff (5%), the rest share 85%.
    weights = [10, 5] + [85 / (len(owner_ids) - 2)] * (len(owner_ids) - 2)
    owners = rng.choices(owner_ids, weights, k=size)
    types = rng.choices(TYPES, k=size)
    start = datetime.now(UTC) - timedelta(days=DAYS)
    step = DAYS * 86400 / size
    exec_id = 0
    for i in range(size):
        status = statuses[i]
        created = start + timedelta(seconds=i * step + rng.random() * step)
        finished = status in FINISHED
        ran = finished or status in {"RUNNING", "STOPPED"}
        started = created + timedelta(seconds=1 + rng.random() * 5) if ran else None
        duration = rng.lognormvariate(1.5, 1.0) if ran else None
        ended = started + timedelta(seconds=duration) if finished else None
        created_s = _stamp(created)
        task = (
            i + 1,
            f"bench task {i + 1}",
            "",
            types[i],
            platforms[i],
            "",
            owners[i],
            "{}",
            status,
            100 if status == "COMPLETED" else 0,
            "",
            0,
            1 if ran else 0,
            1 if ran else 0,
            3,
            0,
            "bench failure" if status == "FAILED" else "",
            "",
            "",
            "",
            "",
            "",
            "",
            created_s,
            _stamp(ended) if ended else created_s,
            created_s if ran else None,
            _stamp(started) if started else None,
            _stamp(ended) if ended else None,
        )
        execution = None
        if finished:
            exec_id += 1
            execution = (
                exec_id,
                i + 1,
                1,
                "bench",
                status,
                "",
                "",
                _stamp(started),
                _stamp(ended),
                duration,
                0,
                "",
                "",
            )
        yield task, execution


def _insert_sql(table: str, columns: list[str]) -> str:
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608


def _bulk_load(path: str, size: int, owner_ids: list[int]) -> dict:
    rng = random.Random(20260101 + size)
    db = sqlite3.connect(path, isolation_level=None)
    tables = ("taskcenter_task", "taskcenter_taskexecution")
    _check_columns(db, tables[0], TASK_COLUMNS)
    _check_columns(db, tables[1], EXEC_COLUMNS)
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND "
        "tbl_name IN (?, ?)",
        tables,
    ).fetchall()
    task_sql = _insert_sql(tables[0], TASK_COLUMNS)
    exec_sql = _insert_sql(tables[1], EXEC_COLUMNS)
    started = time.perf_counter()
    executions = 0
    db.execute("BEGIN")
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    tasks_chunk: list[tuple] = []
    exec_chunk: list[tuple] = []
    for task, execution in _rows(size, owner_ids, rng):
        tasks_chunk.append(task)
        if execution:
            exec_chunk.append(execution)
        if len(tasks_chunk) == CHUNK:
            db.executemany(task_sql, tasks_chunk)
            db.executemany(exec_sql, exec_chunk)
            executions += len(exec_chunk)
            tasks_chunk, exec_chunk = [], []
    db.executemany(task_sql, tasks_chunk)
    db.executemany(exec_sql, exec_chunk)
    executions += len(exec_chunk)
    inserted = time.perf_counter()
    for _, sql in indexes:
        db.execute(sql)
    db.execute("COMMIT")
    db.close()
    done = time.perf_counter()
    return {
        "tasks": size,
        "executions": executions,
        "insert_s": inserted - started,
        "index_s": done - inserted,
    }


def _explain(tokens: dict[str, str]) -> list[dict]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    found = []
    for role, token in tokens.items():
        for label, paths in endpoints():
            path = paths[len(paths) // 2 if len(paths) > 1 else 0]
            with CaptureQueriesContext(connection) as captured:
                response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
            if response.status_code != 200:
                raise SystemExit(f"{path} as {role}: HTTP {response.status_code}")
            for query in captured.captured_queries:
                sql = query["sql"]
                if "taskcenter_task" not in sql or not sql.lstrip().upper().startswith("SELECT"):
                    continue
                with connection.cursor() as cursor:
                    cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
                    plan = [row[3] for row in cursor.fetchall()]
                started = time.perf_counter()
                with connection.cursor() as cursor:
                    cursor.execute(sql)
                    cursor.fetchall()
                took = (time.perf_counter() - started) * 1000
                found.append(
                    {"role": role, "endpoint": label, "sql": sql, "plan": plan, "ms": took}
                )
    return found


def drive(size: int) -> dict:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from taskcenter.models.tokens import ApiToken

    call_command("migrate", verbosity=0, interactive=False)
    User = get_user_model()
    users = [User.objects.create_user(USER, password=None)]
    users.append(User.objects.create_user(STAFF, password=None, is_staff=True))
    users += [User.objects.create_user(f"owner{n}", password=None) for n in range(OWNERS - 2)]
    tokens = {"user": ApiToken.objects.issue(users[0])[1]}
    tokens["staff"] = ApiToken.objects.issue(users[1])[1]
    connection.close()
    load = _bulk_load(settings.DATABASES["default"]["NAME"], size, [u.pk for u in users])
    load["plans"] = _explain(tokens)
    load["tokens"] = tokens
    load["db_mb"] = os.path.getsize(settings.DATABASES["default"]["NAME"]) / 2**20
    return load


# --- the orchestrator -------------------------------------------------------------------------


def _measure(base: str, token: str, paths: list[str], count: int, budget: float) -> dict:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    full = []
    for n in range(max(3, len(paths))):  # warm-up: every path once, at least 3 requests
        response = session.get(base + paths[n % len(paths)], timeout=300)
        response.raise_for_status()
        body = response.json()
        if "items" not in body or len(body["items"]) == body.get("size"):
            full.append(paths[n % len(paths)])
    # Only full list pages are timed: the normal user's small platforms have fewer than five
    # pages of FAILED tasks at 10k, and an empty page is less work than a full one, which
    # would flatter the small size and skew the 1M/10k ratio.
    paths = list(dict.fromkeys(full)) or paths
    samples: list[float] = []
    deadline = time.monotonic() + budget
    for n in range(count):
        path = paths[n % len(paths)]
        started = time.perf_counter()
        response = session.get(base + path, timeout=300)
        took = (time.perf_counter() - started) * 1000
        response.raise_for_status()
        samples.append(took)
        if time.monotonic() > deadline and len(samples) >= 20:
            break
    return {
        "n": len(samples),
        "paths": len(paths),
        "p50": percentile(samples, 0.50),
        "p95": percentile(samples, 0.95),
        "max": max(samples),
    }


def run_size(size: int, count: int, budget: float, workers: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"tc-bench-api-{size}-"))
    try:
        env = server_env(tmp, "api.sqlite3", ROOT)
        result = run_driver(str(Path(__file__).resolve()), size, env, ROOT)
        print(
            f"  seeded {size:,} tasks + {result['executions']:,} executions in "
            f"{result['seed_s']:.1f} s (insert {result['insert_s']:.1f} s, indexes "
            f"{result['index_s']:.1f} s, {result['db_mb']:.0f} MB)",
            file=sys.stderr,
        )
        log = tmp / "gunicorn.log"
        with gunicorn(env, ROOT, log, workers=workers, timeout=300) as (base, _server):
            result["timings"] = {
                f"{role}|{label}": _measure(base, result["tokens"][role], paths, count, budget)
                for role in ("staff", "user")
                for label, paths in endpoints()
            }
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _versions() -> str:
    return versions(
        "Django", "djangorestframework", "gunicorn", extra=(f"SQLite {sqlite3.sqlite_version}",)
    )


def print_plans(size: int, plans: list[dict]) -> None:
    print(f"Query plans at {size:,} tasks (EXPLAIN QUERY PLAN; ms = one in-process run)")
    seen = set()
    for item in plans:
        key = (item["role"], item["endpoint"], item["sql"])
        if key in seen:
            continue
        seen.add(key)
        sql = item["sql"]
        short = sql if len(sql) <= 400 else sql[:400] + " ..."
        print(f"- [{item['role']}] {item['endpoint']}: {item['ms']:.1f} ms")
        print(f"    {short}")
        for line in item["plan"]:
            print(f"      {line}")
    print()


def print_report(results: dict[int, dict]) -> bool:
    small, large = min(results), max(results)
    ok = True
    rows = []
    for key in results[small]["timings"]:
        role, label = key.split("|")
        a, b = results[small]["timings"][key], results[large]["timings"][key]
        ratio50, ratio95 = b["p50"] / a["p50"], b["p95"] / a["p95"]
        passed = b["p95"] < TARGET_P95_MS and ratio50 < TARGET_RATIO
        ok = ok and passed
        rows.append(
            (
                role,
                label,
                f"{a['p50']:.1f}",
                f"{a['p95']:.1f}",
                f"{b['p50']:.1f}",
                f"{b['p95']:.1f}",
                str(b["n"]),
                f"{a['paths']}/{b['paths']}",
                f"{ratio50:.2f}",
                f"{ratio95:.2f}",
                "PASS" if passed else "FAIL",
            )
        )
    s = f"{small // 1000}k"
    l_ = f"{large // 1_000_000}M" if large >= 10**6 else f"{large // 1000}k"
    headers = (
        "as",
        "endpoint",
        f"{s} p50",
        f"{s} p95",
        f"{l_} p50",
        f"{l_} p95",
        "n",
        "paths",
        f"p50 {l_}/{s}",
        f"p95 {l_}/{s}",
        f"p95<{TARGET_P95_MS:g}ms & p50 ratio<{TARGET_RATIO:g}",
    )
    print_table(headers, rows)
    print()
    print(
        "ms per request, client side over HTTP (sequential, one client, a new connection per "
        "request: gunicorn's sync workers close it); n = samples at the larger size (capped by "
        "--requests and --budget seconds per row, at least 20); paths = distinct URLs timed at "
        "each size (list pages only when full, so both sizes serialise the same 20 tasks)."
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k instead of 10k and 1M.")
    parser.add_argument("--requests", type=int, default=200, help="Timed requests per row.")
    parser.add_argument(
        "--budget", type=float, default=20.0, help="Seconds per row before stopping early."
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers.")
    parser.add_argument("--sizes", default="", help="Comma-separated sizes (overrides --quick).")
    parser.add_argument("--no-plans", action="store_true", help="Do not print the query plans.")
    parser.add_argument("--driver", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.driver:
        print(json.dumps(drive(args.driver)))
        return

    sizes = [int(s) for s in args.sizes.split(",") if s] or (
        [10_000, 100_000] if args.quick else [10_000, 1_000_000]
    )
    print(
        f"Machine: {platform.machine()} {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} cores; {_versions()}"
    )
    print(f"SQLite (WAL), fresh file per size; gunicorn --workers {args.workers}; {SETTINGS}")
    print()
    results = {}
    for size in sizes:
        results[size] = run_size(size, args.requests, args.budget, args.workers)
    for size in sizes:
        seeded = results[size]
        print(
            f"{size:,} tasks, {seeded['executions']:,} executions: seeded in "
            f"{seeded['seed_s']:.1f} s (insert {seeded['insert_s']:.1f} s, indexes "
            f"{seeded['index_s']:.1f} s), {seeded['db_mb']:.0f} MB"
        )
    print()
    if not args.no_plans:
        for size in sizes:
            print_plans(size, results[size]["plans"])
    ok = print_report(results) if len(sizes) > 1 else True
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
