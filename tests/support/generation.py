"""Helpers for the new-api task center tests: the requests its task log page sends, moments in
the server's time zone, and generation tasks brought to an end through the lifecycle with the
data the sandbox platform answers.

The page (``web/src/hooks/task-logs/useTaskLogsData.js`` in new-api) builds its URLs with
``URLSearchParams``: ``p``, ``page_size``, ``start_timestamp``, ``end_timestamp`` always, then
``task_id`` when typed, ``media_type`` (``all`` unless a tab is chosen) and, for
administrators, ``channel_id`` when typed. Its date presets are whole days of the browser's
clock, which these helpers take to be the server's time zone. Its axios instance sends
``New-API-User`` and ``Cache-Control: no-store`` with every request.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.utils import timezone
from rest_framework.test import APIClient

from sandbox.generation import RemoteTask
from taskcenter import lifecycle
from taskcenter.models import Task

PAGE_SIZE = 10  # the page's default (ITEMS_PER_PAGE)
PAGE_HEADERS = {"HTTP_CACHE_CONTROL": "no-store"}


def local(days_ago: int, hour: int, minute: int = 0) -> datetime:
    """A moment ``days_ago`` days before today, at ``hour:minute`` in the server's zone."""
    day = timezone.localdate() - timedelta(days=days_ago)
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def preset(days: int) -> tuple[int, int]:
    """The page's range presets: ``today`` is 1, ``last7`` is 7 (start of the first day to the
    end of today, whole seconds)."""
    start = local(days - 1, 0)
    end = timezone.make_aware(datetime.combine(timezone.localdate(), time(23, 59, 59)))
    return epoch(start), epoch(end)


def list_url(
    start: int,
    end: int,
    *,
    admin: bool = False,
    page: int = 1,
    size: int = PAGE_SIZE,
    task_id: str = "",
    media_type: str = "all",
    channel_id: str = "",
) -> str:
    """The list request as the page builds it (``buildListUrl``)."""
    params: dict[str, Any] = {
        "p": page,
        "page_size": size,
        "start_timestamp": start,
        "end_timestamp": end,
    }
    if task_id:
        params["task_id"] = task_id
    if media_type:
        params["media_type"] = media_type
    if admin and channel_id:
        params["channel_id"] = channel_id
    return f"/api/task/{'' if admin else 'self'}?{urlencode(params)}"


def stats_url(
    start: int, end: int, *, admin: bool = False, media_type: str = "all", channel_id: str = ""
) -> str:
    """The statistics request as the page builds it (``buildStatsUrl``)."""
    params: dict[str, Any] = {
        "start_timestamp": start,
        "end_timestamp": end,
        "media_type": media_type or "all",
    }
    if admin and channel_id:
        params["channel_id"] = channel_id
    return f"/api/task/{'stats' if admin else 'self/stats'}?{urlencode(params)}"


def page_get(client: APIClient, url: str) -> Any:
    """GET ``url`` with the page's headers; ``client`` sends the token and ``New-Api-User``."""
    return client.get(url, **PAGE_HEADERS)


def created_at(task: Task, moment: datetime) -> Task:
    """Move ``task``'s creation to ``moment`` (the lists and statistics range on it)."""
    Task.objects.filter(pk=task.pk).update(created_at=moment)
    task.refresh_from_db()
    return task


def finished(task: Task, *, failure: str = "") -> Task:
    """Run ``task`` (QUEUED) to SUCCESS with the data the sandbox platform answers for its
    action and prompt, or to FAILURE with ``failure`` as the reason."""
    task, execution = lifecycle.claim_attempt(task, worker_id="w1", lease=60)
    if failure:
        lifecycle.fail_attempt(execution, error=failure, permanent=True)
    else:
        job = RemoteTask(
            f"gen-{task.pk:06d}",
            task.platform,
            task.action,
            task.parameters["prompt"],
            client_ref="",
            title=task.parameters.get("title", ""),
            tags=task.parameters.get("tags", ""),
        )
        Task.objects.filter(pk=task.pk).update(external_id=job.task_id, remote_status="SUCCESS")
        lifecycle.complete_attempt(execution, result=job.result())
    task.refresh_from_db()
    return task


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)
