"""The Charts page and the dashboard's chart: SVG drawn from the reaper's rollups, with the
numbers in each bar's and point's ``<title>``."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from taskcenter.lib.svg_charts import Series, bar_chart, line_chart, nice_ceiling
from taskcenter.models import (
    DurationRollup,
    QueueDepthSample,
    Status,
    Task,
    TaskExecution,
    ThroughputRollup,
)
from taskcenter.models.rollup_fold import floor_minute, fold_to_now
from taskcenter.models.tally_triggers import bin_value, duration_bin
from tests.support.lifecycle import task_in

CHARTS = reverse("admin:taskcenter_task_charts")


def titles(html: str) -> list[str]:
    return re.findall(r"<title[^>]*>([^<]*)</title>", html)


@pytest.fixture
def rollups(db):
    """Rollup rows as the reaper writes them: a few minutes ago and two days ago."""
    minute = floor_minute(timezone.now()) - dt.timedelta(minutes=5)
    old = minute - dt.timedelta(days=2)
    rows = [
        (minute, "scrape.posts", "douyin", 7, 3),
        (minute, "publish.video", "kuaishou", 2, 0),
        (old, "scrape.posts", "douyin", 40, 10),
    ]
    for at, kind, platform, completed, failed in rows:
        ThroughputRollup.objects.create(
            minute=at, task_type=kind, platform=platform, completed=completed, failed=failed
        )
    for index, n in ((duration_bin(1.0), 18), (duration_bin(10.0), 2)):
        DurationRollup.objects.create(minute=minute, task_type="scrape.posts", bin=index, n=n)
    QueueDepthSample.objects.create(minute=minute, queued=42, running=4)
    return minute


def test_charts_page_draws_every_chart_with_the_rollups_numbers(admin_client, rollups):
    response = admin_client.get(CHARTS)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="tc-chart"') == 6
    assert 'role="img"' in html
    label = timezone.localtime(rollups).strftime("%H:%M")
    tips = titles(html)
    # The last hour, per minute: only the recent rows.
    assert f"{label}: completed 9" in tips
    assert f"{label}: failed 3" in tips
    # Per hour over the week: the two-day-old rows too (40 completed, 10 failed).
    hour = timezone.localtime(rollups - dt.timedelta(days=2)).strftime("%m-%d %H:00")
    assert f"{hour}: completed 40" in tips
    # Failure rates over 24 hours: 3 of 10 for the kind and the platform; 0 for the other.
    assert "scrape.posts: failure rate 30.0%" in tips
    assert "douyin: failure rate 30.0%" in tips
    assert "publish.video: failure rate 0.0%" in tips
    # p50 from the 18 one-second tasks, p95 from the two ten-second ones (the bins' values).
    assert f"scrape.posts: p50 {bin_value(duration_bin(1.0)):.3g} s" in tips
    assert f"scrape.posts: p95 {bin_value(duration_bin(10.0)):.3g} s" in tips
    # Queue depth: the sample, in its ten-minute bucket.
    assert any(tip.endswith(": queued 42") for tip in tips)
    assert any(tip.endswith(": running 4") for tip in tips)
    # Titles and axis labels of their own.
    assert "Tasks finished per minute, last hour" in tips
    assert "Queue depth, last 24 hours" in tips


def test_charts_follow_the_reaper_fold_of_real_tasks(admin_client, make_task):
    task = task_in(Status.COMPLETED, make_task)
    at = floor_minute(timezone.now()) - dt.timedelta(minutes=3)
    Task.objects.filter(pk=task.pk).update(finished_at=at)
    TaskExecution.objects.filter(task=task).update(duration=2.0)
    task_in(Status.FAILED, make_task)  # finishes now: in the current minute, not folded yet
    fold_to_now()

    html = admin_client.get(CHARTS).content.decode()

    label = timezone.localtime(at).strftime("%H:%M")
    assert f"{label}: completed 1" in titles(html)


def test_empty_charts_say_there_is_no_data(admin_client):
    response = admin_client.get(CHARTS)

    assert response.status_code == 200
    assert response.content.decode().count("No data") >= 6


def test_dashboard_shows_the_last_hour_chart(admin_client, rollups):
    response = admin_client.get(reverse("admin:taskcenter_task_dashboard"))

    assert response.status_code == 200
    label = timezone.localtime(rollups).strftime("%H:%M")
    assert f"{label}: completed 9" in titles(response.content.decode())
    assert CHARTS in response.content.decode()


@pytest.mark.parametrize("path", [CHARTS, reverse("admin:taskcenter_task_triage")])
def test_charts_and_triage_pages_send_non_staff_to_the_login(client, user, path):
    client.force_login(user)

    response = client.get(path)

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_charts_are_in_the_operators_language(admin_client, rollups):
    html = admin_client.get(CHARTS, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "最近一小时每分钟完成的任务" in html

    html = admin_client.get(CHARTS, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "直近1時間の1分ごとの終了タスク数" in html


# --- the SVG module alone ------------------------------------------------------------------


def test_bar_chart_is_accessible_and_escapes_labels():
    svg = bar_chart(
        title="Per <kind>",
        labels=["a&b", "c"],
        series=[Series("done", [1, 2], "#000"), Series("failed", [3, None], "#f00")],
        x_label="kind",
        y_label="tasks",
        stacked=True,
    )
    assert svg.startswith("<svg")
    assert 'role="img"' in svg
    assert "aria-labelledby" in svg
    assert titles(svg)[:1] == ["Per &lt;kind&gt;"]
    assert "a&amp;b: done 1" in titles(svg)
    assert "a&amp;b: failed 3" in titles(svg)
    assert "c: failed" not in svg  # None draws nothing
    assert ">kind</text>" in svg
    assert ">tasks</text>" in svg


def test_line_chart_breaks_at_missing_points():
    svg = line_chart(
        title="Depth",
        labels=["1", "2", "3", "4"],
        series=[Series("queued", [1, 2, None, 4], "#00f")],
        x_label="time",
        y_label="tasks",
    )
    assert svg.count("<circle") == 3
    assert svg.count("<polyline") == 1  # 1-2 joined; 4 alone draws no line
    assert "4: queued 4" in titles(svg)


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (12, 20), (230, 250), (0.3, 0.5)]
)
def test_axis_tops_are_round_numbers(value, ceiling):
    assert nice_ceiling(value) == ceiling


def test_hours_are_the_operators_local_hours(admin_client, rollups, settings):
    settings.TIME_ZONE = "Asia/Kolkata"  # UTC+5:30: its hours start at half past UTC hours

    html = admin_client.get(CHARTS).content.decode()

    with timezone.override("Asia/Kolkata"):
        hour = timezone.localtime(rollups - dt.timedelta(days=2)).strftime("%m-%d %H:00")
        label = timezone.localtime(rollups).strftime("%H:%M")
    assert f"{hour}: completed 40" in titles(html)
    assert f"{label}: completed 9" in titles(html)
