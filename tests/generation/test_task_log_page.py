"""new-api's task log page, replayed: every request it sends, as it builds them, and every field
it reads from the answers, with its type.

Read from new-api's ``web/src/hooks/task-logs/useTaskLogsData.js`` (the requests),
``web/src/components/table/task-logs/TaskLogsColumnDefs.jsx`` (the table), ``TaskLogsDashboard.jsx``
and ``modals/AudioPreviewModal.jsx`` (the figures and the music preview). The page loads the
list and the statistics together, for the "today" preset and the "all" media tab; an
administrator's page asks ``/api/task/`` and ``/api/task/stats`` instead, with ``channel_id``
when one is typed. The older page, without the dashboard, sends ``task_id=`` and (for
administrators) ``channel_id=`` even when empty.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from quota import ledger as quota
from taskcenter.models import Task
from tests.support.generation import (
    PAGE_SIZE,
    created_at,
    epoch,
    finished,
    list_url,
    local,
    page_get,
    preset,
    stats_url,
)

pytestmark = pytest.mark.usefixtures("afternoon")

WORDS = {"NOT_START", "SUBMITTED", "QUEUED", "IN_PROGRESS", "FAILURE", "SUCCESS", "UNKNOWN"}


def answer(response) -> Any:
    """The page's ``const { success, message, data } = res.data`` on a success."""
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    assert isinstance(body["message"], str)
    return body["data"]


def page(response) -> list[dict]:
    """``syncPageData``: items, total, page and page_size."""
    data = answer(response)
    assert isinstance(data["items"], list)
    for name in ("total", "page", "page_size"):
        assert isinstance(data[name], int), name
    return data["items"]


def assert_row_as_the_table_reads_it(item: dict, *, admin: bool) -> None:
    """Each column's reads: times are epoch ints, ``progress`` text the page strips of "%",
    the prompt a string in ``properties.input``, the model name in ``properties``."""
    assert isinstance(item["id"], int)
    for name in ("created_at", "updated_at", "submit_time", "start_time", "finish_time"):
        assert isinstance(item[name], int), name
    for name in ("task_id", "platform", "action", "fail_reason"):
        assert isinstance(item[name], str), name
    assert item["status"] in WORDS
    assert re.fullmatch(r"\d{1,3}%", item["progress"])
    properties = item["properties"]
    assert isinstance(properties, dict)
    assert isinstance(properties["input"], str)
    assert isinstance(properties["origin_model_name"], str)
    assert properties["origin_model_name"]
    assert item["data"] is None or isinstance(item["data"], dict | list)
    if admin:
        assert isinstance(item["channel_id"], int)
        assert isinstance(item["username"], str)
        assert item["username"]
    else:
        assert "channel_id" not in item
        assert "username" not in item


def is_suno_preview(item: dict) -> bool:
    """The page's test for the "preview music" link."""
    data = item["data"]
    return (
        item["platform"] == "suno"
        and item["status"] == "SUCCESS"
        and isinstance(data, list)
        and any(clip.get("audio_url") for clip in data)
    )


def assert_stats_as_the_dashboard_reads_them(stats: dict) -> None:
    assert isinstance(stats["running_count"], int)
    assert isinstance(stats["daily_counts"], list)
    for bucket in stats["daily_counts"]:
        assert set(bucket) == {"date", "total"}
        assert isinstance(bucket["date"], str)
        assert isinstance(bucket["total"], int)
    for name in ("total_stats", "image_stats", "video_stats"):
        assert set(stats[name]) == {"running", "success", "failure"}, name
        assert all(isinstance(value, int) for value in stats[name].values()), name


