"""Worker throughput and latency: Task Center's ``run_worker`` against raw ``db_worker``.

    .venv/bin/python bench/worker_throughput.py [--quick] [--database-url postgres://...]
        [--workers N] [--count N] [--only a_tc,b_tc,...]

Every scenario gets a fresh database (a new SQLite file in a temp dir, or the PostgreSQL database
named in ``--database-url`` dropped and created again), is migrated, gets all of its jobs
enqueued, and only then starts the worker as a subprocess, exactly as an operator would. The
throughput comes from timestamps the workers wrote into the engine's table (first job started to
last job finished), so interpreter and Django start-up cost is left out of both sides equally;
the wall time of the worker process is printed too.

Scenarios (targets in brackets):

(a) ``demo.noop`` tasks through the full lifecycle (create QUEUED, claim, execution, events,
    complete), ``run_worker --concurrency 1``, against ``db_worker`` on a no-op
    ``django_tasks`` job  [>= 1.0x].
(b) ``demo.sleep`` (100 ms) tasks, ``run_worker --concurrency 16``, against ``db_worker`` on a
    100 ms job, which runs one at a time  [>= 10x].
(c) enqueue-to-RUNNING latency on an idle worker at its default ``--interval``: tasks created one
    at a time, from just before ``lifecycle.create_task(start=True)`` returns to the execution's
    ``started_at``  [p50 < 50 ms]; ``db_worker`` at its default ``--interval 1`` and at 0.02 s
    for context.

``--workers N`` starts N worker processes side by side for each throughput scenario (all on the
same backlog, each with the scenario's ``--concurrency``), and ``--count N`` sets the backlog, so
that the drain lasts long enough for the processes' staggered start not to matter.

Each scenario runs in its own driver subprocess (``--driver``) because Django binds one database
per process.
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
import time
from dataclasses import dataclass, replace
from pathlib import Path

from report import drop_postgres as _drop_postgres
from report import fresh_postgres as _fresh_postgres
from report import postgres_admin as _postgres_admin
from report import print_table, versions  # sibling module: these files run as scripts

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "taskcenter.settings"
WORKER_TIMEOUT = 600.0


@dataclass(frozen=True)
class Scenario:
    key: str
    engine: str  # "taskcenter" or "db_worker"
    mode: str  # "throughput" or "latency"
    job: str  # demo kind or bench.jobs function
    count: int
    worker_args: tuple[str, ...]
    label: str


def scenarios(quick: bool) -> list[Scenario]:
    def n(full: int, short: int) -> int:
        return short if quick else full

    raw_batch = ("--batch", "--no-startup-delay", "--interval", "0")
    return [
        Scenario(
            "a_tc",
            "taskcenter",
            "throughput",
            "demo.noop",
            n(2000, 500),
            ("--concurrency", "1", "--exit-when-idle"),
            "(a) no-op, run_worker -c 1",
        ),
        Scenario(
            "a_raw",
            "db_worker",
            "throughput",
            "noop",
            n(2000, 500),
            raw_batch,
            "(a) no-op, raw db_worker",
        ),
        Scenario(
            "b_tc",
            "taskcenter",
            "throughput",
            "demo.sleep",
            n(320, 160),
            ("--concurrency", "16", "--exit-when-idle"),
            "(b) sleep 100 ms, run_worker -c 16",
        ),
        Scenario(
            "b_raw",
            "db_worker",
            "throughput",
            "sleep_100ms",
            n(30, 15),
            raw_batch,
            "(b) sleep 100 ms, raw db_worker",
        ),
        Scenario(
            "c_tc",
            "taskcenter",
            "latency",
            "demo.noop",
            n(40, 20),
            (),
            "(c) latency, run_worker (default --interval)",
        ),
        Scenario(
            "c_raw_1",
            "db_worker",
            "latency",
            "noop",
            n(20, 10),
            ("--no-startup-delay",),
            "(c) latency, raw db_worker --interval 1",
        ),
        Scenario(
            "c_raw_002",
            "db_worker",
            "latency",
            "noop",
            n(40, 20),
            ("--no-startup-delay", "--interval", "0.02"),
            "(c) latency, raw db_worker --interval 0.02",
        ),
    ]


# --- the driver: runs inside a subprocess bound to one fresh database ------------------------


def _worker_command(scenario: Scenario) -> list[str]:
    command = "run_worker" if scenario.engine == "taskcenter" else "db_worker"
    return [sys.executable, str(ROOT / "manage.py"), command, *scenario.worker_args]


def _enqueue_one(scenario: Scenario, owner: object) -> object:
    """Create one task (ours) or enqueue one job (raw); returns what identifies it."""
    if scenario.engine == "taskcenter":
        from taskcenter import lifecycle

        parameters = {"ms": 100} if scenario.job == "demo.sleep" else {}
        return lifecycle.create_task(
            owner=owner, task_type=scenario.job, parameters=parameters, start=True
        ).pk
    from bench import jobs

    return getattr(jobs, scenario.job).enqueue().id


def _start_worker(
    scenario: Scenario, log_dir: Path, number: int = 0
) -> tuple[subprocess.Popen, object]:
    log = (log_dir / f"{scenario.key}-{number}.log").open("w")
    process = subprocess.Popen(
        _worker_command(scenario), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    return process, log


def _fail(message: str, log_dir: Path, scenario: Scenario) -> None:
    logs = "\n".join(
        f"--- {path.name} ---\n{path.read_text()[-3000:]}"
        for path in sorted(log_dir.glob(f"{scenario.key}-*.log"))
    )
    raise SystemExit(f"{scenario.label}: {message}\n{logs}")


def _engine_span() -> tuple[float, float, int]:
    """First job started and last job finished (epoch seconds), from the engine's table."""
    from django.db.models import Max, Min
    from django_tasks_db.models import DBTaskResult

    span = DBTaskResult.objects.aggregate(first=Min("started_at"), last=Max("finished_at"))
    done = DBTaskResult.objects.filter(status="SUCCESSFUL").count()
    return span["first"].timestamp(), span["last"].timestamp(), done


