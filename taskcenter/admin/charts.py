"""The Charts page: throughput, failure rates, durations and queue depth, as SVG.

Everything is read from the per-minute rollups the reaper folds (``taskcenter.models.rollups``),
so a page costs a few grouped reads over at most a week of minute rows, whatever the size of
the task table. The current minute is not folded yet; the charts end at the last whole minute.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.db.models import Max, Sum
from django.db.models.functions import TruncHour
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from taskcenter.lib.svg_charts import Series, bar_chart, line_chart
from taskcenter.models import DurationRollup, QueueDepthSample, Task, ThroughputRollup
from taskcenter.models.rollup_fold import floor_minute
from taskcenter.models.tally_triggers import bin_value

COMPLETED_COLOUR, FAILED_COLOUR = "#198754", "#dc3545"
QUEUED_COLOUR, RUNNING_COLOUR = "#0d6efd", "#fd7e14"
P50_COLOUR, P95_COLOUR = "#6f42c1", "#d63384"
TOP_KEYS = 20  # kinds or platforms shown in a ranking chart
QUEUE_BUCKET = 10  # minutes per point of the 24-hour queue-depth line (its highest sample)


def _local(moment: dt.datetime, fmt: str) -> str:
    return timezone.localtime(moment).strftime(fmt)


def _percent(value: float) -> str:
    return f"{value:.1f}%"


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value < 100 else f"{value:,.0f} s"


def throughput_per_minute(now: dt.datetime) -> SafeString:
    """Completed and failed tasks in each of the last 60 whole minutes."""
    end = floor_minute(now)
    minutes = [end - dt.timedelta(minutes=60 - i) for i in range(60)]
    rows = {
        row["minute"]: row
        for row in ThroughputRollup.objects.filter(minute__gte=minutes[0], minute__lt=end)
        .values("minute")
        .annotate(done=Sum("completed"), lost=Sum("failed"))
        .order_by()
    }
    return bar_chart(
        title=gettext("Tasks finished per minute, last hour"),
        labels=[_local(minute, "%H:%M") for minute in minutes],
        series=[
            Series(
                gettext("completed"), [_get(rows, m, "done") for m in minutes], COMPLETED_COLOUR
            ),
            Series(gettext("failed"), [_get(rows, m, "lost") for m in minutes], FAILED_COLOUR),
        ],
        x_label=gettext("minute"),
        y_label=gettext("tasks"),
        stacked=True,
        no_data=gettext("No data"),
    )


def throughput_per_hour(now: dt.datetime) -> SafeString:
    """Completed and failed tasks in each hour of the last 7 days (the minute rows summed)."""
    this_hour = timezone.localtime(now).replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - dt.timedelta(hours=7 * 24 - 1 - i) for i in range(7 * 24)]
    rows = {
        row["hour"]: row
        for row in ThroughputRollup.objects.filter(minute__gte=hours[0])
        .annotate(hour=TruncHour("minute"))
        .values("hour")
        .annotate(done=Sum("completed"), lost=Sum("failed"))
        .order_by()
    }
    return bar_chart(
        title=gettext("Tasks finished per hour, last 7 days"),
        labels=[_local(hour, "%m-%d %H:00") for hour in hours],
        series=[
            Series(gettext("completed"), [_get(rows, h, "done") for h in hours], COMPLETED_COLOUR),
            Series(gettext("failed"), [_get(rows, h, "lost") for h in hours], FAILED_COLOUR),
        ],
        x_label=gettext("hour"),
        y_label=gettext("tasks"),
        stacked=True,
        no_data=gettext("No data"),
    )


def _get(rows: dict, key: dt.datetime, field: str) -> float:
    row = rows.get(key)
    return float(row[field] or 0) if row else 0.0


def failure_rates(field: str, since: dt.datetime) -> list[tuple[str, float, int, int]]:
    """(key, failure rate %, failed, completed) by ``task_type`` or ``platform``, worst first."""
    rows = (
        ThroughputRollup.objects.filter(minute__gte=since)
        .values(field)
        .annotate(done=Sum("completed"), lost=Sum("failed"))
        .order_by()
    )
    rates = [
        (row[field], 100 * row["lost"] / (row["done"] + row["lost"]), row["lost"], row["done"])
        for row in rows
        if row["done"] + row["lost"]
    ]
    return sorted(rates, key=lambda rate: (-rate[1], -rate[2], rate[0]))[:TOP_KEYS]


def failure_rate_chart(field: str, since: dt.datetime) -> SafeString:
    rates = failure_rates(field, since)
    by_kind = field == "task_type"
    return bar_chart(
        title=gettext("Failure rate by kind, last 24 hours")
        if by_kind
        else gettext("Failure rate by platform, last 24 hours"),
        labels=[key or gettext("(none)") for key, *_ in rates],
        series=[Series(gettext("failure rate"), [rate for _, rate, *_ in rates], FAILED_COLOUR)],
        x_label=gettext("kind") if by_kind else gettext("platform"),
        y_label=gettext("failed / finished (%)"),
        value_format=_percent,
        no_data=gettext("No data"),
    )


def percentile(bins: dict[int, int], fraction: float) -> float | None:
    """Nearest-rank percentile of a duration histogram: the value of the bin holding the rank."""
    total = sum(bins.values())
    if not total:
        return None
    rank, seen = max(math.ceil(fraction * total), 1), 0
    for index in sorted(bins):
        seen += bins[index]
        if seen >= rank:
            return bin_value(index)
    return None  # pragma: no cover - the ranks add up to the total


def duration_percentiles(since: dt.datetime) -> list[tuple[str, float, float, int]]:
    """(kind, p50 s, p95 s, tasks) of the completed tasks' finishing attempts, busiest first."""
    histograms: dict[str, dict[int, int]] = defaultdict(dict)
    for kind, index, n in (
        DurationRollup.objects.filter(minute__gte=since)
        .values_list("task_type", "bin")
        .annotate(total=Sum("n"))
        .values_list("task_type", "bin", "total")
        .order_by()
    ):
        histograms[kind][index] = n
    rows = [
        (kind, percentile(bins, 0.5) or 0.0, percentile(bins, 0.95) or 0.0, sum(bins.values()))
        for kind, bins in histograms.items()
    ]
    return sorted(rows, key=lambda row: (-row[3], row[0]))[:TOP_KEYS]


