"""Submission speed: ``create_task`` one at a time, and 10,000 tasks at once (function and API).

    .venv/bin/python bench/submission.py [--database-url postgres://...] [--repeat 3]
        [--code DIR] [--only single,bulk,api] [--quick]

Every run gets a fresh database (a new SQLite file in a temp dir, or the PostgreSQL database
named in ``--database-url`` dropped and created again), migrated, with one user whose quota
balance can pay for everything, and a ``run_worker`` process beside it. ``--code`` runs the
same measurements against another checkout of Task Center (for example ``git archive`` of the
main branch unpacked in a temp dir), so before and after come from one script.

single  ``lifecycle.create_task(start=True)`` of ``demo.noop`` at a price of 1 (so the quota
        charge is part of it), one call every 5 ms, timed call by call:
        - idle: the worker beside it polls a queue of its own, so it stays idle;
        - idle, USER_TWEETS: the same with the XGet kind, whose parameters its serializer checks;
        - busy: the worker (``-c 1``) runs each task as it arrives;
        - floor: one small row of a table of its own INSERTed and committed the same way (the idle
          worker beside it), the least any durable submission costs on this database and
          machine.
        Then 200 calls without a worker, each statement and commit timed: where the time of one
        call goes.
bulk    10,000 tasks of four kinds (two XGet scrape kinds with parameters, ``suno.lyrics`` at 2
        quota each, ``demo.noop``), all started, in one ``lifecycle.create_tasks`` call (code
        without it: ``create_task`` in a loop inside one transaction); then the rows are counted
        (tasks, events, engine jobs, ledger rows, the balance) and ``rebuild_tallies --check``
        must find no difference. On SQLite also with the tally insert trigger dropped, to show
        the row triggers' share. No worker runs beside the bulk scenarios: one polling another
        queue would read past the 10,000 waiting jobs at every poll, and one running them would
        measure the worker.
api     the same 10,000 tasks as 100 ``POST /api/v1/tasks/batch`` requests of 100 over HTTP from
        ``--clients`` threads with keep-alive connections, timed from the first request to the
        last answer. ``--server service`` (the default) is the web server ``run_service`` starts:
        gunicorn with two uvicorn workers on the ASGI application; ``--server gthread`` is
        gunicorn's WSGI worker (2 workers x 4 threads). Each run also prints the busiest web
        worker's share of the web CPU: the clients' connections are spread by the kernel, and
        both on one worker leave the other core to the clients and the database.

Each scenario runs ``--repeat`` times (a fresh database each time) and every figure is printed
as median and range: the machine is shared, so the spread is part of the result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from report import fresh_postgres as _fresh_postgres
from report import gunicorn, percentile, print_table, versions  # sibling module: run as script
from report import postgres_admin as _postgres_admin

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "taskcenter.settings"
BALANCE = 10**9
GAP = 0.005  # seconds between two single creates
IDLE_QUEUE = "bench-idle"  # a queue nobody submits to: the worker polls it and stays idle
BATCH = 100  # the API's batch limit
WARM_UP = 4  # one-task batches before the API is timed
API_SERVERS = {
    "service": "uvicorn x2 (run_service's)",
    "gthread": "gthread 2x4",
}


# --- CPU time, which the neighbours on a shared machine do not inflate -------------------------


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (a process that is gone counts 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / tick


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def postgres_backends(database_url: str | None) -> list[int]:
    """The server processes serving the bench's database (PostgreSQL), for their CPU."""
    if not database_url:
        return []
    connection, name = _postgres_admin(database_url)
    with connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchall()
    return [row[0] for row in rows]


# --- what is submitted ----------------------------------------------------------------------


def bulk_items(count: int, *, api: bool) -> list[dict]:
    """``count`` tasks of four kinds, in the lifecycle's names or the API's (``task_name``)."""
    name = "task_name" if api else "name"
    shapes = [
        lambda i: {"task_type": "USER_TWEETS", "parameters": {"username": f"user{i}", "limit": 20}},
        lambda i: {"task_type": "USER_INFO", "parameters": {"username": f"user{i}"}},
        lambda i: {"task_type": "suno.lyrics", "parameters": {"prompt": f"a song about task {i}"}},
        lambda i: {"task_type": "demo.noop"},
    ]
    return [{**shapes[i % 4](i), name: f"bench {i}", "start": True} for i in range(count)]