def _check_all_completed(scenario: Scenario, log_dir: Path) -> None:
    if scenario.engine != "taskcenter":
        return
    from taskcenter.models import Status, Task

    bad = Task.objects.exclude(status=Status.COMPLETED).count()
    if bad:
        _fail(f"{bad} task(s) did not complete", log_dir, scenario)


def _drive_throughput(scenario: Scenario, owner: object, log_dir: Path, workers: int) -> dict:
    from django.db import transaction

    # One transaction for the whole backlog: enqueueing is not what is measured.
    with transaction.atomic():
        for _ in range(scenario.count):
            _enqueue_one(scenario, owner)
    started = time.perf_counter()
    running = [_start_worker(scenario, log_dir, number) for number in range(workers)]
    codes = []
    try:
        deadline = time.monotonic() + WORKER_TIMEOUT
        for process, _ in running:
            codes.append(process.wait(timeout=max(1.0, deadline - time.monotonic())))
    finally:
        for process, log in running:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    wall = time.perf_counter() - started
    if any(codes):
        _fail(f"worker exit codes {codes}", log_dir, scenario)
    first, last, done = _engine_span()
    if done != scenario.count:
        _fail(f"only {done}/{scenario.count} engine jobs succeeded", log_dir, scenario)
    _check_all_completed(scenario, log_dir)
    return {
        "count": scenario.count,
        "workers": workers,
        "span": last - first,
        "rate": scenario.count / (last - first),
        "wall": wall,
    }


def _started_at(scenario: Scenario, ident: object) -> float | None:
    if scenario.engine == "taskcenter":
        from taskcenter.models import TaskExecution

        started = (
            TaskExecution.objects.filter(task_id=ident)
            .order_by("started_at")
            .values_list("started_at", flat=True)
            .first()
        )
    else:
        from django_tasks_db.models import DBTaskResult

        started = DBTaskResult.objects.filter(pk=ident).values_list("started_at", flat=True).first()
    return started.timestamp() if started else None


