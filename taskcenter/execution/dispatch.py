"""The one module that speaks to the task engine (``django_tasks``).

Task Center's own tables are the truth about a task; the engine only carries "run an attempt of
task N, not before T" messages to a worker. Any ``django_tasks`` backend can carry them: the
database backend by default, whose jobs our ``run_worker`` claims in batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from django.db import connections, router, transaction
from django.db.models import Field, JSONField, Q
from django.utils import timezone
from django_tasks import task as engine_task
from django_tasks import task_backends

from taskcenter.execution import wakeup
from taskcenter.lib.bulk_insert import RowInserter
from taskcenter.lifecycle.hooks import Clause, QueuedTask
from taskcenter.models import Task

if TYPE_CHECKING:
    from django_tasks_db import DatabaseBackend

MIN_PRIORITY, MAX_PRIORITY = -100, 100


@engine_task()
def run_attempt_job(task_id: int) -> str:
    """The engine job: run (or resume) one attempt of a Task Center task."""
    from taskcenter.execution.runner import run_attempt

    return run_attempt(task_id)


RUN_ATTEMPT_PATH = run_attempt_job.module_path


def enqueue_attempt(task_id: int, *, priority: int = 0, run_after: datetime | None = None) -> str:
    """Ask the engine to run an attempt of ``task_id``; returns the engine's job id.

    On the database engine the idle workers are told at once (``wakeup.announce``); RQ's
    workers wait on Redis and need no telling.
    """
    priority = max(MIN_PRIORITY, min(MAX_PRIORITY, int(priority)))
    job = run_attempt_job.using(priority=priority, run_after=run_after)
    job_id = str(job.enqueue(task_id).id)
    if uses_database_engine():
        wakeup.announce(job.queue_name, run_after, using=_job_database())
    return job_id


def _job_database() -> str:
    from django_tasks_db.models import DBTaskResult

    return router.db_for_write(DBTaskResult)


class EngineJobs:
    """The lifecycle's bulk dispatcher (``hooks.BulkDispatcher``): jobs for many tasks at once.

    On the database engine a job is a row of django-tasks-db's table in our own database, so the
    jobs of newly submitted tasks are written in the submitting transaction, all in one
    multi-row INSERT: they commit with their tasks or not at all (no QUEUED task is left without
    a job when the process dies between two commits), and a thousand jobs cost one statement
    where ``enqueue`` costs an ORM ``create`` and a commit each. The rows are the ones
    ``DatabaseBackend.enqueue`` writes (no ``run_after`` is the engine's far-future marker, as
    its ``pre_save`` handler sets it); django-tasks' ``task_enqueued`` signal, whose only
    receiver logs at debug level, is not sent for them. Any other engine gets
    ``enqueue_attempt`` per task once the transaction has committed.
    """

    _rows: RowInserter | None = None

    def in_transaction(self) -> bool:
        if not uses_database_engine():
            return False
        from django_tasks_db.models import DBTaskResult

        return router.db_for_write(DBTaskResult) == router.db_for_write(Task)

    def __call__(self, tasks: Sequence[QueuedTask]) -> None:
        if not self.in_transaction():
            for task in tasks:
                enqueue_attempt(task.task_id, priority=task.priority, run_after=task.run_after)
            return
        from django_tasks_db.models import get_date_max

        now = timezone.now()
        using = _job_database()
        # Objects every row shares are prepared once per call (``RowInserter`` memoizes by object).
        backend, never, no_workers = _database_backend(), get_date_max(), cast(list[str], [])
        rows = [_job_row(task, now, backend, never, no_workers) for task in tasks]
        EngineJobs._inserter().insert(rows, using=using)
        for due in _announced(tasks, now):
            wakeup.announce(run_attempt_job.queue_name, due, using=using)

    def clauses(self, task: QueuedTask, *, using: str) -> list[Clause] | None:
        """The job of a task written by the same statement (``new_task``), and its wake-up."""
        if not self.in_transaction() or _job_database() != using:
            return None
        from django_tasks_db.models import get_date_max

        now = timezone.now()
        # The job's arguments name the new task's id, known only to the statement: the same
        # JSON object ``enqueue`` stores, built by the server.
        sql, params = EngineJobs._inserter().from_source(
            _job_row(task, now, _database_backend(), get_date_max(), [], with_arguments=False),
            source="new_task",
            computed={"args_kwargs": _JOB_ARGUMENTS_SQL},
            using=using,
        )
        clauses = [Clause(_ENGINE_JOB, f"{sql} RETURNING 1", params)]
        if wakeup.enabled():
            (due,) = _announced([task], now)
            clauses.append(
                wakeup.announcement_clause(run_attempt_job.queue_name, due, after=_ENGINE_JOB)
            )
        return clauses

    @staticmethod
    def _inserter() -> RowInserter:
        from django_tasks_db.models import DBTaskResult

        if EngineJobs._rows is None:
            EngineJobs._rows = RowInserter(DBTaskResult, _JOB_COLUMNS, returning=False)
        return EngineJobs._rows


def _announced(tasks: Sequence[QueuedTask], now: datetime) -> list[datetime | None]:
    """The wake-ups that tell idle workers of these new jobs: one covers every job ready now
    (None); of the later ones only the earliest matters to an idle worker (it wakes then, and
    its poll finds the rest as they come due)."""
    dues: list[datetime | None] = []
    if any(task.run_after is None or task.run_after <= now for task in tasks):
        dues.append(None)
    later = [task.run_after for task in tasks if task.run_after and task.run_after > now]
    if later:
        dues.append(min(later))
    return dues


def _job_row(
    task: QueuedTask,
    now: datetime,
    backend: DatabaseBackend,
    never: datetime,
    no_workers: list[str],
    *,
    with_arguments: bool = True,
) -> tuple:
    """The row ``DatabaseBackend.enqueue`` writes for an attempt of ``task``, in
    ``_JOB_COLUMNS`` order (without ``args_kwargs`` unless ``with_arguments``). ``never`` is
    the engine's far-future ``run_after``, what its ``pre_save`` handler gives a job without one.
    """
    arguments = ({"args": [task.task_id], "kwargs": {}},) if with_arguments else ()
    return (
        backend._get_id(),  # the backend's id_function (a UUID unless configured)
        "READY",
        now,
        *arguments,
        max(MIN_PRIORITY, min(MAX_PRIORITY, int(task.priority))),
        RUN_ATTEMPT_PATH,
        no_workers,
        run_attempt_job.queue_name,
        backend.alias,
        task.run_after or never,
        "",
        "",
    )


def _database_backend() -> DatabaseBackend:
    return cast("DatabaseBackend", task_backends["default"])


_ENGINE_JOB = "engine_job"
_JOB_ARGUMENTS_SQL = (
    "jsonb_build_object('args', jsonb_build_array(new_task.id), 'kwargs', '{}'::jsonb)"
)


_JOB_COLUMNS = (
    "id",
    "status",
    "enqueued_at",
    "args_kwargs",
    "priority",
    "task_path",
    "worker_ids",
    "queue_name",
    "backend_name",
    "run_after",
    "exception_class_path",
    "traceback",
)


def uses_database_engine() -> bool:
    from django_tasks_db import DatabaseBackend

    return isinstance(task_backends["default"], DatabaseBackend)


def uses_rq_engine() -> bool:
    return type(task_backends["default"]).__module__.startswith("django_tasks_rq")


def tasks_with_waiting_jobs(task_ids: list[int]) -> set[int] | None:
    """Which of these tasks have an engine job still waiting to run (None: cannot tell)."""
    if uses_rq_engine():
        return _rq_tasks_with_waiting_jobs(task_ids)
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


def _rq_tasks_with_waiting_jobs(task_ids: list[int]) -> set[int]:
    """The RQ side of ``tasks_with_waiting_jobs``: jobs queued or scheduled in any queue."""
    import django_rq
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    wanted = set(task_ids)
    found: set[int] = set()
    for name in task_backends["default"].queues:
        queue = django_rq.get_queue(name)
        job_ids = queue.get_job_ids() + ScheduledJobRegistry(queue=queue).get_job_ids()
        for job in Job.fetch_many(job_ids, connection=queue.connection):
            if job is None or job.func_name != RUN_ATTEMPT_PATH:
                continue
            if job.args and job.args[0] in wanted:
                found.add(job.args[0])
    return found


# --- the database engine's job table, as our worker reads it ---------------------------------


@dataclass(frozen=True)
class EngineJob:
    """The columns of a claimed engine row that the worker needs."""

    pk: Any  # as the database returned it; handed back verbatim when the job is marked done
    task_path: str
    args_kwargs: dict


class JobTable:
    """django-tasks-db's job table, with the worker's hot statements compiled once.

    A worker loops over "mark done, take the next ready jobs" many times a second; letting the
    ORM build and compile the same three statements every time costs more than running them.
    The SELECT is compiled by the ORM itself (same filter and order as ``DBTaskResult.objects
    .ready()``, ``SELECT ... FOR UPDATE SKIP LOCKED`` where supported) with a marker for "now",
    cached per LIMIT; the two UPDATEs are plain by-primary-key updates.
    """

    # Stands for "now" in the compiled SELECT; replaced by the real time at each claim.
    _NOW_MARKER = datetime(1970, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

    def __init__(
        self,
        *,
        backend_name: str,
        queue_names: tuple[str, ...],
        worker_id: str,
        using: str | None = None,
    ) -> None:
        from django_tasks_db.models import DBTaskResult

        self.model = DBTaskResult
        self.using = using or router.db_for_write(DBTaskResult)
        self.backend_name = backend_name
        self.queue_names = tuple(queue_names)
        self.worker_id = worker_id
        self._compiled: dict[tuple[int, bool], tuple[str, list, int]] = {}
        meta = DBTaskResult._meta
        # Columns of the job table, so concrete fields (get_field also returns reverse relations).
        self._fields = {
            name: cast(Field, meta.get_field(name))
            for name in ("run_after", "args_kwargs", "started_at", "worker_ids")
        }
        self._args_kwargs = cast(JSONField, self._fields["args_kwargs"])

    @property
    def connection(self) -> Any:
        return connections[self.using]

    def _select(self, limit: int, *, lock: bool) -> tuple[str, list, int]:
        key = (limit, lock)
        if key not in self._compiled:
            from django_tasks_db.models import get_date_max

            rows = (
                self.model.objects.using(self.using)
                .filter(
                    status="READY",
                    backend_name=self.backend_name,
                    queue_name__in=self.queue_names,
                )
                .filter(Q(run_after=get_date_max()) | Q(run_after__lte=self._NOW_MARKER))
                .order_by(*(self.model._meta.ordering or ()))
                .values_list("pk", "task_path", "args_kwargs")
            )
            if lock:
                rows = rows.select_for_update(skip_locked=True)
            # The ORM compiles a locking SELECT only inside a transaction; ``claim_alone`` runs
            # it as part of a single statement outside one.
            with transaction.atomic(using=self.using):
                sql, params = rows[:limit].query.get_compiler(self.using).as_sql()
            params = list(params)
            marker = self._db_value("run_after", self._NOW_MARKER)
            self._compiled[key] = (sql, params, params.index(marker))
        return self._compiled[key]

    def _db_value(self, name: str, value: Any) -> Any:
        return self._fields[name].get_db_prep_value(value, self.connection, prepared=False)

    def _run_select(self, limit: int, *, lock: bool) -> list[tuple]:
        sql, params, now_index = self._select(limit, lock=lock)
        params = list(params)
        params[now_index] = self._db_value("run_after", timezone.now())
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def any_ready(self) -> bool:
        """A lock-free look for work, for idle polls."""
        return bool(self._run_select(1, lock=False))

    def claim(self, limit: int) -> list[EngineJob]:
        """Take up to ``limit`` ready jobs; call inside ``exclusive_transaction``."""
        rows = self._run_select(limit, lock=True)
        if not rows:
            return []
        table, qn = self.model._meta.db_table, self.connection.ops.quote_name
        # Only quoted model identifiers are formatted in; every value is a parameter.
        self._execute(
            f"UPDATE {qn(table)} SET {qn('status')} = %s, {qn('started_at')} = %s, "  # noqa: S608
            f"{qn('worker_ids')} = %s WHERE {qn('id')} IN ({', '.join(['%s'] * len(rows))})",
            [
                "RUNNING",
                self._db_value("started_at", timezone.now()),
                self._db_value("worker_ids", [self.worker_id]),
                *(row[0] for row in rows),
            ],
        )
        decode = self._args_kwargs.from_db_value
        # No expression: JSONField reads it only to spot a key transform, which a plain column
        # is not; the stubs ask for one.
        return [
            EngineJob(
                pk=pk,
                task_path=path,
                args_kwargs=decode(args, None, self.connection),  # type: ignore[arg-type]
            )
            for pk, path, args in rows
        ]

    @property
    def can_claim_alone(self) -> bool:
        """Whether ``claim_alone`` works here (UPDATE ... RETURNING: SQLite 3.35 and later)."""
        if self.connection.vendor == "sqlite":
            import sqlite3

            return sqlite3.sqlite_version_info >= (3, 35)
        return self.connection.vendor == "postgresql"

    def claim_alone(self, limit: int) -> list[EngineJob]:
        """``claim`` in one statement and its own transaction: the UPDATE of the jobs that the
        locking SELECT picks, returning them. One round trip where ``claim`` takes three, for a
        claim with no finished jobs to mark done alongside (an idle worker that was woken)."""
        sql, params, now_index = self._select(limit, lock=True)
        params = list(params)
        params[now_index] = self._db_value("run_after", timezone.now())
        table, qn = self.model._meta.db_table, self.connection.ops.quote_name
        # Only quoted model identifiers and the ORM's own SELECT are formatted in. MATERIALIZED:
        # the picked rows are read once; a subquery the planner re-ran per row could pick more
        # (SKIP LOCKED skips what the first run locked). "ready"."pk" is qualified so that a
        # wrong name fails instead of quietly meaning the outer row's id.
        statement = (
            f"WITH {qn('ready')} AS MATERIALIZED ({sql}) "  # noqa: S608
            f"UPDATE {qn(table)} SET {qn('status')} = %s, {qn('started_at')} = %s, "
            f"{qn('worker_ids')} = %s WHERE {qn('id')} IN "
            f"(SELECT {qn('ready')}.{qn('pk')} FROM {qn('ready')}) RETURNING {qn('id')}, "
            f"{qn('task_path')}, {qn('args_kwargs')}, {qn('priority')}, {qn('run_after')}, "
            f"{qn('enqueued_at')}"
        )
        values = [
            *params,
            "RUNNING",
            self._db_value("started_at", timezone.now()),
            self._db_value("worker_ids", [self.worker_id]),
        ]
        with self.connection.cursor() as cursor:
            cursor.execute(statement, values)
            rows = cursor.fetchall()
        # RETURNING keeps no order: the queue's own (priority, then due, then first come).
        rows.sort(key=lambda row: (-row[3], row[4], row[5]))
        decode = self._args_kwargs.from_db_value
        return [
            EngineJob(
                pk=pk,
                task_path=path,
                args_kwargs=decode(args, None, self.connection),  # type: ignore[arg-type]
            )
            for pk, path, args, *_ in rows
        ]

    def mark_finished(self, pks: list[Any]) -> None:
        """Jobs whose attempt ran (whatever its outcome: the task's own row records that)."""
        if not pks:
            return
        table, qn = self.model._meta.db_table, self.connection.ops.quote_name
        self._execute(
            f"UPDATE {qn(table)} SET {qn('status')} = %s, {qn('finished_at')} = %s "  # noqa: S608
            f"WHERE {qn('status')} = %s AND {qn('id')} IN ({', '.join(['%s'] * len(pks))})",
            ["SUCCESSFUL", self._db_value("started_at", timezone.now()), "RUNNING", *pks],
        )

    def release(self, pks: list[Any]) -> None:
        """Hand jobs back to the queue unrun (their worker lost its database connection)."""
        if not pks:
            return
        table, qn = self.model._meta.db_table, self.connection.ops.quote_name
        self._execute(
            f"UPDATE {qn(table)} SET {qn('status')} = %s "  # noqa: S608
            f"WHERE {qn('status')} = %s AND {qn('id')} IN ({', '.join(['%s'] * len(pks))})",
            ["READY", "RUNNING", *pks],
        )
        wakeup.announce("", using=self.using)  # other workers may have a free slot

    def next_due(self) -> float | None:
        """When the earliest waiting job with a ``run_after`` comes due (epoch seconds)."""
        from django.db.models import Min
        from django_tasks_db.models import get_date_max

        due = (
            self.model.objects.using(self.using)
            .filter(
                status="READY",
                backend_name=self.backend_name,
                queue_name__in=self.queue_names,
                run_after__gt=timezone.now(),
                run_after__lt=get_date_max(),
            )
            .aggregate(due=Min("run_after"))["due"]
        )
        return due.timestamp() if due else None

    def get(self, job: EngineJob) -> Any:
        """The full row, for jobs that are not ours (run the way ``db_worker`` runs them)."""
        return self.model.objects.using(self.using).get(pk=self.model._meta.pk.to_python(job.pk))

    def _execute(self, sql: str, params: list) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