def expected_price(count: int) -> int:
    return 2 * len(range(2, count, 4))  # every fourth item from the third is suno.lyrics


# --- the driver: runs in a subprocess bound to one fresh database ----------------------------


def _setup():
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from quota import ledger

    call_command("migrate", verbosity=0, interactive=False)
    user = get_user_model().objects.create_user("bench", password=None)
    ledger.grant(user.pk, BALANCE, note="bench")
    return user


def _start_worker(
    queue: str, log: Path, *, code: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen:
    code = code or Path.cwd()
    env = {**(env or os.environ), "LOG_LEVEL": "INFO"}
    command = [sys.executable, str(code / "manage.py"), "run_worker", "-c", "1", "--queue", queue]
    with log.open("w") as out:
        worker = subprocess.Popen(command, cwd=code, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while " started: concurrency=" not in log.read_text():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    time.sleep(1.0)  # past its first polls and reaper pass
    return worker


def _stop(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def _time_creates(user, count: int, **kwargs) -> dict:
    from taskcenter import lifecycle

    for _ in range(20):  # warm-up: compiled statements, caches
        lifecycle.create_task(owner=user, **kwargs)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        lifecycle.create_task(owner=user, **kwargs)
        samples.append((time.perf_counter() - started) * 1000)
        time.sleep(GAP)
    return _summary(samples)


def _summary(samples: list[float]) -> dict:
    return {
        "n": len(samples),
        "p50": statistics.median(samples),
        "p95": percentile(samples, 0.95),
        "max": max(samples),
    }


def _time_floor(count: int) -> dict:
    """The least a durable write costs on this database and machine, called as the creates are:
    one small row INSERTed and committed in a transaction of its own, through Django and
    the same driver, every 5 ms. A submission cannot be faster than this; the gap between the
    two is what the lifecycle's rows and Python add."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_floor (id integer PRIMARY KEY, note varchar(8))")
    samples = []
    for n in range(count + 20):  # the first 20 warm up, as in _time_creates
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_floor (id, note) VALUES (%s, %s)", [n, "x"])
        if n >= 20:
            samples.append((time.perf_counter() - started) * 1000)
        time.sleep(GAP)
    return _summary(samples)


def _breakdown(user, count: int) -> dict:
    """Where one create's time goes: each statement from the driver's call to its return,
    the commit, and the rest, which is Python (the lifecycle, the ORM, Django's wrappers)."""
    from django.db import connection

    from taskcenter import lifecycle

    statements: dict[str, list[float]] = {}

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            words = sql.split()
            head = " ".join(words[:3] if words[0] == "INSERT" else words[:2])[:60]
            statements.setdefault(head, []).append(time.perf_counter() - started)

    commit = connection.commit

    def timed_commit():
        started = time.perf_counter()
        try:
            commit()
        finally:
            statements.setdefault("COMMIT", []).append(time.perf_counter() - started)

    connection.commit = timed_commit
    total = 0.0
    try:
        with connection.execute_wrapper(timed):
            for _ in range(count):
                started = time.perf_counter()
                lifecycle.create_task(owner=user, task_type="demo.noop", start=True, quota=1)
                total += time.perf_counter() - started
    finally:
        del connection.commit
    return {
        "calls": count,
        "total_ms": total * 1000 / count,
        "statements": {
            head: {"per_call": len(times) / count, "ms": sum(times) * 1000 / count}
            for head, times in statements.items()
        },
    }


def drive_single(quick: bool, log_dir: Path) -> dict:
    user = _setup()
    count = 100 if quick else 300
    noop = {"task_type": "demo.noop", "start": True, "quota": 1}
    tweets = {"task_type": "USER_TWEETS", "parameters": {"username": "elonmusk"}, "start": True}
    result = {}
    worker = _start_worker(IDLE_QUEUE, log_dir / "worker-idle.log")
    try:
        result["idle"] = _time_creates(user, count, **noop)
        result["idle_tweets"] = _time_creates(user, count, **tweets)
        result["floor"] = _time_floor(count)
    finally:
        _stop(worker)
    worker = _start_worker("default", log_dir / "worker-busy.log")
    try:
        result["busy"] = _time_creates(user, count, **noop)
    finally:
        _stop(worker)
    result["breakdown"] = _breakdown(user, 200)
    return result


def _counts(count: int, warm: int = 0) -> dict:
    """Check the rows ``count`` started tasks (and ``warm`` unstarted free ones) must leave."""
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django_tasks_db.models import DBTaskResult

    from quota.models import QuotaBalance, QuotaLedgerEntry
    from taskcenter.models import Task, TaskEvent

    tasks = Task.objects.all()
    charges = QuotaLedgerEntry.objects.filter(kind="charge")
    try:
        call_command("rebuild_tallies", "--check", stdout=open(os.devnull, "w"))  # noqa: SIM115
        tallies = "exact"
    except CommandError as exc:
        tallies = str(exc)[:200]
    found = {
        "tasks": tasks.count(),
        "queued": tasks.filter(status="QUEUED").count(),
        "events": TaskEvent.objects.filter(verb="created").count(),
        "jobs": DBTaskResult.objects.count(),
        "charges": charges.count(),
        "spent": BALANCE - QuotaBalance.objects.get(user__username="bench").balance,
        "tallies": tallies,
    }
    wanted = {
        "tasks": count + warm,
        "queued": count,
        "events": count + warm,
        "jobs": count,
        "charges": len(range(2, count, 4)),
        "spent": expected_price(count),
        "tallies": "exact",
    }
    if found != wanted:
        raise SystemExit(f"after the bulk submission: found {found}, wanted {wanted}")
    return found


def drive_bulk(count: int, triggers: bool) -> dict:
    user = _setup()
    from django.db import connection, transaction

    from taskcenter import lifecycle

    if not triggers:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER tally_task_insert")
    items = bulk_items(count, api=False)
    server = []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            server = [cursor.fetchone()[0]]
    cpu = time.process_time() + cpu_seconds(server)
    started = time.perf_counter()
    if hasattr(lifecycle, "create_tasks"):
        lifecycle.create_tasks(items, owner=user)
        via = "create_tasks (one call)"
    else:
        with transaction.atomic():
            for item in items:
                lifecycle.create_task(owner=user, **item)
        via = "create_task in a loop, one transaction"
    took = time.perf_counter() - started
    cpu = time.process_time() + cpu_seconds(server) - cpu
    if triggers:
        _counts(count)
    return {"seconds": took, "cpu": cpu, "count": count, "via": via}


def drive_seed_api() -> dict:
    user = _setup()
    from taskcenter.models.tokens import ApiToken

    return {"token": ApiToken.objects.issue(user)[1]}


def drive_check(count: int, warm: int) -> dict:
    import django

    django.setup()
    return _counts(count, warm)


# --- the orchestrator ------------------------------------------------------------------------


def _environment(tmp: Path, database_url: str | None, code: Path) -> dict[str, str]:
    if database_url:
        _fresh_postgres(database_url)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "LOG_LEVEL": "WARNING",
        "TASKCENTER_VAR_DIR": str(tmp),
        "DATABASE_URL": database_url or f"sqlite:///{tmp}/bench.sqlite3",
        "TASKCENTER_DEMO_KINDS": "true",
        "THROTTLE_USER_RATE": "1000000/min",
        "THROTTLE_ANON_RATE": "1000000/min",
        "PYTHONPATH": str(code),
    }
    env.pop("DEBUG", None)
    return env


def _driver(env: dict[str, str], code: Path, *args: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--driver", *args]
    done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:])
        raise SystemExit(f"driver {args} failed ({done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_single(database_url: str | None, code: Path, quick: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="tc-bench-submit-"))
    try:
        return _driver(_environment(tmp, database_url, code), code, "single", *_quick(quick))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_bulk(database_url: str | None, code: Path, count: int, triggers: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="tc-bench-submit-"))
    try:
        env = _environment(tmp, database_url, code)
        return _driver(env, code, "bulk", str(count), "triggers" if triggers else "no-triggers")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _post_batches(base: str, token: str, bodies: list[bytes], clients: int) -> list[float]:
    """POST every body from ``clients`` threads, each on its own keep-alive connection."""
    import http.client

    host = urlsplit(base)
    pending = list(enumerate(bodies))
    lock = threading.Lock()
    took: list[float] = []
    failures: list[str] = []

    def client() -> None:
        connection = http.client.HTTPConnection(host.hostname, host.port, timeout=300)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        while True:
            with lock:
                if not pending or failures:
                    break
                _, body = pending.pop(0)
            started = time.perf_counter()
            connection.request("POST", "/api/v1/tasks/batch", body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            with lock:
                took.append(time.perf_counter() - started)
                if response.status != 200 or len(json.loads(answer)) != BATCH:
                    failures.append(f"HTTP {response.status}: {answer[:300]!r}")
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"batch refused: {failures[0]}")
    return took


def run_api(database_url: str | None, code: Path, count: int, clients: int, server: str) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="tc-bench-submit-"))
    try:
        env = _environment(tmp, database_url, code)
        token = _driver(env, code, "seed-api")["token"]
        items = bulk_items(count, api=True)
        bodies = [json.dumps(items[i : i + BATCH]).encode() for i in range(0, count, BATCH)]
        log = tmp / "gunicorn.log"
        shape = {"asgi": True} if server == "service" else {"threads": 4}
        with gunicorn(env, code, log, workers=2, timeout=300, **shape) as (base, gunicorn_server):
            # Warm-up: each gunicorn worker loads the views and compiles its statements.
            warm = json.dumps([{"task_type": "demo.noop", "task_name": "warm"}]).encode()
            _post_with_size(base, token, warm, WARM_UP)
            workers = children(gunicorn_server.pid)
            backends = postgres_backends(database_url)
            before = [cpu_seconds([pid]) for pid in workers] + [cpu_seconds(backends)]
            started = time.perf_counter()
            took = _post_batches(base, token, bodies, clients)
            seconds = time.perf_counter() - started
            after = [cpu_seconds([pid]) for pid in workers] + [cpu_seconds(backends)]
        spent = [end - start for start, end in zip(before, after, strict=True)]
        check = _driver(env, code, "check", str(count), str(WARM_UP))
        return {
            "seconds": seconds,
            "cpu": sum(spent),
            # Where the clients' connections landed: the busiest web worker's share of the web
            # workers' CPU (1.0: every request on one worker, 0.5: an even split).
            "busiest_share": max(spent[:-1]) / max(sum(spent[:-1]), 1e-9),
            "count": count,
            "request_p50_ms": statistics.median(took) * 1000,
            "request_p95_ms": percentile(took, 0.95) * 1000,
            "check": check,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _post_with_size(base: str, token: str, body: bytes, times: int) -> None:
    import http.client

    host = urlsplit(base)
    for _ in range(times):
        connection = http.client.HTTPConnection(host.hostname, host.port, timeout=300)
        connection.request(
            "POST",
            "/api/v1/tasks/batch",
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status != 200:
            raise SystemExit(f"warm-up batch refused: HTTP {response.status}")


def _quick(quick: bool) -> list[str]:
    return ["quick"] if quick else ["full"]


def _spread(values: list[float], unit: str = "", digits: int = 2) -> str:
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:.{digits}f}{unit}"
    return f"{middle:.{digits}f}{unit} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def _database(database_url: str | None) -> str:
    if not database_url:
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL, fresh file per run)"
    connection, name = _postgres_admin(database_url)
    with connection:
        version = connection.execute("SHOW server_version").fetchone()[0]
        durable = connection.execute("SHOW synchronous_commit").fetchone()[0]
    return (
        f"PostgreSQL {version} (database {name!r} recreated per run, synchronous_commit={durable})"
    )