@pytest.fixture
def tasks(make_task, user, other_user):
    """alice: a finished song, failed lyrics and a queued song today, a song eight days ago;
    bob: a song today on another channel."""
    quota.grant(user.pk, 100)
    quota.grant(other_user.pk, 100)
    song = finished(
        make_task(
            "suno.song",
            {"prompt": "a song about the sea", "title": "Sea", "tags": "sea shanty"},
            start=True,
            channel_id=7,
        )
    )
    lyrics = finished(
        make_task("suno.lyrics", {"prompt": "words about rain"}, start=True, channel_id=7),
        failure="suno failed job gen-1: Prompt rejected by moderation",
    )
    queued = make_task("suno.song", {"prompt": "a queued song"}, start=True, channel_id=7)
    old = make_task("suno.song", {"prompt": "an old song"}, start=True, channel_id=7)
    theirs = make_task(
        "suno.song", {"prompt": "bob's song"}, owner=other_user, start=True, channel_id=9
    )
    created_at(song, local(0, 9, 5))
    created_at(lyrics, local(0, 9, 40))
    created_at(queued, local(0, 13, 10))
    created_at(old, local(8, 12))
    created_at(theirs, local(0, 11, 30))
    return {"song": song, "lyrics": lyrics, "queued": queued, "old": old, "theirs": theirs}


def test_a_users_page_loads_its_table_and_dashboard_for_today(alice, tasks):
    start, end = preset(1)

    rows = page(page_get(alice, list_url(start, end)))
    stats = answer(page_get(alice, stats_url(start, end)))

    assert [row["id"] for row in rows] == [
        tasks["queued"].pk,
        tasks["lyrics"].pk,
        tasks["song"].pk,
    ], "today's tasks of the caller, newest first"
    for row in rows:
        assert_row_as_the_table_reads_it(row, admin=False)
    queued, lyrics, song = rows
    assert song["properties"]["input"] == "a song about the sea", "the prompt column"
    assert song["properties"]["origin_model_name"] == "suno_song", "the model column"
    assert (song["status"], song["progress"]) == ("SUCCESS", "100%")
    assert is_suno_preview(song), "the music preview link"
    assert not is_suno_preview(queued)
    clip = song["data"][0]
    assert clip["audio_url"].startswith("https://")
    assert clip["audio_url"].endswith(".mp3")
    assert clip["image_url"].startswith("https://")
    assert clip["title"] == "Sea"
    assert clip["metadata"]["tags"] == "sea shanty"
    assert isinstance(clip["metadata"]["duration"], int)
    assert clip["metadata"]["duration"] > 0
    assert (lyrics["status"], lyrics["data"]) == ("FAILURE", None)
    assert "Prompt rejected" in lyrics["fail_reason"], "the details column"
    assert lyrics["properties"]["input"] == "words about rain"
    assert (queued["status"], queued["data"], queued["finish_time"]) == ("QUEUED", None, 0)

    assert_stats_as_the_dashboard_reads_them(stats)
    assert [bucket["date"] for bucket in stats["daily_counts"]] == [
        f"{hour:02d}:00" for hour in range(24)
    ], "today: one bucket per hour"
    per_hour = {bucket["date"]: bucket["total"] for bucket in stats["daily_counts"]}
    assert (per_hour["09:00"], per_hour["13:00"], per_hour["11:00"]) == (2, 1, 0)
    assert sum(per_hour.values()) == 3, "bob's task and alice's old one are not counted"
    assert stats["running_count"] == 1
    assert stats["total_stats"] == {"running": 1, "success": 1, "failure": 1}
    assert (
        stats["image_stats"] == stats["video_stats"] == {"running": 0, "success": 0, "failure": 0}
    )


