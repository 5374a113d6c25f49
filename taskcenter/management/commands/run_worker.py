from django.core.management.base import BaseCommand, CommandError

from taskcenter.execution import dispatch, prefork
from taskcenter.execution.runner import default_worker_id
from taskcenter.execution.worker import Worker
from taskcenter.lib.sqlite_engine.checkpoints import checkpointing

CONCURRENCY = 4


class Command(BaseCommand):
    help = (
        "Run a Task Center worker: claims queued attempts, runs up to --concurrency of them at "
        "once, renews their leases and reaps attempts whose worker died."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--concurrency",
            "-c",
            type=int,
            default=None,
            help=f"Attempts run at once in this process, on threads (default: {CONCURRENCY}), "
            "on either engine.",
        )
        parser.add_argument(
            "--processes",
            "-p",
            type=int,
            default=1,
            help="Worker processes forked from this one, each with its own --concurrency; a "
            "process that dies is replaced (default: %(default)s).",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=0.02,
            help="Seconds between polls when the queue is empty and no wake-ups arrive; on "
            "RQ, between polls in --exit-when-idle mode while some slots are busy "
            "(default: %(default)s).",
        )
        parser.add_argument(
            "--safety-interval",
            type=float,
            default=1.0,
            help="Seconds between polls while wake-ups arrive (PostgreSQL LISTEN/NOTIFY, a "
            "local socket on SQLite): the safety net for a lost one (default: %(default)s).",
        )
        parser.add_argument(
            "--queue", default="default", help="Comma-separated queues (default: %(default)s)."
        )
        parser.add_argument("--worker-id", default="", help="Default: host:pid.")
        parser.add_argument(
            "--reap-interval",
            type=float,
            default=10.0,
            help="Seconds between reaper passes (default: %(default)s).",
        )
        parser.add_argument("--max-tasks", type=int, default=None, help="Exit after this many.")
        parser.add_argument(
            "--exit-when-idle",
            action="store_true",
            help="Exit once the queue is empty and nothing is running (batch mode).",
        )

    def handle(self, *args, **options):
        if options["concurrency"] is not None and options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        if options["interval"] < 0 or options["safety_interval"] < 0:
            raise CommandError("--interval and --safety-interval must be zero or more")
        if options["processes"] < 1:
            raise CommandError("--processes must be at least 1")
        queue_names = tuple(q.strip() for q in options["queue"].split(",") if q.strip())
        if options["processes"] == 1:
            self.run_one(queue_names, options)
            return
        worker_id = options["worker_id"]

        def child(index: int) -> int:
            named = {"worker_id": f"{worker_id}-{index + 1}"} if worker_id else {}
            self.run_one(queue_names, {**options, **named})
            return 0

        # In batch mode a process that fails is reported, not replaced: the batch is over.
        code = prefork.run_processes(
            options["processes"], child, replace_dead=not options["exit_when_idle"]
        )
        if code:
            raise CommandError(f"a worker process failed (exit code {code})", returncode=code)

    def run_one(self, queue_names: tuple[str, ...], options: dict) -> None:
        # On SQLite the workers take the log's checkpoints off the commits of everyone else.
        with checkpointing():
            self.run(queue_names, options)

    def run(self, queue_names: tuple[str, ...], options: dict) -> None:
        if dispatch.uses_rq_engine():
            self.run_on_rq(queue_names, options)
            return
        worker = Worker(
            worker_id=options["worker_id"] or default_worker_id(),
            concurrency=options["concurrency"] or CONCURRENCY,
            interval=options["interval"],
            safety_interval=options["safety_interval"],
            queue_names=queue_names,
            reap_interval=options["reap_interval"],
            max_tasks=options["max_tasks"],
            exit_when_idle=options["exit_when_idle"],
        )
        worker.install_signal_handlers()
        stats = worker.run()
        outcomes = ", ".join(f"{k}={v}" for k, v in sorted(stats.outcomes.items())) or "none"
        self.stdout.write(f"Worker {worker.worker_id} ran {stats.finished} attempt(s): {outcomes}")

    def run_on_rq(self, queue_names: tuple[str, ...], options: dict) -> None:
        from taskcenter.execution.rq_worker import run_rq_worker

        worker_id = options["worker_id"] or default_worker_id()
        stats = run_rq_worker(
            worker_id=worker_id,
            queue_names=queue_names,
            concurrency=options["concurrency"] or CONCURRENCY,
            interval=options["interval"],
            reap_interval=options["reap_interval"],
            max_tasks=options["max_tasks"],
            exit_when_idle=options["exit_when_idle"],
        )
        outcomes = ", ".join(f"{k}={v}" for k, v in sorted(stats.outcomes.items())) or "none"
        self.stdout.write(f"Worker {worker_id} ran {stats.finished} job(s) on RQ: {outcomes}")