def _wait_started(scenario: Scenario, idents: list, process: subprocess.Popen) -> list[float]:
    deadline = time.monotonic() + 60
    while True:
        started = [_started_at(scenario, ident) for ident in idents]
        if all(value is not None for value in started):
            return started  # type: ignore[return-value]
        if process.poll() is not None or time.monotonic() > deadline:
            return []
        time.sleep(0.05)


def _drive_latency(scenario: Scenario, owner: object, log_dir: Path) -> dict:
    import random

    process, log = _start_worker(scenario, log_dir)
    try:
        # Warm up: the worker is up and idle once it has run one job and the poll loop resumed.
        if not _wait_started(scenario, [_enqueue_one(scenario, owner)], process):
            _fail("worker did not start the warm-up job", log_dir, scenario)
        time.sleep(1.5)
        idents, before, after = [], [], []
        for _ in range(scenario.count):
            before.append(time.time())
            idents.append(_enqueue_one(scenario, owner))
            after.append(time.time())
            time.sleep(random.uniform(0.1, 0.2))
        started = _wait_started(scenario, idents, process)
        if not started:
            _fail("not every job was started", log_dir, scenario)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    # From the commit (create_task returned) to RUNNING; the create call itself is reported too.
    latencies = sorted((s - a) * 1000 for s, a in zip(started, after, strict=True))
    create_ms = statistics.median((a - b) * 1000 for b, a in zip(before, after, strict=True))
    return {
        "count": scenario.count,
        "p50": statistics.median(latencies),
        "p95": latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))],
        "max": latencies[-1],
        "create_ms": create_ms,
    }


def drive(scenario: Scenario, log_dir: Path, workers: int = 1) -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    owner = get_user_model().objects.create_user("bench", password=None)
    if scenario.mode == "throughput":
        return _drive_throughput(scenario, owner, log_dir, workers)
    return _drive_latency(scenario, owner, log_dir)


# --- the orchestrator ------------------------------------------------------------------------


def run_scenario(
    scenario: Scenario, database_url: str | None, quick: bool, options: tuple[str, ...] = ()
) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"tc-bench-{scenario.key}-"))
    try:
        if database_url:
            _fresh_postgres(database_url)
            url = database_url
        else:
            url = f"sqlite:///{tmp}/bench.sqlite3"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "LOG_LEVEL": "WARNING",
            "TASKCENTER_VAR_DIR": str(tmp),
            "DATABASE_URL": url,
            "PYTHONPATH": str(ROOT),
            "TASKCENTER_DEMO_KINDS": "true",
        }
        env.pop("DEBUG", None)
        command = [sys.executable, str(Path(__file__).resolve()), "--driver", scenario.key]
        if quick:
            command.append("--quick")
        command += options
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:])
            raise SystemExit(f"{scenario.label}: driver failed ({done.returncode})")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _better(result: dict, best: dict) -> bool:
    if "rate" in result:
        return result["rate"] > best["rate"]
    return result["p50"] < best["p50"]


def _database_description(database_url: str | None) -> str:
    if not database_url:
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version} (WAL, fresh file per scenario)"
    connection, name = _postgres_admin(database_url)
    with connection:
        version = connection.execute("SHOW server_version").fetchone()[0]
    return f"PostgreSQL {version} (database {name!r}, recreated per scenario)"


def _load() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "?"


def _versions() -> str:
    return versions("Django", "django-tasks", "django-tasks-db", "psycopg")