def duration_chart(since: dt.datetime) -> SafeString:
    rows = duration_percentiles(since)
    return bar_chart(
        title=gettext("Duration p50 and p95 by kind, last 24 hours"),
        labels=[kind for kind, *_ in rows],
        series=[
            Series("p50", [p50 for _, p50, _, _ in rows], P50_COLOUR),
            Series("p95", [p95 for _, _, p95, _ in rows], P95_COLOUR),
        ],
        x_label=gettext("kind"),
        y_label=gettext("seconds"),
        value_format=_seconds,
        no_data=gettext("No data"),
    )


def _buckets(samples: Iterable[tuple[dt.datetime, int, int]], starts: list[dt.datetime]) -> dict:
    highest: dict[dt.datetime, tuple[int, int]] = {}
    first = starts[0]
    for minute, queued, running in samples:
        start = starts[int((minute - first).total_seconds() // (QUEUE_BUCKET * 60))]
        old = highest.get(start, (0, 0))
        highest[start] = (max(old[0], queued), max(old[1], running))
    return highest


def queue_depth_chart(now: dt.datetime) -> SafeString:
    """Queued and running tasks over the last 24 hours, the highest sample per 10 minutes."""
    end = floor_minute(now) + dt.timedelta(minutes=1)
    points = 24 * 60 // QUEUE_BUCKET
    starts = [end - dt.timedelta(minutes=QUEUE_BUCKET * (points - i)) for i in range(points)]
    samples = QueueDepthSample.objects.filter(minute__gte=starts[0], minute__lt=end).values_list(
        "minute", "queued", "running"
    )
    highest = _buckets(samples, starts)

    def values(position: int) -> list[float | None]:
        return [highest[s][position] if s in highest else None for s in starts]

    return line_chart(
        title=gettext("Queue depth, last 24 hours"),
        labels=[_local(start, "%H:%M") for start in starts],
        series=[
            Series(gettext("queued"), values(0), QUEUED_COLOUR),
            Series(gettext("running"), values(1), RUNNING_COLOUR),
        ],
        x_label=gettext("time"),
        y_label=gettext("tasks"),
        no_data=gettext("No data"),
    )


def folded_until() -> dt.datetime | None:
    return ThroughputRollup.objects.aggregate(last=Max("minute"))["last"]


def charts(model_admin, request: HttpRequest) -> HttpResponse:
    """The Charts page (needs the view permission on tasks, as the dashboard does)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    now = timezone.now()
    day = now - dt.timedelta(hours=24)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("Task Center charts"),
        "charts": [
            throughput_per_minute(now),
            throughput_per_hour(now),
            failure_rate_chart("task_type", day),
            failure_rate_chart("platform", day),
            duration_chart(day),
            queue_depth_chart(now),
        ],
        "last_minute": folded_until(),
        "opts": Task._meta,
    }
    return TemplateResponse(request, "admin/taskcenter/charts.html", context)
