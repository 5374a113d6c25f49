"""Do more workers do more work? A backlog drained by 1, 2, 4 and 8 ``run_worker`` processes.

    .venv/bin/python bench/scale.py [--postgres-url postgres://.../tc_scale] [--sqlite]
        [--rq-url redis://127.0.0.1:6379/12] [--workers 1,2,4,8] [--shapes noop,sleep]
        [--mixes spread,one] [--repeat 2] [--noop-count 3000] [--sleep-count 1600]

For each database, task shape, mix and number of workers: a fresh database (a new SQLite file,
or the PostgreSQL database of ``--postgres-url`` dropped and created), migrated, a backlog
created (``lifecycle.create_tasks``), then N ``run_worker --exit-when-idle`` processes started
together on it. The rate is the backlog over the span of its executions (first ``started_at`` to
last ``completed_at``, written by the workers), so the start-up of the first worker is left out,
but not the later ones': a second table gives the rate from the moment the last worker took its
first task (tasks completed after it, over the time after it), when N workers run. Every task
must end COMPLETED.

Shapes: ``noop`` (returns at once; ``--concurrency 1`` per process: the cost of the lifecycle
itself) and ``sleep`` (100 ms without touching the database, like a handler waiting on a
platform; ``--concurrency 16`` per process). Mixes: ``spread`` (16 owners, 8 kinds on 8
platforms: the statistics tallies and indexes see many keys) and ``one`` (one owner, one kind,
one platform: every status change counts on the same tally key, the worst case for contention).

``--forked`` starts the N workers as one ``run_worker --processes N``: one process starts Django
and forks the N workers, which then begin together.

``--rq-url`` adds the RQ engine (``TASKS_BACKEND=rq``, the Redis database flushed before each
run, the tasks' rows in a fresh SQLite file): the same backlog, the same ``run_worker`` processes.

The machine's cores are shared by the workers and the database server; the table says how many.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from report import print_table, versions  # sibling module: these files run as scripts
from worker_throughput import _fresh_postgres, _load, _postgres_admin

ROOT = Path(__file__).resolve().parent.parent
WORKER_TIMEOUT = 600.0
OWNERS = {"spread": 16, "one": 1}
CONCURRENCY = {"noop": 1, "sleep": 16}


@dataclass(frozen=True)
class Run:
    database: str  # "sqlite", "postgresql" or "rq" (the RQ engine, its rows in SQLite)
    shape: str
    mix: str
    workers: int
    count: int
    # One ``run_worker --processes N`` (forked from one start) instead of N commands.
    forked: bool = False


# --- the driver: inside a subprocess bound to one fresh database -----------------------------


def _seed(run: Run) -> None:
    from django.contrib.auth import get_user_model

    from bench.scale_kinds import KINDS, noop_kind, sleep_kind
    from taskcenter import lifecycle

    owners = [
        get_user_model().objects.create_user(f"scale-{number}", password=None)
        for number in range(OWNERS[run.mix])
    ]
    name = noop_kind if run.shape == "noop" else sleep_kind
    kinds = [name(number) for number in range(KINDS if run.mix == "spread" else 1)]
    items = [
        {"owner": owners[i % len(owners)], "task_type": kinds[i % len(kinds)], "start": True}
        for i in range(run.count)
    ]
    for start in range(0, len(items), 1000):
        lifecycle.create_tasks(items[start : start + 1000])


def _drain(run: Run, log_dir: Path) -> dict:
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "run_worker",
        *("--concurrency", str(CONCURRENCY[run.shape])),
        "--exit-when-idle",
    ]
    if run.forked:
        command += ["--processes", str(run.workers)]
    commands = 1 if run.forked else run.workers
    logs = [(log_dir / f"worker-{n}.log").open("w") for n in range(commands)]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT) for log in logs
    ]
    try:
        deadline = time.monotonic() + WORKER_TIMEOUT
        codes = [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
    wall = time.perf_counter() - started
    if any(codes):
        tails = "\n".join(p.read_text()[-2000:] for p in sorted(log_dir.glob("worker-*.log")))
        raise SystemExit(f"worker exit codes {codes}\n{tails}")
    return {"wall": wall}


def drive(run: Run, log_dir: Path) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db.models import Max, Min

    from taskcenter.models import Status, Task, TaskExecution

    call_command("migrate", verbosity=0, interactive=False)
    _seed(run)
    result = _drain(run, log_dir)
    unfinished = Task.objects.exclude(status=Status.COMPLETED).count()
    if unfinished:
        raise SystemExit(f"{unfinished} task(s) did not complete")
    span = TaskExecution.objects.aggregate(first=Min("started_at"), last=Max("completed_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    # Workers started together do not take their first task together: each spends about a
    # second of CPU starting, and the first to run takes CPU from the others' start. From the
    # moment the last of them took its first task, all of them run: the rate of that stretch is
    # the rate of N running workers, start-up left out.
    starts = (
        TaskExecution.objects.values("worker_id")
        .annotate(first=Min("started_at"))
        .values_list("first", flat=True)
    )
    all_running = max(starts)
    tail = (span["last"] - all_running).total_seconds()
    done = TaskExecution.objects.filter(completed_at__gt=all_running).count()
    return {
        **result,
        "span": seconds,
        "rate": run.count / seconds,
        "stagger": (all_running - span["first"]).total_seconds(),
        "running_rate": done / tail if tail > 0 and done else run.count / seconds,
    }


# --- the orchestrator ------------------------------------------------------------------------


def measure(run: Run, postgres_url: str | None, rq_url: str | None = None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="tc-scale-"))
    engine: dict[str, str] = {}
    if run.database == "rq":
        from redis import Redis

        assert rq_url
        Redis.from_url(rq_url).flushdb()
        engine = {"TASKS_BACKEND": "rq", "REDIS_URL": rq_url}
    if run.database == "postgresql":
        assert postgres_url
        _fresh_postgres(postgres_url)
        url = postgres_url
    else:
        url = f"sqlite:///{tmp}/scale.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "taskcenter.settings",
        "LOG_LEVEL": "WARNING",
        "TASKCENTER_VAR_DIR": str(tmp),
        "DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
        "TASKCENTER_KIND_MODULES": "bench.scale_kinds",
        **engine,
    }
    env.pop("DEBUG", None)
    if not engine:
        env.pop("TASKS_BACKEND", None)
    command = [sys.executable, __file__, "--driver", json.dumps(asdict(run)), "--log-dir", str(tmp)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:])
        raise SystemExit(f"{run}: driver failed ({done.returncode})")
    subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _database_label(database: str, postgres_url: str | None, rq_url: str | None) -> str:
    if database == "rq":
        from redis import Redis

        assert rq_url
        return "RQ engine on Redis " + Redis.from_url(rq_url).info("server")["redis_version"]
    if database == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    assert postgres_url
    connection, _ = _postgres_admin(postgres_url)
    with connection:
        return "PostgreSQL " + connection.execute("SHOW server_version").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--sqlite", action="store_true", help="Also SQLite (default without PG).")
    parser.add_argument("--rq-url", default=None, help="Also the RQ engine on this Redis db.")
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--shapes", default="noop,sleep")
    parser.add_argument("--mixes", default="spread,one")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--noop-count", type=int, default=3000)
    parser.add_argument("--sleep-count", type=int, default=1600)
    parser.add_argument(
        "--forked",
        action="store_true",
        help="Start the N workers as one run_worker --processes N (forked from one start).",
    )
    parser.add_argument("--driver", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--log-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.driver:
        print(json.dumps(drive(Run(**json.loads(args.driver)), Path(args.log_dir))))
        return

    databases = (
        (["sqlite"] if args.sqlite or not (args.postgres_url or args.rq_url) else [])
        + (["postgresql"] if args.postgres_url else [])
        + (["rq"] if args.rq_url else [])
    )
    workers = [int(n) for n in args.workers.split(",")]
    counts = {"noop": args.noop_count, "sleep": args.sleep_count}
    load_before = _load()
    rows: list[tuple[str, ...]] = []
    running_rows: list[tuple[str, ...]] = []
    for database in databases:
        for shape in args.shapes.split(","):
            for mix in args.mixes.split(","):
                rates: dict[int, list[float]] = {n: [] for n in workers}
                running: dict[int, list[float]] = {n: [] for n in workers}
                # Alternate the orders of the worker counts, so drift in the machine's load
                # does not favour one of them.
                for repeat in range(args.repeat):
                    for n in workers if repeat % 2 == 0 else reversed(workers):
                        run = Run(database, shape, mix, n, counts[shape], args.forked)
                        result = measure(run, args.postgres_url, args.rq_url)
                        rates[n].append(result["rate"])
                        running[n].append(result["running_rate"])
                        print(
                            f"  {run}: {result['rate']:.1f}/s; every worker running "
                            f"{result['running_rate']:.1f}/s (the last started "
                            f"{result['stagger']:.3f} s after the first)",
                            file=sys.stderr,
                        )
                rows.append(_row(database, shape, mix, workers, rates))
                running_rows.append(_row(database, shape, mix, workers, running))
    print()
    print(
        f"Backlog drain, tasks/s (median of {args.repeat}, min-max); {os.cpu_count()} cores "
        f"shared with the database server; load average before: {load_before}, after: {_load()}"
    )
    print(", ".join(_database_label(d, args.postgres_url, args.rq_url) for d in databases))
    print(
        "N workers: one `run_worker --processes N`"
        if args.forked
        else "N workers: N `run_worker` commands started together"
    )
    print(versions("Django", "django-tasks", "django-tasks-db", "psycopg"))
    print()
    headers = (
        "database",
        "shape (-c per process)",
        "mix",
        *(f"{n} worker{'s' if n > 1 else ''}" for n in workers),
        *(f"{n}/{workers[0]}" for n in workers[1:]),
    )
    print_table(headers, rows)
    print()
    print(
        "The same runs from the moment every worker had taken its first task (the rate of N "
        "running workers; the table above also counts the time the later ones spent starting)"
    )
    print()
    print_table(headers, running_rows)


def _row(database, shape, mix, workers, rates) -> tuple[str, ...]:
    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"

    base = statistics.median(rates[workers[0]])
    ratios = [f"{statistics.median(rates[n]) / base:.2f}x" for n in workers[1:]]
    shape_label = f"{shape} (-c {CONCURRENCY[shape]})"
    return (database, shape_label, mix, *(cell(rates[n]) for n in workers), *ratios)


if __name__ == "__main__":
    main()