def test_an_administrators_page_shows_everybody_with_username_and_channel(
    admin, tasks, user, other_user
):
    start, end = preset(7)

    rows = page(page_get(admin, list_url(start, end, admin=True)))
    on_nine = page(page_get(admin, list_url(start, end, admin=True, channel_id="9")))
    stats = answer(page_get(admin, stats_url(start, end, admin=True)))
    stats_nine = answer(page_get(admin, stats_url(start, end, admin=True, channel_id="9")))

    for row in rows:
        assert_row_as_the_table_reads_it(row, admin=True)
    users = {row["id"]: (row["username"], row["user_id"], row["channel_id"]) for row in rows}
    assert users == {
        tasks["song"].pk: (user.username, user.pk, 7),
        tasks["lyrics"].pk: (user.username, user.pk, 7),
        tasks["queued"].pk: (user.username, user.pk, 7),
        tasks["theirs"].pk: (other_user.username, other_user.pk, 9),
    }, "the last seven days, everybody's (the eight-day-old song is out of range)"
    assert [row["id"] for row in on_nine] == [tasks["theirs"].pk]
    assert_stats_as_the_dashboard_reads_them(stats)
    assert len(stats["daily_counts"]) == 7, "not only today: one bucket per day"
    assert stats["daily_counts"][-1] == {"date": local(0, 0).date().isoformat(), "total": 4}
    assert stats["total_stats"] == {"running": 2, "success": 1, "failure": 1}
    assert stats_nine["total_stats"] == {"running": 1, "success": 0, "failure": 0}


@pytest.mark.parametrize("media_type", ["video", "image"])
def test_the_video_and_image_tabs_hold_no_songs_and_all_holds_them(alice, tasks, media_type):
    start, end = preset(7)

    tab = page_get(alice, list_url(start, end, media_type=media_type))
    tab_stats = answer(page_get(alice, stats_url(start, end, media_type=media_type)))
    everything = page(page_get(alice, list_url(start, end, media_type="all")))

    assert (page(tab), tab.json()["data"]["total"]) == ([], 0)
    assert tab_stats["running_count"] == 0
    assert [bucket["total"] for bucket in tab_stats["daily_counts"]] == [0] * 7
    assert len(everything) == 3


def test_searching_by_task_id_and_paging_send_what_the_page_sends(alice, tasks):
    start, end = preset(1)
    song = tasks["song"]

    found = page(page_get(alice, list_url(start, end, task_id=song.external_id)))
    second = page_get(alice, list_url(start, end, page=2, size=2))

    assert [row["id"] for row in found] == [song.pk]
    data = answer(second)
    assert (data["page"], data["page_size"], data["total"]) == (2, 2, 3)
    assert [row["id"] for row in data["items"]] == [song.pk]


def test_the_older_page_without_dashboard_sends_empty_filters_and_is_answered(alice, admin, tasks):
    """Before the dashboard the page wrote ``task_id=${task_id}`` and ``channel_id=${...}``
    into the URL whether typed or not: empty values mean "not set"."""
    start, end = preset(1)
    query = f"p=1&page_size={PAGE_SIZE}&task_id=&start_timestamp={start}&end_timestamp={end}"

    mine = page(page_get(alice, f"/api/task/self?{query}"))
    everybody = page(page_get(admin, f"/api/task/?p=1&page_size={PAGE_SIZE}&channel_id=&{query}"))

    assert len(mine) == 3
    assert len(everybody) == 4


def test_a_missing_date_reads_as_no_bound_as_new_api_does(alice, tasks):
    """``start_timestamp=0`` (a date the page could not read) is no lower bound."""
    rows = page(page_get(alice, list_url(0, epoch(local(0, 23, 59)))))
    stats = answer(page_get(alice, stats_url(0, 0)))

    assert len(rows) == 4
    assert [bucket["date"] for bucket in stats["daily_counts"]] == [
        local(8, 0).date().isoformat(),
        local(0, 0).date().isoformat(),
    ], "no range: only the days that have tasks"


def test_a_user_on_the_administrators_urls_gets_new_apis_refusal(alice, tasks):
    start, end = preset(1)

    for url in (list_url(start, end, admin=True), stats_url(start, end, admin=True)):
        response = page_get(alice, url)
        assert response.status_code == 403, url
        assert response.json() == {"success": False, "message": "Administrators only."}
    assert Task.objects.count() == 5