def _code(code: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(code), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    )
    return done.stdout.strip()[:70] if done.returncode == 0 else str(code)


def print_single(runs: list[dict]) -> None:
    rows = []
    for key, label in (
        ("idle", "create_task, demo.noop at 1 quota, idle worker"),
        ("idle_tweets", "create_task, USER_TWEETS (its serializer), idle worker"),
        ("busy", "create_task, demo.noop at 1 quota, worker running each"),
        ("floor", "floor: INSERT one row + COMMIT, idle worker"),
    ):
        if key not in runs[0]:
            continue  # a result file from before the floor was measured
        rows.append(
            (
                label,
                str(runs[0][key]["n"]),
                _spread([run[key]["p50"] for run in runs], digits=2),
                _spread([run[key]["p95"] for run in runs], digits=2),
                _spread([run[key]["max"] for run in runs], digits=1),
            )
        )
    print_table(("one call every 5 ms", "n/run", "p50 ms", "p95 ms", "max ms"), rows)
    print()
    breakdown = runs[-1]["breakdown"]
    rows = []
    in_sql = 0.0
    for head, figures in sorted(breakdown["statements"].items(), key=lambda kv: -kv[1]["ms"]):
        in_sql += figures["ms"]
        rows.append((head, f"{figures['per_call']:.2f}", f"{figures['ms']:.3f}"))
    rows.append(("(Python: the lifecycle, the ORM, the driver)", "", ""))
    rows[-1] = (rows[-1][0], "", f"{breakdown['total_ms'] - in_sql:.3f}")
    rows.append(("one create_task, no worker", "", f"{breakdown['total_ms']:.3f}"))
    print_table(("where one create goes (last run, 200 calls)", "per call", "mean ms"), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL (dropped, created).")
    parser.add_argument("--code", default=str(ROOT), help="The Task Center checkout to measure.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each scenario.")
    parser.add_argument("--count", type=int, default=10_000, help="Tasks in a bulk submission.")
    parser.add_argument("--clients", type=int, default=2, help="HTTP client threads (api).")
    parser.add_argument("--only", default="single,bulk,api", help="Scenarios to run.")
    parser.add_argument("--quick", action="store_true", help="Fewer single creates per run.")
    parser.add_argument(
        "--server",
        choices=("service", "gthread"),
        default="service",
        help="api: run_service's web server (uvicorn workers, ASGI), or gthread (WSGI, 4 threads).",
    )
    parser.add_argument("--driver", nargs="+", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.driver:
        mode, *rest = args.driver
        log_dir = Path(os.environ["TASKCENTER_VAR_DIR"])
        if mode == "single":
            result = drive_single(rest[0] == "quick", log_dir)
        elif mode == "bulk":
            result = drive_bulk(int(rest[0]), rest[1] == "triggers")
        elif mode == "seed-api":
            result = drive_seed_api()
        else:
            result = drive_check(int(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return

    code = Path(args.code).resolve()
    wanted = {name for name in args.only.split(",") if name}
    sqlite = not args.database_url
    print(
        f"Machine: {platform.machine()} {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} cores, shared with other work (load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}); "
        + versions("Django", "djangorestframework", "psycopg", "gunicorn")
    )
    print(f"Database: {_database(args.database_url)}")
    print(f"Code: {_code(code)}")
    print(f"{args.repeat} run(s) of each; figures are median (min-max) over the runs")
    print()
    if "single" in wanted:
        runs = []
        for _ in range(args.repeat):
            runs.append(run_single(args.database_url, code, args.quick))
            print(f"  single: p50 {runs[-1]['idle']['p50']:.2f} ms", file=sys.stderr)
        print_single(runs)
        print()
    rows = []
    if "bulk" in wanted:
        for triggers in (True, False) if sqlite else (True,):
            results = []
            for _ in range(args.repeat):
                results.append(run_bulk(args.database_url, code, args.count, triggers))
                print(f"  bulk: {results[-1]['seconds']:.2f} s", file=sys.stderr)
            label = results[0]["via"] + ("" if triggers else ", tally trigger dropped")
            rows.append(_bulk_row(label, args.count, results))
    if "api" in wanted:
        results = []
        for _ in range(args.repeat):
            results.append(run_api(args.database_url, code, args.count, args.clients, args.server))
            print(
                f"  api: {results[-1]['seconds']:.2f} s, busiest web worker "
                f"{results[-1]['busiest_share']:.0%} of the web CPU",
                file=sys.stderr,
            )
        p50s = [result["request_p50_ms"] for result in results]
        shares = [result["busiest_share"] * 100 for result in results]
        label = (
            f"POST /tasks/batch x{args.count // BATCH} over HTTP, {args.clients} clients, "
            f"{API_SERVERS[args.server]} (request p50 {_spread(p50s, ' ms', 0)}; busiest worker "
            f"{_spread(shares, ' %', 0)} of the web CPU)"
        )
        rows.append(_bulk_row(label, args.count, results))
    if rows:
        print_table(("bulk submission", "tasks", "seconds", "tasks/s", "CPU s"), rows)
        print()
        print(
            "Bulk rows checked after each run: tasks, created events, engine jobs, charge rows "
            "and the balance as expected, and rebuild_tallies --check finds no difference. CPU s: "
            "user+system time of the submitting processes (the driver, or gunicorn's workers) and "
            "of their PostgreSQL server processes, which other work on the machine does not "
            "inflate as it does the wall time."
        )


def _bulk_row(label: str, count: int, results: list[dict]) -> tuple[str, ...]:
    seconds = [result["seconds"] for result in results]
    return (
        label,
        f"{count:,}",
        _spread(seconds, " s"),
        _spread([count / s for s in seconds], "", 0),
        _spread([result["cpu"] for result in results], " s"),
    )


if __name__ == "__main__":
    main()
