"""``manage.py reap_tasks``: recover work that dead workers or a lossy engine dropped."""

from __future__ import annotations

import signal
import threading
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from taskcenter import lifecycle
from taskcenter.execution import reaper
from taskcenter.models import TaskExecution


def describe(report: reaper.ReaperReport) -> str:
    return (
        f"{report.lost} lost execution(s): {report.requeued} requeued, {report.failed} failed; "
        f"{report.redispatched} orphaned queued task(s) re-dispatched"
    )


def count_expired_leases(now: datetime) -> int:
    """Open executions whose lease has run out: what the next pass would call LOST."""
    return TaskExecution.objects.filter(
        status__in=lifecycle.OPEN_EXECUTION, lease_expires_at__lt=now
    ).count()


class Command(BaseCommand):
    help = (
        "Run the reaper: executions whose lease expired become LOST and their tasks are "
        "requeued (or FAILED when no attempts are left); QUEUED tasks whose engine job vanished "
        "are dispatched again. Once by default; --loop repeats every --interval seconds until "
        "interrupted (Ctrl-C or SIGTERM). Workers run the same reaper; this is for repairs and "
        "for deployments without a long-lived worker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count expired leases and orphaned queued tasks; change nothing.",
        )
        parser.add_argument("--loop", action="store_true", help="Repeat until interrupted.")
        parser.add_argument(
            "--interval",
            type=float,
            default=10.0,
            help="Seconds between passes with --loop (default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["interval"] <= 0:
            raise CommandError("--interval must be more than zero")
        if options["dry_run"] and options["loop"]:
            raise CommandError("--dry-run and --loop do not go together")
        if options["dry_run"]:
            now = timezone.now()
            orphans = len(reaper.find_orphans(now=now, limit=None))
            self.stdout.write(
                f"Would reap {count_expired_leases(now)} execution(s) with an expired lease and "
                f"re-dispatch {orphans} orphaned queued task(s) (dry run: nothing changed)."
            )
        elif options["loop"]:
            self._loop(options["interval"])
        else:
            self.stdout.write(f"Reaped {describe(reaper.reap())}.")

    def _loop(self, interval: float) -> None:
        stop = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            stop.set()

        # A signal only sets a flag, so a pass is never cut off between its transactions.
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, request_stop) for sig in signals}
        totals = reaper.ReaperReport()
        passes = 0
        try:
            while not stop.is_set():
                report = reaper.reap()
                passes += 1
                for field in ("lost", "requeued", "failed", "redispatched"):
                    setattr(totals, field, getattr(totals, field) + getattr(report, field))
                if report.lost or report.redispatched:
                    self.stdout.write(f"{timezone.now():%Y-%m-%d %H:%M:%S} {describe(report)}")
                stop.wait(interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(f"Stopped after {passes} pass(es); in total {describe(totals)}.")
