"""Worker throughput on the RQ engine: Task Center's ``run_worker`` against RQ's own worker.

    REDIS_URL=redis://127.0.0.1:6379/12 .venv/bin/python bench/rq_throughput.py \\
        [--count 1000] [--sleep-count 320] [--repeat 5] [--database-url postgres://...]

The Redis database in ``REDIS_URL`` is flushed before each run. Each run gets a fresh database
(a SQLite file, or with ``--database-url`` that PostgreSQL database dropped and re-created) and
a flushed Redis, has all of its jobs enqueued first, then one worker process works the queue
until it is empty. Three workers, on two shapes of job (no-op, and a 100 ms sleep that stands
for a handler waiting on a platform):

- ``run_worker -c 1`` and ``run_worker -c 16`` with ``TASKS_BACKEND=rq``: ``demo.noop`` /
  ``demo.sleep`` tasks through the full lifecycle (claim, execution, events, complete); the
  span is the first execution's start to the last one's end, read from the database.
- django-rq's ``rqworker --burst`` with RQ's ``SimpleWorker`` (no fork per job, as ours): the
  same number of plain ``django_tasks`` jobs (``bench.jobs.noop`` / ``bench.jobs.sleep_100ms``)
  on the same Redis, its Django on the same kind of database; the span comes from the jobs' own
  start and end times in Redis.

The table gives the median rate of the ``--repeat`` runs and their spread (lowest-highest), and
each worker's median against ``SimpleWorker``'s. The targets: no-op jobs at ``-c 1`` at least
1.0x, 100 ms jobs at ``-c 16`` at least 10x. Each run drives its worker from a subprocess of its
own (``--driver``) because Django reads its settings once.
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
from dataclasses import dataclass
from pathlib import Path

from report import drop_postgres, fresh_postgres, print_table, versions  # sibling module

ROOT = Path(__file__).resolve().parent.parent
WORKER_TIMEOUT = 900


@dataclass(frozen=True)
class Side:
    key: str
    label: str
    concurrency: int | None  # None: RQ's SimpleWorker


SIDES = (
    Side("tc-1", "run_worker -c 1 (full lifecycle)", 1),
    Side("tc-16", "run_worker -c 16 (full lifecycle)", 16),
    Side("rq", "rqworker --burst, SimpleWorker", None),
)
SHAPES = {"noop": "no-op jobs", "sleep": "100 ms jobs"}
# What each side must reach against SimpleWorker, per shape.
TARGETS = {("noop", "tc-1"): 1.0, ("sleep", "tc-16"): 10.0}


def _worker(command: list[str], env: dict[str, str], log: Path) -> float:
    started = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *command],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=WORKER_TIMEOUT,
        )
    if done.returncode != 0:
        raise SystemExit(f"worker failed ({done.returncode}):\n{log.read_text()[-3000:]}")
    return time.monotonic() - started


def drive(side: Side, shape: str, count: int, log_dir: Path) -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    env = {**os.environ}
    if side.concurrency is not None:
        from taskcenter import lifecycle
        from taskcenter.models import TaskExecution

        owner = get_user_model().objects.create_user("bench", password=None)
        kind, parameters = ("demo.noop", None) if shape == "noop" else ("demo.sleep", {"ms": 100})
        for _ in range(count):
            lifecycle.create_task(owner=owner, task_type=kind, parameters=parameters, start=True)
        command = ["run_worker", "--exit-when-idle", "--concurrency", str(side.concurrency)]
        wall = _worker(command, env, log_dir / f"{side.key}.log")
        times = TaskExecution.objects.filter(status="COMPLETED")
        done = times.count()
        first = min(times.values_list("started_at", flat=True))
        last = max(times.values_list("completed_at", flat=True))
    else:
        import django_rq
        from rq.job import Job

        from bench.jobs import noop, sleep_100ms

        job = noop if shape == "noop" else sleep_100ms
        ids = [job.enqueue().id for _ in range(count)]
        wall = _worker(
            [
                "rqworker",
                "default",
                "--burst",
                "--worker-class",
                "rq.SimpleWorker",
                "--job-class",
                "django_tasks_rq.backend.Job",
            ],
            env,
            log_dir / "rq.log",
        )
        jobs = Job.fetch_many(ids, connection=django_rq.get_connection("default"))
        finished = [job for job in jobs if job is not None and job.ended_at is not None]
        done = len(finished)
        first = min(job.started_at for job in finished)
        last = max(job.ended_at for job in finished)
    span = (last - first).total_seconds()
    return {"count": done, "span": span, "rate": done / span, "wall": wall}


def run_side(side: Side, shape: str, count: int, redis_url: str, database_url: str | None) -> dict:
    from redis import Redis

    Redis.from_url(redis_url).flushdb()
    with tempfile.TemporaryDirectory(prefix=f"tc-rq-bench-{side.key}-") as tmp:
        if database_url:
            fresh_postgres(database_url)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "taskcenter.settings",
            "LOG_LEVEL": "WARNING",
            "TASKCENTER_VAR_DIR": tmp,
            "DATABASE_URL": database_url or f"sqlite:///{tmp}/bench.sqlite3",
            "TASKS_BACKEND": "rq",
            "TASKCENTER_DEMO_KINDS": "true",
            "REDIS_URL": redis_url,
            "PYTHONPATH": str(ROOT),
        }
        env.pop("DEBUG", None)
        command = [sys.executable, str(Path(__file__).resolve()), "--driver", side.key]
        command += ["--shape", shape, "--count", str(count)]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:])
            raise SystemExit(f"{side.key} {shape}: driver failed ({done.returncode})")
        return json.loads(done.stdout.strip().splitlines()[-1])


def _database_description(database_url: str | None) -> str:
    if not database_url:
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version} (WAL), a fresh file per run"
    return f"PostgreSQL {database_url.rsplit('/', 1)[-1]!r}, re-created per run"


def print_report(rates: dict[tuple[str, str], list[float]], counts: dict[str, int]) -> bool:
    ok = True
    rows = []
    for shape, shape_label in SHAPES.items():
        if (shape, "rq") not in rates:
            continue
        base = statistics.median(rates[(shape, "rq")])
        for side in SIDES:
            runs = rates.get((shape, side.key))
            if not runs:
                continue
            median = statistics.median(runs)
            ratio = median / base
            target = TARGETS.get((shape, side.key))
            verdict = ""
            if target is not None:
                met = ratio >= target
                ok = ok and met
                verdict = f">= {target:g}x: {'met' if met else 'MISSED'}"
            rows.append(
                (
                    f"{shape_label} ({counts[shape]})",
                    side.label,
                    f"{median:.0f}",
                    f"{min(runs):.0f}-{max(runs):.0f}",
                    f"{ratio:.2f}x",
                    verdict,
                )
            )
    print_table(("jobs", "worker", "jobs/s (median)", "spread", "vs SimpleWorker", "target"), rows)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="No-op jobs per run (1000).")
    parser.add_argument(
        "--sleep-count", type=int, default=320, help="100 ms jobs per run (320: 32 s on RQ)."
    )
    parser.add_argument("--repeat", type=int, default=3, help="Runs per worker and shape (3).")
    parser.add_argument("--shapes", default="noop,sleep", help="noop,sleep (both).")
    parser.add_argument(
        "--database-url",
        default=None,
        help="Run both sides on this PostgreSQL database (dropped and re-created per run) "
        "instead of a fresh SQLite file.",
    )
    parser.add_argument("--driver", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--shape", default="noop", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sides = {side.key: side for side in SIDES}
    if args.driver:
        log_dir = Path(os.environ["TASKCENTER_VAR_DIR"])
        print(json.dumps(drive(sides[args.driver], args.shape, args.count, log_dir)))
        return
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        parser.error("set REDIS_URL to a Redis database this bench may flush")
    if args.database_url and not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url must be a postgres:// URL (SQLite is the default)")
    shapes = [shape for shape in args.shapes.split(",") if shape]
    if not set(shapes) <= set(SHAPES):
        parser.error(f"--shapes: choose from {','.join(SHAPES)}")
    counts = {"noop": args.count, "sleep": args.sleep_count}
    print(versions("Django", "django-tasks", "django-tasks-rq", "django-rq", "rq", "redis"))
    print(
        f"Redis {redis_url}; {_database_description(args.database_url)}; "
        f"{args.repeat} run(s) each, interleaved; {os.cpu_count()} cores\n"
    )
    rates: dict[tuple[str, str], list[float]] = {}
    try:
        for _ in range(max(1, args.repeat)):
            for shape in shapes:
                for side in SIDES:
                    result = run_side(side, shape, counts[shape], redis_url, args.database_url)
                    finished, wanted = result["count"], counts[shape]
                    if finished != wanted:
                        raise SystemExit(f"{side.key} {shape}: {finished} of {wanted} jobs ran")
                    rates.setdefault((shape, side.key), []).append(result["rate"])
                    print(
                        f"  {side.key} {shape}: {result['rate']:.0f} jobs/s "
                        f"(span {result['span']:.2f} s, process {result['wall']:.1f} s)",
                        file=sys.stderr,
                    )
    finally:
        if args.database_url:
            drop_postgres(args.database_url)
    ok = print_report(rates, counts)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
