"""``manage.py cancel_tasks``: call off tasks that have not finished."""

from typing import Any

from django.core.management.base import CommandParser

from taskcenter import lifecycle
from taskcenter.management.selection import BulkActionCommand


class Command(BulkActionCommand):
    help = (
        "Cancel the selected tasks (terminal; refunds quota; a running handler stops at its "
        "next checkpoint). Without --status or --id only cancellable tasks (PENDING, QUEUED, "
        "RUNNING, STOPPED) are selected; finished ones named by --id or --status are counted "
        "as refused. Example: cancel_tasks --platform douyin --owner alice --reason 'bad batch'"
    )
    verb = "cancel"
    done = "Cancelled"
    default_statuses = lifecycle.CANCELLABLE
    accepts = lifecycle.CANCELLABLE

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--reason", default="", help="Recorded on each task's 'cancelled' audit event."
        )

    def act(self, task_id: int, options: dict[str, Any]) -> None:
        lifecycle.cancel_task(task_id, actor="command:cancel_tasks", reason=options["reason"])
