"""The task log page's statistics (``GET /api/task/self/stats`` and ``GET /api/task/stats``).

new-api answers, for the tasks its filters select::

    {"running_count": 3,
     "daily_counts": [{"date": "2025-06-01", "total": 12}, ...],
     "total_stats": {"running": 3, "success": 8, "failure": 1},
     "image_stats": {...}, "video_stats": {...}}

and its bucket rules are kept exactly: when both ends of the range fall on today's date the
buckets are the hours of the range (``"HH:00"``), otherwise its days (``"YYYY-MM-DD"``), every
one listed from the first to the last even with no task in it; without both ends, only the days
that have tasks, in order. Dates and hours are read in the server's time zone, as new-api reads
them in its process's local zone: here that is Django's ``TIME_ZONE``. A task counts as running,
success or failure by the word the list shows for it (NOT_START, QUEUED, IN_PROGRESS are
running), and in ``image_stats`` or ``video_stats`` by its action (``media_types``).

All of it comes from one grouped query, ``COUNT(*) ... GROUP BY bucket, status, action``, over
the same filtered queryset the list pages: the owner's or everybody's tasks in a ``created_at``
range, which the ``(owner, -created_at)`` and ``(-created_at)`` indexes bound. The result has a
few rows per bucket whatever the number of tasks, and is summed here. (The trigger-kept tallies
have no time dimension, and the page always sends a range, so they cannot answer this.)
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from generation.api.media_types import IMAGE, VIDEO, media_type_of
from taskcenter.api.status_words import GENERATION, word_for
from taskcenter.models import Task

HOUR, DAY = "hour", "day"
# new-api's words, by what the page's cards call them.
RUNNING_WORDS = frozenset({"NOT_START", "SUBMITTED", "QUEUED", "IN_PROGRESS"})
BREAKDOWN = {"SUCCESS": "success", "FAILURE": "failure", **dict.fromkeys(RUNNING_WORDS, "running")}


def bucket_mode(start: int | None, end: int | None, *, now: datetime | None = None) -> str:
    """Hours when the range is given and lies within today (server time zone), else days."""
    if not start or not end:
        return DAY
    today = timezone.localdate(now or timezone.now())
    ends = (timezone.localdate(_moment(start)), timezone.localdate(_moment(end)))
    return HOUR if ends == (today, today) else DAY


def bucket_labels(start: int | None, end: int | None, mode: str) -> list[str]:
    """Every bucket of the range in order, or ``[]`` when an end is missing."""
    if not start or not end:
        return []
    if mode == DAY:
        first, last = timezone.localdate(_moment(start)), timezone.localdate(_moment(end))
        return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    # Hours are stepped in absolute time from the local hour the range starts in, so a day with
    # a clock change has 23 or 25 of them; a repeated "HH:00" is listed once.
    cursor = timezone.localtime(_moment(start)).replace(minute=0, second=0, microsecond=0)
    labels: dict[str, None] = {}
    while cursor <= _moment(end):
        labels[timezone.localtime(cursor).strftime("%H:00")] = None
        cursor = (cursor.astimezone(UTC) + timedelta(hours=1)).astimezone(cursor.tzinfo)
    return list(labels)


def grouped_counts(tasks: QuerySet[Task], mode: str) -> QuerySet:
    """``(bucket, status, action, n)`` rows: the one query the statistics make."""
    trunc = TruncHour if mode == HOUR else TruncDate
    bucket = trunc("created_at", tzinfo=timezone.get_current_timezone())
    return (
        tasks.order_by()
        .annotate(bucket=bucket)
        .values_list("bucket", "status", "action")
        .annotate(n=Count("pk"))
    )


def task_stats(tasks: QuerySet[Task], *, start: int | None, end: int | None) -> dict[str, Any]:
    """new-api's statistics of ``tasks`` (already filtered to the range and media type)."""
    mode = bucket_mode(start, end)
    per_bucket: Counter[str] = Counter()
    breakdown: dict[str, Counter[str]] = {"total": Counter(), IMAGE: Counter(), VIDEO: Counter()}
    for bucket, status, action, n in grouped_counts(tasks, mode):
        per_bucket[_label(bucket)] += n
        kind = BREAKDOWN[str(word_for(status, GENERATION))]
        breakdown["total"][kind] += n
        media_type = media_type_of(action)
        if media_type:
            breakdown[media_type][kind] += n
    labels = bucket_labels(start, end, mode) or sorted(per_bucket)

    def figures(counts: Counter[str]) -> dict[str, int]:
        return {kind: counts[kind] for kind in ("running", "success", "failure")}

    return {
        "running_count": breakdown["total"]["running"],
        "daily_counts": [{"date": label, "total": per_bucket[label]} for label in labels],
        "total_stats": figures(breakdown["total"]),
        "image_stats": figures(breakdown[IMAGE]),
        "video_stats": figures(breakdown[VIDEO]),
    }


def _moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _label(bucket: date | datetime) -> str:
    """TruncHour answers an aware datetime, TruncDate a local date."""
    if isinstance(bucket, datetime):
        return timezone.localtime(bucket).strftime("%H:00")
    return bucket.isoformat()
