"""Export and search over one task's results at 1M rows, through a real server.

    python bench/results_export.py [--rows 1000000] [--searches 50]

A fresh SQLite file in a temp dir (``TASKCENTER_VAR_DIR``, ``DATABASE_URL``) is migrated and
``--rows`` ScrapeResult rows are bulk-loaded for one task with raw ``executemany`` (the result
indexes dropped for the load and built again after it). The rows are the sandbox platform's own
tweets (``sandbox.data``: text, nested ``user``, counts, about 300 bytes of JSON each) of 50
authors over and over, shaped as the scrape kinds store them (top-level ``username``, metadata
with source and cursors).

A real server then serves the file (``gunicorn taskcenter.wsgi``, one sync worker, so the
process measured is the one that streams), and the client:

* exports the task as CSV and as JSON (``POST /api/v1/tasks/export/<id>?format=...``), reading
  the streamed body in 1 MiB pieces and throwing it away, while a thread samples the worker
  process's RSS every 50 ms (psutil if installed, else ``VmRSS`` in ``/proc/<pid>/status``).
  Reported: rows/s (rows / wall time of the whole request) and peak RSS minus RSS just before
  the request;
* runs ``GET /api/v1/tasks/search/results?query=username:elonmusk,text:tesla&limit=50`` (the
  XGet scraper API's own example) ``--searches`` times and reports p50/p95.

Targets: RSS growth < 50 MB, >= 50k rows/s, search p95 < 500 ms. Exit status 1 if one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import threading
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
AUTHORS = (
    50  # elonmusk is one of them: the XGet scraper API's search example finds his Tesla tweets
)
TARGET_RSS_MB = 50.0
TARGET_ROWS_PER_S = 50_000.0
TARGET_SEARCH_P95_MS = 500.0
SEARCH = "/api/v1/tasks/search/results?query=username:elonmusk,text:tesla&limit=50"
RESULT_COLUMNS = [
    "id",
    "task_id",
    "execution_id",
    "data_type",
    "data",
    "metadata",
    "item_key",
    "created_at",
]


# --- the driver: runs in a subprocess bound to one fresh database -----------------------------


def _tweets(rows: int):
    """``rows`` tweets as the scrape kinds store them: the timelines of ``AUTHORS`` sandbox
    users over and over, each copy with its own id."""
    sys.path.insert(0, str(ROOT))
    from sandbox import data
    from scraping.scrape import searchable

    pool = [
        searchable(tweet)
        for author in ["elonmusk", *(f"author_{n}" for n in range(AUTHORS - 1))]
        for tweet in data.user_tweets(author, include_replies=True, include_retweets=True)
    ]
    for n in range(rows):
        yield {**pool[n % len(pool)], "id": str(10**15 + n)}


def _bulk_load(path: str, task_id: int, rows: int) -> dict:
    from scraping import search_index

    db = sqlite3.connect(path, isolation_level=None)
    table = "scraping_scraperesult"
    # Indexes and the search index's triggers are dropped for the load and made again after
    # it (the same schema, built from the loaded rows in one pass).
    indexes = db.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND "
        "sql IS NOT NULL AND tbl_name = ?",
        (table,),
    ).fetchall()
    has_search_index = db.execute(
        "SELECT count(*) FROM sqlite_master WHERE name = ?", (search_index.INDEX,)
    ).fetchone()[0]
    marks = ", ".join("?" * len(RESULT_COLUMNS))
    sql = f"INSERT INTO {table} ({', '.join(RESULT_COLUMNS)}) VALUES ({marks})"  # noqa: S608
    start = datetime.now(UTC) - timedelta(days=1)
    started = time.perf_counter()
    db.execute("BEGIN")
    for kind, name, _ in indexes:
        db.execute(f'DROP {kind.upper()} "{name}"')
    chunk: list[tuple] = []
    data_bytes = 0
    for n, tweet in enumerate(_tweets(rows), start=1):
        data = json.dumps(tweet)
        data_bytes += len(data)
        metadata = json.dumps({"source": "sandbox", "page_cursor": None, "next_cursor": None})
        created = (start + timedelta(microseconds=n * 50)).strftime("%Y-%m-%d %H:%M:%S.%f")
        chunk.append((n, task_id, None, "tweet", data, metadata, tweet["id"], created))
        if len(chunk) == CHUNK:
            db.executemany(sql, chunk)
            chunk = []
    db.executemany(sql, chunk)
    inserted = time.perf_counter()
    for _, _, index_sql in indexes:
        db.execute(index_sql)
    indexed = time.perf_counter()
    if has_search_index:
        db.execute(search_index.REBUILD)
    db.execute("COMMIT")
    db.close()
    return {
        "insert_s": inserted - started,
        "index_s": indexed - inserted,
        "search_index_s": time.perf_counter() - indexed if has_search_index else None,
        "avg_json_bytes": data_bytes / max(rows, 1),
    }


def drive(rows: int) -> dict:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from taskcenter import lifecycle
    from taskcenter.models.tokens import ApiToken

    call_command("migrate", verbosity=0, interactive=False)
    owner = get_user_model().objects.create_user("bench", password=None)
    token = ApiToken.objects.issue(owner)[1]
    task = lifecycle.create_task(
        owner=owner,
        task_type="USER_TWEETS",
        parameters={"username": "elonmusk", "limit": 10_000},
        name="export bench",
    )
    connection.close()
    path = settings.DATABASES["default"]["NAME"]
    load = _bulk_load(path, task.pk, rows)
    return {
        **load,
        "task_id": task.pk,
        "token": token,
        "db_mb": os.path.getsize(path) / 2**20,
        "plans": _explain(token),
    }


def _explain(token: str) -> list[dict]:
    """EXPLAIN QUERY PLAN of each query the search request runs, with one in-process timing."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = Client().get(SEARCH, HTTP_AUTHORIZATION=f"Bearer {token}")
    if response.status_code != 200:
        raise SystemExit(f"{SEARCH}: HTTP {response.status_code}")
    found = []
    for query in captured.captured_queries:
        sql = query["sql"]
        if "scraping_scraperesult" not in sql:
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            plan = [row[3] for row in cursor.fetchall()]
        found.append({"sql": sql, "plan": plan, "ms": float(query["time"]) * 1000})
    return found


