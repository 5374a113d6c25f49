"""The task log page's statistics: ``GET /api/task/self/stats`` and ``GET /api/task/stats``.

new-api's bucket rules (hours "HH:00" when both ends of the range are today, else days
"YYYY-MM-DD", every bucket of the range listed; without a range, only the days with tasks), in
the server's time zone; running/success/failure by the status word; image and video by action;
the caller's tasks only on ``self``; staff only on the other; bad input a 400 in new-api's
envelope naming the field. The figures come from one grouped query that an index bounds.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from generation.api.stats import DAY, HOUR, grouped_counts
from generation.api.views import of_generation_kinds
from quota import ledger as quota
from taskcenter.models import Status, Task, TaskEvent
from tests.support.clients import token_client
from tests.support.generation import (
    created_at,
    epoch,
    finished,
    local,
    page_get,
    preset,
    stats_url,
    utc,
)
from tests.support.lifecycle import task_in

pytestmark = pytest.mark.usefixtures("afternoon", "funds")

SELF, ALL = "/api/task/self/stats", "/api/task/stats"
ZERO = {"running": 0, "success": 0, "failure": 0}


@pytest.fixture
def funds(user, other_user, staff_user) -> None:
    for owner in (user, other_user, staff_user):
        quota.grant(owner.pk, 10_000)


def stats(client, url: str, **params) -> dict:
    response = client.get(url, params) if params else page_get(client, url)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["success"], body["message"]) == (True, "")
    assert list(body["data"]) == [
        "running_count",
        "daily_counts",
        "total_stats",
        "image_stats",
        "video_stats",
    ]
    return body["data"]


def counts(data: dict) -> dict[str, int]:
    return {bucket["date"]: bucket["total"] for bucket in data["daily_counts"]}


def song_at(make_task, moment, **fields) -> Task:
    fields.setdefault("start", True)
    return created_at(make_task("suno.song", {"prompt": "la"}, **fields), moment)


# --- buckets ---------------------------------------------------------------------------------


def test_today_is_counted_per_hour_in_the_servers_time_zone(alice, make_task):
    for hour, minute in ((1, 30), (9, 5), (9, 40), (13, 59)):
        song_at(make_task, local(0, hour, minute))
    song_at(make_task, local(1, 23, 59))  # yesterday, a minute before today's first bucket

    data = stats(alice, stats_url(*preset(1)))

    assert list(counts(data)) == [f"{hour:02d}:00" for hour in range(24)]
    assert {label: n for label, n in counts(data).items() if n} == {
        "01:00": 1,
        "09:00": 2,
        "13:00": 1,
    }


def test_part_of_today_lists_only_its_hours(alice, make_task):
    song_at(make_task, local(0, 9, 40))
    song_at(make_task, local(0, 13, 10))
    song_at(make_task, local(0, 13, 45))  # after the range's end

    data = stats(
        alice, SELF, start_timestamp=epoch(local(0, 9, 30)), end_timestamp=epoch(local(0, 13, 30))
    )

    assert counts(data) == {"09:00": 1, "10:00": 0, "11:00": 0, "12:00": 0, "13:00": 1}


def test_several_days_are_counted_per_day_every_day_listed(alice, make_task):
    song_at(make_task, local(8, 12))  # before the range
    song_at(make_task, local(6, 0, 0))  # the first second of the range
    song_at(make_task, local(3, 10))
    song_at(make_task, local(3, 23, 59))
    song_at(make_task, local(0, 1))

    data = stats(alice, stats_url(*preset(7)))

    days = [local(n, 0).date().isoformat() for n in range(6, -1, -1)]
    assert counts(data) == dict.fromkeys(days, 0) | {days[0]: 1, days[3]: 2, days[6]: 1}


def test_a_past_day_alone_is_one_day_not_its_hours(alice, make_task):
    song_at(make_task, local(1, 8))

    data = stats(
        alice, SELF, start_timestamp=epoch(local(1, 0)), end_timestamp=epoch(local(1, 23, 59))
    )

    assert counts(data) == {local(1, 0).date().isoformat(): 1}


def test_without_a_range_only_days_with_tasks_are_listed(alice, make_task):
    song_at(make_task, local(30, 12))
    song_at(make_task, local(2, 12))
    song_at(make_task, local(2, 13))

    everything = stats(alice, SELF)
    from_start = stats(alice, SELF, start_timestamp=epoch(local(3, 0)))

    old, recent = local(30, 0).date().isoformat(), local(2, 0).date().isoformat()
    assert counts(everything) == {old: 1, recent: 2}
    assert counts(from_start) == {recent: 2}


def test_days_and_hours_follow_the_servers_time_zone(alice, make_task, settings):
    song_at(make_task, utc(2025, 3, 1, 23, 30))
    window = {"start_timestamp": epoch(utc(2025, 3, 1)), "end_timestamp": epoch(utc(2025, 3, 3))}

    settings.TIME_ZONE = "UTC"
    in_utc = stats(alice, SELF, **window)
    settings.TIME_ZONE = "Asia/Shanghai"
    in_shanghai = stats(alice, SELF, **window)

    assert {day: n for day, n in counts(in_utc).items() if n} == {"2025-03-01": 1}
    assert {day: n for day, n in counts(in_shanghai).items() if n} == {"2025-03-02": 1}
    assert list(counts(in_shanghai)) == ["2025-03-01", "2025-03-02", "2025-03-03"]


# --- what is counted -------------------------------------------------------------------------


def test_statuses_fall_into_running_success_and_failure_as_the_list_shows_them(alice, make_task):
    made = [
        task_in(status, make_task, task_type="suno.song", parameters={"prompt": "p"})
        for status in Status
    ]
    for task in made:
        created_at(task, local(0, 10))

    data = stats(alice, stats_url(*preset(1)))

    # NOT_START (pending, stopped), QUEUED, IN_PROGRESS run; SUCCESS; FAILURE (failed, cancelled).
    assert data["total_stats"] == {"running": 4, "success": 1, "failure": 2}
    assert data["running_count"] == 4
    assert counts(data)["10:00"] == 7


def test_image_and_video_figures_follow_new_apis_actions(alice, make_task):
    """No kind of ours has an image or video action yet; rows are rewritten to new-api's
    action names to show the classification (by action alone, as new-api does)."""
    video = finished(song_at(make_task, local(0, 9)))
    image = song_at(make_task, local(0, 10))
    song_at(make_task, local(0, 11))
    Task.objects.filter(pk=video.pk).update(action="textGenerate")
    Task.objects.filter(pk=image.pk).update(action="imageEdit")
    today = preset(1)

    everything = stats(alice, stats_url(*today))
    videos = stats(alice, stats_url(*today, media_type="video"))
    images = stats(alice, stats_url(*today, media_type="IMAGE"))
    listed = alice.get("/api/task/self", {"media_type": "video"}).json()["data"]["items"]

    assert everything["total_stats"] == {"running": 2, "success": 1, "failure": 0}
    assert everything["video_stats"] == {"running": 0, "success": 1, "failure": 0}
    assert everything["image_stats"] == {"running": 1, "success": 0, "failure": 0}
    assert (videos["total_stats"], videos["image_stats"]) == (everything["video_stats"], ZERO)
    assert sum(counts(videos).values()) == 1
    assert (images["running_count"], images["video_stats"]) == (1, ZERO)
    assert [item["id"] for item in listed] == [video.pk]


def test_self_counts_only_the_callers_tasks_and_ignores_a_channel(
    alice, bob, make_task, other_user
):
    song_at(make_task, local(0, 9), channel_id=1)
    song_at(make_task, local(0, 9), channel_id=2)
    song_at(make_task, local(0, 9), owner=other_user, channel_id=1)

    mine = stats(alice, stats_url(*preset(1)))
    theirs = stats(bob, stats_url(*preset(1)))
    channel = stats(
        alice,
        SELF,
        channel_id=1,
        **dict(zip(("start_timestamp", "end_timestamp"), preset(1), strict=True)),
    )

    assert (mine["running_count"], theirs["running_count"]) == (2, 1)
    assert channel["running_count"] == 2, "new-api's own statistics take no channel filter"


def test_the_administrators_statistics_count_everybody_and_filter_by_channel(
    admin, make_task, other_user
):
    song_at(make_task, local(0, 9), channel_id=1)
    song_at(make_task, local(0, 9), channel_id=2)
    song_at(make_task, local(0, 12), owner=other_user, channel_id=1)
    make_task("demo.noop")  # not a generation task

    everybody = stats(admin, stats_url(*preset(1), admin=True))
    one = stats(admin, stats_url(*preset(1), admin=True, channel_id="1"))

    assert everybody["running_count"] == 3
    assert (one["running_count"], counts(one)["09:00"], counts(one)["12:00"]) == (2, 1, 1)


# --- refusals --------------------------------------------------------------------------------


def failure(response, status: int) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert set(body) == {"success", "message"}
    return body["message"]


def test_the_administrators_statistics_refuse_others(alice, user):
    assert failure(alice.get(ALL), 403) == "Administrators only."
    assert failure(token_client(user).get(ALL), 401).startswith("The New-Api-User header")
    assert failure(alice.__class__().get(SELF), 401)


@pytest.mark.parametrize("url", [SELF, ALL])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start_timestamp": "yesterday"}, "start_timestamp"),
        ({"start_timestamp": "1.5"}, "start_timestamp"),
        ({"end_timestamp": "-1"}, "end_timestamp"),
        ({"end_timestamp": "99999999999999999999"}, "end_timestamp"),
        ({"start_timestamp": "200", "end_timestamp": "100"}, "end_timestamp"),
        ({"start_timestamp": "1", "end_timestamp": "2000000000"}, "end_timestamp"),
        ({"media_type": "audio"}, "media_type"),
        ({"status": "DONE"}, "status"),
    ],
)
def test_bad_values_are_a_400_naming_the_field(admin, make_task, staff_user, url, params, field):
    song_at(make_task, local(0, 9), owner=staff_user)
    before = (Task.objects.count(), TaskEvent.objects.count())

    message = failure(admin.get(url, params), 400)

    assert message.startswith(f"{field}:")
    assert (Task.objects.count(), TaskEvent.objects.count()) == before


def test_channel_id_on_the_administrators_statistics_must_be_a_number(admin):
    assert failure(admin.get(ALL, {"channel_id": "seven"}), 400).startswith("channel_id:")


# --- the query -------------------------------------------------------------------------------


def test_the_grouped_query_reads_an_index_over_many_tasks(user, other_user):
    """Six thousand tasks over a year: the hourly and daily figures of one user's week read a
    range of the (owner, -created_at) index, everybody's a range of the (-created_at) one."""
    days = [local(n, 0) for n in range(365)]
    rows = [
        Task(
            task_type="suno.song",
            platform="suno",
            action="song",
            owner=(user, other_user)[n % 2],
            parameters={"prompt": "p"},
            status=Status.COMPLETED,
            created_at=days[n % 365] + timedelta(hours=n % 24),
        )
        for n in range(6000)
    ]
    Task.objects.bulk_create(rows, batch_size=2000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE taskcenter_task")
    week = of_generation_kinds(Task.objects.all(), by_range=True).filter(
        created_at__gte=local(6, 0), created_at__lte=local(0, 23, 59)
    )

    for mode in (HOUR, DAY):
        own_plan = grouped_counts(week.filter(owner=user), mode).explain()
        all_plan = grouped_counts(week, mode).explain()
        assert "task_owner_created_idx" in own_plan, own_plan
        assert "task_created_idx" in all_plan, all_plan
        own = sum(n for *_, n in grouped_counts(week.filter(owner=user), mode))
        assert own == week.filter(owner=user).count() > 0
