"""Worker throughput on the RQ engine: Task Center's ``run_worker`` against RQ's own worker.

    REDIS_URL=redis://127.0.0.1:6379/12 .venv/bin/python bench/rq_throughput.py [--count N]

The Redis database in ``REDIS_URL`` is flushed before each run. Each side gets a fresh SQLite
file and Redis database, has all of its jobs enqueued first, then one worker process works the
queue until it is empty:

- Task Center: ``demo.noop`` tasks through the full lifecycle (claim, execution, events,
  complete) on ``run_worker`` with ``TASKS_BACKEND=rq``; the span is the first execution's start
  to the last one's end, read from the database.
- RQ: the same number of no-op ``django_tasks`` jobs (``bench.jobs.noop``) on django-rq's
  ``rqworker --burst`` with RQ's ``SimpleWorker`` (no fork per job, as ours); the span comes
  from the jobs' own start and end times in Redis.

Each side runs in its own driver subprocess (``--driver``) because Django reads its settings once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import print_table, versions  # sibling module: these files run as scripts

ROOT = Path(__file__).resolve().parent.parent
WORKER_TIMEOUT = 600


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


def drive(side: str, count: int, log_dir: Path) -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    env = {**os.environ}
    if side == "taskcenter":
        from taskcenter import lifecycle
        from taskcenter.models import TaskExecution

        owner = get_user_model().objects.create_user("bench", password=None)
        for _ in range(count):
            lifecycle.create_task(owner=owner, task_type="demo.noop", start=True)
        wall = _worker(["run_worker", "--exit-when-idle"], env, log_dir / "taskcenter.log")
        times = TaskExecution.objects.filter(status="COMPLETED")
        done = times.count()
        first = min(times.values_list("started_at", flat=True))
        last = max(times.values_list("completed_at", flat=True))
    else:
        import django_rq
        from rq.job import Job

        from bench.jobs import noop

        ids = [noop.enqueue().id for _ in range(count)]
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


def run_side(side: str, count: int, redis_url: str) -> dict:
    from redis import Redis

    Redis.from_url(redis_url).flushdb()
    with tempfile.TemporaryDirectory(prefix=f"tc-rq-bench-{side}-") as tmp:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "taskcenter.settings",
            "LOG_LEVEL": "WARNING",
            "TASKCENTER_VAR_DIR": tmp,
            "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            "TASKS_BACKEND": "rq",
            "TASKCENTER_DEMO_KINDS": "true",
            "REDIS_URL": redis_url,
            "PYTHONPATH": str(ROOT),
        }
        env.pop("DEBUG", None)
        command = [sys.executable, str(Path(__file__).resolve()), "--driver", side]
        command += ["--count", str(count)]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:])
            raise SystemExit(f"{side}: driver failed ({done.returncode})")
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="Jobs per side (default 1000).")
    parser.add_argument("--repeat", type=int, default=1, help="Keep the best of N runs per side.")
    parser.add_argument("--driver", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        print(json.dumps(drive(args.driver, args.count, Path(os.environ["TASKCENTER_VAR_DIR"]))))
        return
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        parser.error("set REDIS_URL to a Redis database this bench may flush")
    print(versions("Django", "django-tasks", "django-tasks-rq", "django-rq", "rq", "redis"))
    print(f"Redis {redis_url}; SQLite (WAL), fresh file per run; best of {args.repeat}\n")
    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for side in ("taskcenter", "rq"):
            result = run_side(side, args.count, redis_url)
            if result["count"] != args.count:
                raise SystemExit(f"{side}: {result['count']} of {args.count} jobs finished")
            if side not in best or result["rate"] > best[side]["rate"]:
                best[side] = result
    ratio = best["taskcenter"]["rate"] / best["rq"]["rate"]
    print_table(
        ("worker", "jobs", "span s", "jobs/s", "process wall s"),
        [
            (
                label,
                str(best[side]["count"]),
                f"{best[side]['span']:.2f}",
                f"{best[side]['rate']:.0f}",
                f"{best[side]['wall']:.1f}",
            )
            for side, label in (
                ("taskcenter", "run_worker (full lifecycle)"),
                ("rq", "rqworker --burst, SimpleWorker"),
            )
        ],
    )
    print(f"\nrun_worker on RQ / raw RQ: {ratio:.2f}x")


if __name__ == "__main__":
    main()