# --- the orchestrator -------------------------------------------------------------------------


def _worker_pid(master: int) -> int:
    """gunicorn's one worker: the child of the master process."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children")
        if children.exists():
            pids = children.read_text().split()
            if pids:
                return int(pids[0])
        time.sleep(0.1)
    raise SystemExit("gunicorn's worker did not appear")


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid``."""
    try:
        import psutil
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise SystemExit(f"no VmRSS for {pid}") from None
    return psutil.Process(pid).memory_info().rss


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by ``pid``: what the work cost, however busy the
    machine is (wall-clock rates on a shared machine also measure the neighbours)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakRss(threading.Thread):
    """Samples a process's RSS every ``every`` seconds until stopped; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak = rss_bytes(pid)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            self._stop_event.wait(self.every)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, rss_bytes(self.pid))
        return self.peak


def _export(base: str, token: str, task_id: int, fmt: str, worker: int, rows: int) -> dict:
    import requests

    before = rss_bytes(worker)
    cpu_before = cpu_seconds(worker)
    sampler = PeakRss(worker)
    sampler.start()
    received = 0
    started = time.perf_counter()
    with requests.post(
        f"{base}/api/v1/tasks/export/{task_id}?format={fmt}",
        headers={"Authorization": f"Bearer {token}"},
        stream=True,
        timeout=600,
    ) as response:
        response.raise_for_status()
        first = b""
        with open(os.devnull, "wb") as sink:
            for piece in response.iter_content(1 << 20):
                if not first:
                    first = piece[:300]
                received += len(piece)
                sink.write(piece)
    took = time.perf_counter() - started
    cpu = cpu_seconds(worker) - cpu_before
    peak = sampler.stop()
    return {
        "format": fmt,
        "seconds": took,
        "rows_per_s": rows / took,
        "rows_per_cpu_s": rows / cpu if cpu else float("inf"),
        "mb": received / 2**20,
        "rss_before_mb": before / 2**20,
        "rss_growth_mb": (peak - before) / 2**20,
        "head": first.decode(errors="replace").splitlines()[0][:120],
    }


def _search(base: str, token: str, count: int, worker: int) -> dict:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    first = session.get(base + SEARCH, timeout=300)
    first.raise_for_status()
    page = first.json()
    samples = []
    cpu_before = cpu_seconds(worker)
    for _ in range(count):
        started = time.perf_counter()
        session.get(base + SEARCH, timeout=300).raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "n": count,
        "cpu_ms": (cpu_seconds(worker) - cpu_before) * 1000 / max(count, 1),
        "total": page["total"],
        "p50": percentile(samples, 0.5),
        "p95": percentile(samples, 0.95),
        "max": max(samples),
    }


def run(rows: int, searches: int, formats: list[str]) -> tuple[dict, list[dict], dict]:
    tmp = Path(tempfile.mkdtemp(prefix="tc-bench-export-"))
    try:
        env = server_env(tmp, "export.sqlite3", ROOT)
        seeded = run_driver(str(Path(__file__).resolve()), rows, env, ROOT)
        search_index_s = seeded["search_index_s"]
        print(
            f"  seeded {rows:,} results in {seeded['seed_s']:.1f} s (insert "
            f"{seeded['insert_s']:.1f} s, indexes {seeded['index_s']:.1f} s, search index "
            + (f"{search_index_s:.1f} s" if search_index_s is not None else "absent")
            + f", {seeded['db_mb']:.0f} MB, {seeded['avg_json_bytes']:.0f} B of JSON a row)",
            file=sys.stderr,
        )
        log = tmp / "gunicorn.log"
        with gunicorn(env, ROOT, log, workers=1, timeout=600) as (base, server):
            worker = _worker_pid(server.pid)
            token, task_id = seeded["token"], seeded["task_id"]
            # One small request first, so imports and the first connection are not "growth".
            warm = _search(base, token, 1, worker)
            exports = [_export(base, token, task_id, fmt, worker, rows) for fmt in formats]
            search = _search(base, token, searches, worker) if searches else warm
        return seeded, exports, search
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="Results to load.")
    parser.add_argument("--searches", type=int, default=50, help="Timed search requests.")
    parser.add_argument("--formats", default="csv,json", help="Export formats, in order.")
    parser.add_argument("--driver", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.driver:
        print(json.dumps(drive(args.driver)))
        return

    print(
        f"Machine: {platform.machine()} {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} cores; "
        + versions(
            "Django",
            "djangorestframework",
            "gunicorn",
            "psutil",
            extra=(f"SQLite {sqlite3.sqlite_version}",),
        )
    )
    print(f"SQLite (WAL), fresh file; gunicorn --workers 1 (sync); {SETTINGS}")
    print()
    load_before = os.getloadavg()[0]
    seeded, exports, search = run(args.rows, args.searches, args.formats.split(","))
    rows = []
    ok = True
    for item in exports:
        passed = item["rss_growth_mb"] < TARGET_RSS_MB and item["rows_per_s"] >= TARGET_ROWS_PER_S
        ok = ok and passed
        rows.append(
            (
                f"export {item['format']}",
                f"{args.rows:,}",
                f"{item['seconds']:.1f}",
                f"{item['rows_per_s']:,.0f}",
                f"{item['rows_per_cpu_s']:,.0f}",
                f"{item['mb']:.0f}",
                f"{item['rss_before_mb']:.0f}",
                f"{item['rss_growth_mb']:.1f}",
                "PASS" if passed else "FAIL",
            )
        )
    print_table(
        (
            "request",
            "rows",
            "s",
            "rows/s",
            "rows/server CPU-s",
            "MB sent",
            "RSS before MB",
            "RSS growth MB",
            "target",
        ),
        rows,
    )
    print()
    search_ok = search["p95"] < TARGET_SEARCH_P95_MS
    ok = ok and search_ok
    print_table(
        (
            "search (seed example)",
            "matches",
            "n",
            "p50 ms",
            "p95 ms",
            "max ms",
            "server CPU ms",
            "target",
        ),
        [
            (
                "username:elonmusk,text:tesla",
                f"{search['total']:,}",
                str(search["n"]),
                f"{search['p50']:.1f}",
                f"{search['p95']:.1f}",
                f"{search['max']:.1f}",
                f"{search['cpu_ms']:.1f}",
                "PASS" if search_ok else "FAIL",
            )
        ],
    )
    print()
    for item in exports:
        print(f"{item['format']} starts: {item['head']}")
    print()
    print("Search queries (EXPLAIN QUERY PLAN; ms = the first, in-process run):")
    for item in seeded["plans"]:
        sql = item["sql"] if len(item["sql"]) <= 400 else item["sql"][:400] + " ..."
        print(f"- {item['ms']:.1f} ms: {sql}")
        for line in item["plan"]:
            print(f"    {line}")
    print(
        f"Load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on "
        f"{os.cpu_count()} cores: wall-clock figures include whatever else the machine ran."
    )
    print(
        "RSS growth includes SQLite's page cache (cache_size=-32000: up to 32 MB per "
        "connection), which the first export fills."
    )
    print(
        f"Targets: RSS growth < {TARGET_RSS_MB:g} MB, >= {TARGET_ROWS_PER_S:,.0f} rows/s, "
        f"search p95 < {TARGET_SEARCH_P95_MS:g} ms."
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
