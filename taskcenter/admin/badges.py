"""A task's status badge and progress bar, as the console draws them.

Both carry the task's id (``data-task-status``, ``data-task-progress``) so that
``static/taskcenter/live.js`` can redraw them from the task's events without a reload.
"""

from __future__ import annotations

from django.utils.html import format_html

from taskcenter.models import ExecutionStatus, Status, Task

STATUS_COLOURS: dict[str, str] = {
    Status.PENDING: "#6c757d",
    Status.QUEUED: "#0d6efd",
    Status.RUNNING: "#fd7e14",
    Status.COMPLETED: "#198754",
    Status.FAILED: "#dc3545",
    Status.STOPPED: "#6f42c1",
    Status.CANCELLED: "#495057",
    ExecutionStatus.WAITING: "#0dcaf0",
    ExecutionStatus.LOST: "#b02a37",
}
DEFAULT_COLOUR = "#6c757d"


def status_badge(status: str, label: str, *, task_id: int | None = None) -> str:
    """A coloured pill; with ``task_id``, one that follows that task's status live."""
    return format_html(
        '<span{} style="background:{};color:#fff;padding:2px 8px;border-radius:10px;'
        'font-size:11px;font-weight:600;white-space:nowrap">{}</span>',
        format_html(' data-task-status="{}" data-status="{}"', task_id, status)
        if task_id is not None
        else "",
        STATUS_COLOURS.get(status, DEFAULT_COLOUR),
        label,
    )


def progress_bar(task: Task) -> str:
    """The task's progress (0-100) in its status colour; it follows the task live."""
    return format_html(
        '<div data-task-progress="{}" title="{}" '
        'style="width:110px;background:#e9ecef;border-radius:4px">'
        '<div data-progress-bar style="width:{}%;background:{};color:#fff;font-size:10px;'
        'text-align:center;border-radius:4px;min-width:24px">{}%</div></div>',
        task.pk,
        task.progress_message,
        task.progress,
        STATUS_COLOURS.get(task.status, DEFAULT_COLOUR),
        task.progress,
    )
