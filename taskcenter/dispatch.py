"""The one module that speaks to the task engine (``django_tasks``).

Task Center's own tables are the truth about a task; the engine only carries "run an attempt of
task N, not before T" messages to a worker. Any ``django_tasks`` backend can carry them: the
database backend by default, whose jobs our ``run_worker`` claims in batches.
"""

from __future__ import annotations

from datetime import datetime

from django_tasks import task as engine_task
from django_tasks import task_backends

MIN_PRIORITY, MAX_PRIORITY = -100, 100


@engine_task()
def run_attempt_job(task_id: int) -> str:
    """The engine job: run (or resume) one attempt of a Task Center task."""
    from .runner import run_attempt

    return run_attempt(task_id)


RUN_ATTEMPT_PATH = run_attempt_job.module_path


def enqueue_attempt(task_id: int, *, priority: int = 0, run_after: datetime | None = None) -> str:
    """Ask the engine to run an attempt of ``task_id``; returns the engine's job id."""
    priority = max(MIN_PRIORITY, min(MAX_PRIORITY, int(priority)))
    job = run_attempt_job.using(priority=priority, run_after=run_after)
    return str(job.enqueue(task_id).id)


def uses_database_engine() -> bool:
    from django_tasks_db import DatabaseBackend

    return isinstance(task_backends["default"], DatabaseBackend)


def tasks_with_waiting_jobs(task_ids: list[int]) -> set[int] | None:
    """Which of these tasks have an engine job still waiting to run (None: cannot tell)."""
    if not uses_database_engine():
        return None
    from django_tasks_db.models import DBTaskResult

    waiting = DBTaskResult.objects.filter(status="READY", task_path=RUN_ATTEMPT_PATH).values_list(
        "args_kwargs", flat=True
    )
    wanted = set(task_ids)
    found: set[int] = set()
    for args_kwargs in waiting.iterator(chunk_size=2000):
        args = (args_kwargs or {}).get("args") or []
        if args and args[0] in wanted:
            found.add(args[0])
    return found
