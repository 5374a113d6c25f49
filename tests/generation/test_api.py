"""New-api's task center dialect over HTTP: /api/task/self, /api/task/ (staff) and /api/task/submit.

Shapes, envelopes, filters, pagination, auth (Bearer + New-Api-User), status words, quota,
and one truth with the canonical API. Tasks are made through the lifecycle or the dialect.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from quota import ledger as quota
from quota.models import LedgerKind, QuotaLedgerEntry
from taskcenter import lifecycle
from taskcenter.api.status_words import GENERATION, STATUS_WORDS
from taskcenter.models import Status, Task
from tests.support.clients import new_api_client, token_client
from tests.support.lifecycle import task_in

SELF = "/api/task/self"
ALL = "/api/task/"
SUBMIT = "/api/task/submit"
USER_FIELDS = [
    "id",
    "created_at",
    "updated_at",
    "task_id",
    "platform",
    "user_id",
    "quota",
    "action",
    "status",
    "fail_reason",
    "submit_time",
    "start_time",
    "finish_time",
    "progress",
    "properties",
    "data",
]


def song(make_task, prompt: str = "a song about tea", **fields) -> Task:
    return make_task("suno.song", {"prompt": prompt}, **fields)


def failure(response, status: int) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert set(body) == {"success", "message"}
    return body["message"]


def items(response) -> list[dict]:
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["success"], body["message"]) == (True, "")
    return body["data"]["items"]


# --- shape and scope -------------------------------------------------------------------------


def test_self_lists_the_callers_generation_tasks_in_new_apis_shape(
    alice, bob, make_task, user, other_user
):
    mine = song(make_task, start=True, channel_id=7)
    make_task("demo.noop")  # not a generation task: not in this dialect
    make_task("suno.lyrics", {"prompt": "theirs"}, owner=other_user)

    response = alice.get(SELF)

    body = response.json()
    assert body["data"]["total"] == 1
    assert (body["data"]["page"], body["data"]["page_size"]) == (1, 20)
    (item,) = items(response)
    assert list(item) == USER_FIELDS, "exactly new-api's fields, no channel_id for users"
    mine.refresh_from_db()
    assert item["id"] == mine.pk
    assert item["user_id"] == user.pk
    assert (item["platform"], item["action"], item["quota"]) == ("suno", "song", 10)
    assert (item["status"], item["progress"], item["fail_reason"]) == ("QUEUED", "0%", "")
    assert item["created_at"] == int(mine.created_at.timestamp())
    assert item["submit_time"] == int(mine.submitted_at.timestamp())
    assert (item["start_time"], item["finish_time"]) == (0, 0)
    assert item["properties"]["input"] == "a song about tea", "new-api keeps the prompt as text"
    assert item["properties"]["parameters"] == {
        "prompt": "a song about tea",
        "title": "",
        "tags": "",
        "make_instrumental": False,
    }
    assert item["data"] is None, "no result yet: null, as new-api's empty data column"


def test_admin_lists_everybodys_tasks_with_channel_and_filters_by_it(
    admin, alice, bob, make_task, other_user
):
    song(make_task, channel_id=1)
    theirs = make_task("suno.lyrics", {"prompt": "x"}, owner=other_user, channel_id=2)

    everything = items(admin.get(ALL))
    channel_two = items(admin.get(ALL, {"channel_id": "2"}))
    by_user = items(admin.get(ALL, {"user_id": other_user.pk}))

    assert len(everything) == 2
    assert all(item["channel_id"] in (1, 2) for item in everything)
    assert [item["id"] for item in channel_two] == [theirs.pk]
    assert [item["id"] for item in by_user] == [theirs.pk]
    assert failure(admin.get(ALL, {"channel_id": "two"}), 400).startswith("channel_id:")


def test_admin_list_names_each_tasks_user(admin, alice, bob, make_task, user, other_user):
    song(make_task)
    make_task("suno.lyrics", {"prompt": "x"}, owner=other_user)

    everything = items(admin.get(ALL))
    (mine,) = items(alice.get(SELF))

    assert {(item["user_id"], item["username"]) for item in everything} == {
        (user.pk, "alice"),
        (other_user.pk, "bob"),
    }
    assert "username" not in mine


@pytest.mark.parametrize(
    ("media_type", "listed"), [("all", 2), ("", 2), ("ALL", 2), ("video", 0), (" image ", 0)]
)
def test_media_type_keeps_songs_and_lyrics_out_of_video_and_image(
    alice, make_task, media_type, listed
):
    song(make_task)
    make_task("suno.lyrics", {"prompt": "words"})

    response = alice.get(SELF, {"media_type": media_type})

    assert len(items(response)) == listed
    assert response.json()["data"]["total"] == listed


def test_a_video_action_is_listed_under_video_only(alice, admin, make_task):
    """new-api classes a task by its action; no kind of ours has a video action yet, so a row is
    rewritten to one."""
    clip = song(make_task)
    song(make_task)
    Task.objects.filter(pk=clip.pk).update(action="textGenerate")

    videos = items(alice.get(SELF, {"media_type": "video"}))
    images = items(admin.get(ALL, {"media_type": "image"}))

    assert [item["id"] for item in videos] == [clip.pk]
    assert images == []


def test_zero_timestamps_are_no_bound_as_in_new_api(alice, make_task):
    song(make_task)

    listed = items(alice.get(SELF, {"start_timestamp": "0", "end_timestamp": "0"}))

    assert len(listed) == 1


def test_the_all_tasks_list_is_for_staff_only(alice, make_task):
    song(make_task)

    message = failure(alice.get(ALL), 403)

    assert "Administrators only" in message


# --- auth ------------------------------------------------------------------------------------


def test_new_api_user_must_match_the_token(user, other_user, make_task):
    quota.grant(user.pk, 10)
    song(make_task)
    client = token_client(user)

    missing = client.get(SELF)
    client.credentials(
        HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"],
        HTTP_NEW_API_USER=str(other_user.pk),
    )
    mismatch = client.get(SELF)

    assert "New-Api-User header is required" in failure(missing, 401)
    assert "does not match" in failure(mismatch, 401)


def test_without_a_token_the_answer_is_401_in_the_envelope(db):
    client = APIClient()

    response = client.get(SELF, HTTP_NEW_API_USER="1")

    failure(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_bad_token_is_401_in_the_envelope(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer nope", HTTP_NEW_API_USER=str(user.pk))

    assert "Invalid token" in failure(client.get(SELF), 401)


# --- filters and pagination ------------------------------------------------------------------


@pytest.mark.parametrize("status", list(Status))
def test_status_words_come_from_the_one_table(alice, make_task, status):
    task = task_in(status, make_task, task_type="suno.song", parameters={"prompt": "p"})
    word = STATUS_WORDS[status][GENERATION]

    shown = items(alice.get(SELF))
    filtered = items(alice.get(SELF, {"status": word}))

    assert [item["status"] for item in shown] == [word]
    assert [item["id"] for item in filtered] == [task.pk]


def test_status_filter_words_map_to_canonical_statuses(alice, make_task):
    queued = song(make_task, start=True)
    cancelled = lifecycle.cancel_task(song(make_task))
    failed = task_in(Status.FAILED, make_task, task_type="suno.song", parameters={"prompt": "p"})

    failures = {item["id"] for item in items(alice.get(SELF, {"status": "FAILURE"}))}

    assert failures == {cancelled.pk, failed.pk}
    assert [i["id"] for i in items(alice.get(SELF, {"status": "queued"}))] == [queued.pk]
    assert items(alice.get(SELF, {"status": "SUBMITTED"})) == []
    assert items(alice.get(SELF, {"status": "UNKNOWN"})) == []
    message = failure(alice.get(SELF, {"status": "DONE"}), 400)
    assert message.startswith("status:")
    assert "NOT_START" in message


def test_filters_by_platform_task_id_action_and_time(alice, make_task):
    old = song(make_task)
    lyrics = make_task("suno.lyrics", {"prompt": "words"})
    Task.objects.filter(pk=lyrics.pk).update(external_id="gen-000042")
    past = timezone.now() - timedelta(days=2)
    Task.objects.filter(pk=old.pk).update(created_at=past)
    now = int(timezone.now().timestamp())

    def ids(**params) -> set[int]:
        return {item["id"] for item in items(alice.get(SELF, params))}

    assert ids(platform="suno") == {old.pk, lyrics.pk}
    assert ids(platform="midjourney") == set()
    assert ids(task_id="gen-000042") == {lyrics.pk}
    assert ids(action="song") == {old.pk}
    assert ids(action="lyrics") == {lyrics.pk}
    assert ids(start_timestamp=now - 3600) == {lyrics.pk}
    assert ids(end_timestamp=now - 3600) == {old.pk}
    assert ids(start_timestamp=int(past.timestamp()) - 1, end_timestamp=now + 1) == {
        old.pk,
        lyrics.pk,
    }
    assert items(alice.get(SELF, {"task_id": "gen-000042"}))[0]["task_id"] == "gen-000042"


def test_pagination_pages_newest_first_and_caps_the_page_size(alice, make_task):
    tasks = [song(make_task, prompt=f"song {n}") for n in range(5)]

    first = alice.get(SELF, {"p": 1, "page_size": 2}).json()["data"]
    third = alice.get(SELF, {"p": 3, "page_size": 2}).json()["data"]
    beyond = alice.get(SELF, {"p": 9, "page_size": 2}).json()["data"]
    capped = alice.get(SELF, {"page_size": 1000}).json()["data"]

    assert [i["id"] for i in first["items"]] == [tasks[4].pk, tasks[3].pk]
    assert (first["total"], first["page"], first["page_size"]) == (5, 1, 2)
    assert [i["id"] for i in third["items"]] == [tasks[0].pk]
    assert (beyond["items"], beyond["total"]) == ([], 5)
    assert capped["page_size"] == 100
    assert len(capped["items"]) == 5


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"p": "0"}, "p"),
        ({"p": "x"}, "p"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "many"}, "page_size"),
        ({"start_timestamp": "yesterday"}, "start_timestamp"),
        ({"end_timestamp": "-5"}, "end_timestamp"),
        ({"end_timestamp": "99999999999999999999"}, "end_timestamp"),
        ({"start_timestamp": "200", "end_timestamp": "100"}, "end_timestamp"),
        ({"task_id": "x" * 200}, "task_id"),
        ({"media_type": "audio"}, "media_type"),
    ],
)
def test_bad_query_values_are_400_naming_the_field(alice, params, field):
    message = failure(alice.get(SELF, params), 400)

    assert message.startswith(f"{field}:")


# --- submit and quota ------------------------------------------------------------------------


def test_submit_creates_a_queued_task_charges_quota_and_shows_everywhere(alice, user):
    response = alice.post(SUBMIT, {"action": "song", "prompt": "rain on a tin roof"}, format="json")

    assert response.status_code == 200, response.content
    item = response.json()["data"]
    task = Task.objects.get(pk=item["id"])
    assert (task.task_type, task.status, task.owner, task.quota) == (
        "suno.song",
        Status.QUEUED,
        user,
        10,
    )
    assert task.parameters["prompt"] == "rain on a tin roof"
    assert quota.balance_of(user.pk) == 990
    assert QuotaLedgerEntry.objects.get(task=task).kind == LedgerKind.CHARGE
    canonical = token_client(user).get(f"/api/v1/tasks/{task.pk}").json()
    assert canonical["status"] == Status.QUEUED
    assert items(alice.get(SELF))[0]["status"] == "QUEUED"


def test_submit_without_enough_quota_is_402_and_creates_nothing(user):
    client = new_api_client(user)
    quota.grant(user.pk, 5)

    response = client.post(SUBMIT, {"action": "song", "prompt": "x"}, format="json")

    message = failure(response, 402)
    assert "Insufficient quota" in message
    assert "costs 10" in message
    assert not Task.objects.exists()
    assert quota.balance_of(user.pk) == 5


def test_canonical_create_of_a_generation_kind_is_also_refused_402_without_quota(user):
    response = token_client(user).post(
        "/api/v1/tasks", {"task_type": "suno.lyrics", "parameters": {"prompt": "x"}}, format="json"
    )

    assert response.status_code == 402, response.content
    assert response.json()["needed"] == 2
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "song"}, "parameters.prompt"),
        ({"action": "song", "prompt": ""}, "parameters.prompt"),
        ({"action": "song", "prompt": "x" * 3001}, "parameters.prompt"),
        ({"action": "dance", "prompt": "x"}, "action"),
        ({"platform": "midjourney", "action": "song", "prompt": "x"}, "action"),
        ({"prompt": "x"}, "action"),
        ({"action": "song", "prompt": "x", "channel_id": "c"}, "channel_id"),
        ({"action": "song", "prompt": "x", "make_instrumental": "maybe"}, "parameters"),
    ],
)
def test_bad_submissions_are_400_naming_the_field_and_charge_nothing(alice, user, body, field):
    message = failure(alice.post(SUBMIT, body, format="json"), 400)

    assert message.startswith(field)
    assert not Task.objects.exists()
    assert quota.balance_of(user.pk) == 1000


def test_a_body_that_is_not_an_object_is_400(alice):
    failure(alice.post(SUBMIT, ["song"], format="json"), 400)


# --- one truth ------------------------------------------------------------------------------


def test_a_cancel_through_the_canonical_api_shows_at_once_and_refunds(alice, user):
    created = alice.post(SUBMIT, {"action": "lyrics", "prompt": "cancel me"}, format="json")
    task_id = created.json()["data"]["id"]

    cancel = token_client(user).post(f"/api/v1/tasks/{task_id}/cancel")

    assert cancel.status_code == 200
    (item,) = items(alice.get(SELF))
    assert (item["id"], item["status"]) == (task_id, "FAILURE")
    assert item["finish_time"] > 0
    assert quota.balance_of(user.pk) == 1000
    assert QuotaLedgerEntry.objects.filter(task_id=task_id, kind=LedgerKind.REFUND).count() == 1