def print_report(results: dict[str, dict], database_url: str | None) -> bool:
    def rate(key: str) -> float:
        return results[key]["rate"]

    rows = []
    ok = True

    def throughput_row(key: str, label: str, base: str | None, target: float | None) -> None:
        nonlocal ok
        result = results[key]
        ratio, verdict = "", ""
        if base:
            value = rate(key) / rate(base)
            ratio = f"{value:.2f}x"
            if target is not None:
                verdict = f">= {target:g}x: {'PASS' if value >= target else 'FAIL'}"
                ok = ok and value >= target
        wall = f"{result['wall']:.2f}"
        rows.append((label, str(result["count"]), f"{rate(key):.1f}", ratio, wall, verdict))

    throughput_row("a_tc", "(a) no-op, run_worker -c 1", "a_raw", 1.0)
    throughput_row("a_raw", "(a) no-op, raw db_worker", None, None)
    throughput_row("b_tc", "(b) sleep 100 ms, run_worker -c 16", "b_raw", 10.0)
    throughput_row("b_raw", "(b) sleep 100 ms, raw db_worker", None, None)

    print_table(("scenario", "N", "tasks/s", "vs raw", "wall s", "target"), rows)

    print()
    lat_rows = []
    for key, label in (
        ("c_tc", "(c) run_worker, default --interval"),
        ("c_raw_1", "(c) raw db_worker --interval 1 (default)"),
        ("c_raw_002", "(c) raw db_worker --interval 0.02"),
    ):
        result = results[key]
        verdict = ""
        if key == "c_tc":
            passed = result["p50"] < 50
            ok = ok and passed
            verdict = f"p50 < 50 ms: {'PASS' if passed else 'FAIL'}"
        lat_rows.append(
            (
                label,
                str(result["count"]),
                f"{result['p50']:.1f}",
                f"{result['p95']:.1f}",
                f"{result['max']:.1f}",
                f"{result['create_ms']:.1f}",
                verdict,
            )
        )
    headers = ("enqueue -> RUNNING latency", "N", "p50 ms", "p95 ms", "max ms", "enqueue ms")
    print_table((*headers, "target"), lat_rows)
    print()
    print(
        "tasks/s: N / (first engine job started_at -> last finished_at), in-database timestamps; "
        "wall: worker process lifetime incl. start-up. latency: enqueue call returned (committed) "
        "-> started_at of the execution (ours) or engine job (raw); 'enqueue ms' is the median "
        "create_task/enqueue call itself."
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Smaller N (rougher numbers).")
    parser.add_argument(
        "--database-url",
        default=None,
        help="Run on this PostgreSQL database instead of SQLite (dropped and re-created).",
    )
    parser.add_argument(
        "--only", default="", help="Comma-separated scenario keys (a_tc,a_raw,b_tc,...)."
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Run every scenario this many times and keep the best (for a busy machine).",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Worker processes per throughput scenario, side by side on one backlog.",
    )
    parser.add_argument(
        "--count", type=int, default=None, help="Backlog of each throughput scenario."
    )
    parser.add_argument("--driver", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    by_key = {scenario.key: scenario for scenario in scenarios(args.quick)}
    if args.count:
        by_key = {
            key: replace(scenario, count=args.count) if scenario.mode == "throughput" else scenario
            for key, scenario in by_key.items()
        }

    if args.driver:
        log_dir = Path(os.environ["TASKCENTER_VAR_DIR"])
        print(json.dumps(drive(by_key[args.driver], log_dir, args.workers)))
        return

    if args.database_url and not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url must be a postgres:// URL (SQLite is the default)")
    wanted = [key for key in args.only.split(",") if key] or list(by_key)
    print(
        f"Machine: {platform.machine()} {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} cores; {_versions()}"
    )
    print(f"Database: {_database_description(args.database_url)}; settings {SETTINGS}")
    print(f"Best of {max(1, args.repeat)} run(s) per scenario; load average {_load()}")
    if args.workers != 1:
        print(f"{args.workers} worker processes per throughput scenario")
    options = ("--workers", str(args.workers))
    if args.count:
        options += ("--count", str(args.count))
    print()
    results = {}
    try:
        for _ in range(max(1, args.repeat)):
            for key in wanted:
                started = time.perf_counter()
                result = run_scenario(by_key[key], args.database_url, args.quick, options)
                took = time.perf_counter() - started
                print(f"  ran {by_key[key].label} in {took:.1f} s", file=sys.stderr)
                if key not in results or _better(result, results[key]):
                    results[key] = result
    finally:
        if args.database_url:
            _drop_postgres(args.database_url)
    if set(wanted) != set(by_key):
        print(json.dumps(results, indent=2))
        return
    print()
    ok = print_report(results, args.database_url)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
