"""Wake-up latency: how soon an idle worker starts a task after its enqueue commits, and what
the idle worker costs in CPU meanwhile.

    .venv/bin/python bench/wakeup_latency.py \\
        [--postgres-url postgres://taskcenter:taskcenter@127.0.0.1:5432/tc_wakeups] \\
        [--redis-url redis://127.0.0.1:6379/14] [--count 200] [--repeat 3] [--idle-seconds 30]

For each database (SQLite; PostgreSQL and RQ when their URL is given; the PostgreSQL database is
dropped and created again, the Redis database flushed) one driver subprocess migrates a fresh
database and then, for each mode in turn (the order alternates between repeats):

1. starts one ``run_worker`` process (default ``--concurrency``), lets it run one warm-up task
   and settle;
2. reads the worker's CPU time (``/proc/<pid>/stat``, all of its threads) over
   ``--idle-seconds`` of doing nothing: the idle CPU, in % of one core;
3. creates ``--count`` ``demo.noop`` tasks one at a time (``lifecycle.create_task(start=True)``),
   50-150 ms apart, and takes the time right after each task's COMMIT, before the engine job is
   written and announced (an ``on_commit`` callback that runs first): the latency is the
   execution's ``started_at`` (written by the worker as it claims the task) minus that time.
   The latency from ``create_task`` returning (the task and its engine job committed, the
   workers told: what a peer's enqueue call returning means) is printed too; a woken worker
   can start the task before the call has returned.

Modes: ``polling`` is the worker as it was before wake-ups (``TASKCENTER_WAKEUPS=false`` on
both sides, a poll every ``--interval`` 0.02 s); ``wakeups`` is the default (PostgreSQL
LISTEN/NOTIFY, a local socket on SQLite, a safety poll every second). RQ has one mode: its
worker blocks on Redis (``BLPOP``) and needs no wake-up of ours.

Other work on the machine shares its cores: the figures of each run are printed, then the
median of the runs with their spread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import percentile, print_table, versions  # sibling module: run as a script
from report import postgres_admin as _postgres_admin

ROOT = Path(__file__).resolve().parent.parent
MODES = {
    "polling": {"TASKCENTER_WAKEUPS": "false"},
    "wakeups": {"TASKCENTER_WAKEUPS": "true"},
    "rq": {},
}
LABELS = {
    "polling": "polling every 20 ms (before)",
    "wakeups": "wake-ups, safety poll 1 s (after)",
    "rq": "RQ worker (BLPOP)",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --- the driver: one database, every mode, in a subprocess ------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and all its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def started_at(task_id: int) -> float | None:
    from taskcenter.models import TaskExecution

    started = (
        TaskExecution.objects.filter(task_id=task_id)
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    return started.timestamp() if started else None


def wait_started(task_ids: list[int], worker: subprocess.Popen, timeout: float) -> list[float]:
    deadline = time.monotonic() + timeout
    while True:
        found = [started_at(task_id) for task_id in task_ids]
        if all(value is not None for value in found):
            return found  # type: ignore[return-value]
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"only {sum(v is not None for v in found)}/{len(found)} started")
        time.sleep(0.05)


def measure_mode(mode: str, owner: object, args: argparse.Namespace, log: Path) -> dict:
    from django.conf import settings
    from django.db import transaction

    from taskcenter import lifecycle

    # The enqueuing side follows the mode too: before wake-ups nothing was announced.
    settings.TASKCENTER["WAKEUPS"] = mode != "polling"
    env = {**os.environ, **MODES[mode]}
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "run_worker"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            warm_up = lifecycle.create_task(owner=owner, task_type="demo.noop", start=True)
            wait_started([warm_up.pk], worker, timeout=120)
            time.sleep(2.0)  # let the pool, the listener and the first reaper pass settle

            cpu_before, wall_before = cpu_seconds(worker.pid), time.monotonic()
            time.sleep(args.idle_seconds)
            idle_cpu = (cpu_seconds(worker.pid) - cpu_before) / (time.monotonic() - wall_before)

            task_ids: list[int] = []
            committed: list[float] = []
            returned: list[float] = []
            create_ms: list[float] = []
            for _ in range(args.count):
                before = time.time()
                with transaction.atomic():
                    # Runs first of the commit's callbacks: right after the task's COMMIT,
                    # before the engine job is written and announced.
                    transaction.on_commit(lambda: committed.append(time.time()))
                    task = lifecycle.create_task(owner=owner, task_type="demo.noop", start=True)
                returned.append(time.time())
                task_ids.append(task.pk)
                create_ms.append((returned[-1] - before) * 1000)
                time.sleep(random.uniform(0.05, 0.15))
            started = wait_started(task_ids, worker, timeout=120)
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
    latencies = [(s - c) * 1000 for s, c in zip(started, committed, strict=True)]
    after_return = [(s - r) * 1000 for s, r in zip(started, returned, strict=True)]
    return {
        "mode": mode,
        "count": len(latencies),
        "p50": percentile(latencies, 0.50),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
        "p50_return": percentile(after_return, 0.50),
        "p95_return": percentile(after_return, 0.95),
        "idle_cpu": idle_cpu * 100,
        "create_ms": statistics.median(create_ms),
    }


def drive(modes: list[str], args: argparse.Namespace) -> list[dict]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    owner = get_user_model().objects.create_user("bench", password=None)
    log_dir = Path(os.environ["TASKCENTER_VAR_DIR"])
    return [measure_mode(mode, owner, args, log_dir / f"worker-{mode}.log") for mode in modes]


# --- the orchestrator --------------------------------------------------------------------------


def _recreate_postgres(url: str, *, create: bool = True) -> None:
    connection, name = _postgres_admin(url)
    with connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            connection.execute(f'CREATE DATABASE "{name}"')


def run_database(database: str, modes: list[str], args: argparse.Namespace) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix=f"tc-wakeup-{database}-"))
    try:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "taskcenter.settings",
            "LOG_LEVEL": "WARNING",
            "TASKCENTER_VAR_DIR": str(tmp),
            "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            "PYTHONPATH": str(ROOT),
            "TASKCENTER_DEMO_KINDS": "true",
        }
        env.pop("DEBUG", None)
        if database == "postgresql":
            _recreate_postgres(args.postgres_url)
            env["DATABASE_URL"] = args.postgres_url
        elif database == "rq":
            from redis import Redis

            Redis.from_url(args.redis_url).flushdb()
            env.update(TASKS_BACKEND="rq", REDIS_URL=args.redis_url)
        command = [sys.executable, str(Path(__file__).resolve()), "--driver", ",".join(modes)]
        command += ["--count", str(args.count), "--idle-seconds", str(args.idle_seconds)]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            logs = "".join(
                f"--- {log.name} ---\n{log.read_text()[-2000:]}\n" for log in tmp.glob("*.log")
            )
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:] + logs)
            raise SystemExit(f"{database}: driver failed ({done.returncode})")
        results = json.loads(done.stdout.strip().splitlines()[-1])
        for result in results:
            result["database"] = database
        return results
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _database_label(database: str, args: argparse.Namespace) -> str:
    if database == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    if database == "postgresql":
        connection, _ = _postgres_admin(args.postgres_url)
        with connection:
            version = connection.execute("SHOW server_version").fetchone()[0].split()[0]
        return f"PostgreSQL {version}"
    from redis import Redis

    return f"RQ, Redis {Redis.from_url(args.redis_url).info()['redis_version']}"


def _spread(values: list[float], digits: int = 1) -> str:
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:.{digits}f}"
    return f"{middle:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def print_report(results: list[dict], labels: dict[str, str]) -> None:
    print_table(
        (
            *("run", "database", "mode", "N", "p50 ms", "p95 ms", "p99 ms", "max ms"),
            *("p50 / p95 from return", "idle CPU %"),
        ),
        [
            (
                str(r["run"]),
                labels[r["database"]],
                LABELS[r["mode"]],
                str(r["count"]),
                f"{r['p50']:.2f}",
                f"{r['p95']:.2f}",
                f"{r['p99']:.2f}",
                f"{r['max']:.1f}",
                f"{r['p50_return']:.2f} / {r['p95_return']:.2f}",
                f"{r['idle_cpu']:.2f}",
            )
            for r in results
        ],
    )
    print()
    groups: dict[tuple[str, str], list[dict]] = {}
    for result in results:
        groups.setdefault((result["database"], result["mode"]), []).append(result)
    print_table(
        (
            *("database", "mode", "runs", "p50 ms", "p95 ms", "p99 ms"),
            *("p50 from return", "p95 from return", "idle CPU %", "create ms"),
        ),
        [
            (
                labels[database],
                LABELS[mode],
                str(len(runs)),
                _spread([r["p50"] for r in runs]),
                _spread([r["p95"] for r in runs]),
                _spread([r["p99"] for r in runs]),
                _spread([r["p50_return"] for r in runs]),
                _spread([r["p95_return"] for r in runs]),
                _spread([r["idle_cpu"] for r in runs], 2),
                _spread([r["create_ms"] for r in runs]),
            )
            for (database, mode), runs in groups.items()
        ],
    )
    print(
        "\nmedian of the runs (lowest-highest). Latency: the task's COMMIT (before its engine job "
        "is written) -> the execution's started_at; 'from return': create_task returned (task "
        "and engine job committed, workers told) -> started_at, which a worker may beat. Idle "
        "CPU: the worker process over the idle period, % of one core. create ms: the median "
        "create_task call, dispatch included."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="Tasks per run (default 200).")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per database (default 3).")
    parser.add_argument(
        "--idle-seconds", type=float, default=30.0, help="Idle CPU window (default 30)."
    )
    parser.add_argument(
        "--postgres-url", default="", help="PostgreSQL database to drop, create and use."
    )
    parser.add_argument("--redis-url", default="", help="Redis database to flush and use (RQ).")
    parser.add_argument(
        "--only", default="", help="Comma-separated databases: sqlite,postgresql,rq."
    )
    parser.add_argument("--driver", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.driver:
        print(json.dumps(drive(args.driver.split(","), args)))
        return

    databases = ["sqlite"]
    if args.postgres_url:
        databases.append("postgresql")
    if args.redis_url:
        databases.append("rq")
    if args.only:
        databases = [d for d in databases if d in args.only.split(",")]
    labels = {database: _database_label(database, args) for database in databases}
    print(
        f"Machine: {platform.machine()} {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} cores shared with other work (load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}); "
        f"{versions('Django', 'django-tasks-db', 'psycopg', 'rq', 'redis')}"
    )
    print(
        f"{args.count} tasks per run, 50-150 ms apart; idle CPU over {args.idle_seconds:g} s; "
        f"{args.repeat} run(s); {', '.join(labels.values())}\n"
    )
    results: list[dict] = []
    try:
        for run in range(1, args.repeat + 1):
            for database in databases:
                modes = ["rq"] if database == "rq" else ["polling", "wakeups"]
                if run % 2 == 0:
                    modes.reverse()  # alternate, so a drift in the machine's load evens out
                started = time.perf_counter()
                for result in run_database(database, modes, args):
                    result["run"] = run
                    results.append(result)
                took = time.perf_counter() - started
                print(f"  run {run}: {labels[database]} in {took:.0f} s", file=sys.stderr)
    finally:
        if args.postgres_url:
            _recreate_postgres(args.postgres_url, create=False)
    print_report(results, labels)


if __name__ == "__main__":
    main()
