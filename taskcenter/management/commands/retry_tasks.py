"""``manage.py retry_tasks``: put failed (or cancelled, stopped) tasks back in the queue."""

from typing import Any

from taskcenter import lifecycle
from taskcenter.management.selection import BulkActionCommand
from taskcenter.models import Status


class Command(BulkActionCommand):
    help = (
        "Retry the selected tasks: FAILED, CANCELLED or STOPPED -> QUEUED with fresh attempts. "
        "Without --status or --id only FAILED tasks are selected; pass --status to retry "
        "CANCELLED or STOPPED ones. Tasks in other statuses are counted as refused. "
        "Example: retry_tasks --status FAILED --platform douyin --since 24h"
    )
    verb = "retry"
    done = "Retried"
    default_statuses = (Status.FAILED,)
    accepts = lifecycle.RETRYABLE

    def act(self, task_id: int, options: dict[str, Any]) -> None:
        lifecycle.retry_task(task_id, actor="command:retry_tasks")
