"""SIGKILL a worker mid-attempt N times and count what became of the tasks.

    .venv/bin/python bench/sigkill_recovery.py [--tasks 20] [--kills 20] [--concurrency 1]

A fresh SQLite file in a temp dir (or ``--database-url``), ``--tasks`` one-attempt
``demo.countdown`` tasks (3 s each), started together. Then, ``--kills`` times: start a worker
(lease 2 s, reaper every 0.5 s), wait until it is running an attempt that has made progress,
and SIGKILL it. A last worker then runs what is left. Printed: tasks completed, failed
(and why), doubled (more than one COMPLETED execution), lost executions, and the most
times one task was lost. ``demo.countdown`` allows one attempt, so before lost attempts were
counted apart each kill failed a task.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="taskcenter-sigkill-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "taskcenter.settings",
        "TASKCENTER_VAR_DIR": str(var),
        "DATABASE_URL": args.database_url or f"sqlite:///{var / 'sigkill.sqlite3'}",
        "TASKCENTER_LEASE_SECONDS": "2",
        "TASKCENTER_DEMO_KINDS": "true",
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )

    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from taskcenter import lifecycle
    from taskcenter.models import ExecutionStatus, Task, TaskExecution

    owner, _ = get_user_model().objects.get_or_create(username="sigkill")
    tasks = [
        lifecycle.create_task(
            owner=owner,
            task_type="demo.countdown",
            parameters={"seconds": 3, "interval": 0.1},
            start=True,
        )
        for _ in range(args.tasks)
    ]
    ids = [task.pk for task in tasks]

    def worker(name: str) -> subprocess.Popen:
        options = ["--concurrency", str(args.concurrency), "--reap-interval", "0.5"]
        return subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--worker-id", name, *options],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    started = time.monotonic()
    kills = 0
    for n in range(args.kills):
        name = f"doomed-{n}"
        process = worker(name)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = TaskExecution.objects.filter(
                worker_id=name, status=ExecutionStatus.RUNNING, task__progress__gt=0
            ).exists()
            if busy or not Task.objects.filter(pk__in=ids, status__in=["QUEUED", "RUNNING"]):
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += busy
        if not busy:
            break  # nothing left to run
    last = worker("survivor")
    deadline = time.monotonic() + 600
    while Task.objects.filter(pk__in=ids, status__in=["QUEUED", "RUNNING"]).exists():
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    last.send_signal(signal.SIGTERM)
    last.wait(timeout=60)

    statuses = Counter(Task.objects.filter(pk__in=ids).values_list("status", flat=True))
    executions = Counter(
        TaskExecution.objects.filter(task_id__in=ids).values_list("status", flat=True)
    )
    completed_runs = Counter(
        TaskExecution.objects.filter(task_id__in=ids, status=ExecutionStatus.COMPLETED).values_list(
            "task_id", flat=True
        )
    )
    doubled = sum(1 for runs in completed_runs.values() if runs > 1)
    most_lost = max(Task.objects.filter(pk__in=ids).values_list("lost_attempts", flat=True))
    errors = Counter(
        Task.objects.filter(pk__in=ids, status="FAILED").values_list("error_message", flat=True)
    )
    print(
        f"{args.tasks} tasks, {kills} SIGKILLs mid-attempt (concurrency {args.concurrency}), "
        f"{time.monotonic() - started:.0f}s: completed={statuses['COMPLETED']} "
        f"failed={statuses['FAILED']} doubled={doubled} other={dict(statuses)} "
        f"executions={dict(executions)} most lost attempts of one task={most_lost}"
    )
    for error, count in errors.items():
        print(f"  failed x{count}: {error}")


if __name__ == "__main__":
    main()
