"""Bad uploads and bad ids are 4xx in the social-auto-upload publishing API's envelope, and
nothing is written."""

from __future__ import annotations

import pytest

from publishing.models import PlatformAccount, PublishTaskRecord, VideoFile
from publishing.platforms import PlatformType
from taskcenter.models import Status, Task
from tests.support.publishing import MAX_UPLOAD, add_account, upload, video


def _files_on_disk(root) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize(
    ("upload_file", "status", "words"),
    [
        (video("notes.txt", content_type="text/plain"), 415, "not allowed"),
        (video("fake.mp4", body=b"just some text, not a video at all"), 415, "not a video/mp4"),
        (video("huge.mp4", size=MAX_UPLOAD + 1), 413, f"limit of {MAX_UPLOAD} bytes"),
        (video("empty.mp4", body=b""), 400, "empty"),
    ],
    ids=["wrong-type", "wrong-content", "too-big", "empty"],
)
def test_bad_upload_is_refused_and_leaves_no_row_and_no_file(
    api, media_root, upload_file, status, words
):
    response = api.post("/uploadSave", {"file": upload_file}, format="multipart")

    assert response.status_code == status
    body = response.json()
    assert body["code"] == status
    assert body["data"] == {"field": "file"}
    assert body["msg"].startswith("file: ")
    assert words in body["msg"]
    assert VideoFile.objects.count() == 0
    assert _files_on_disk(media_root) == []


def test_upload_without_a_file_part_names_the_field(api, media_root):
    response = api.post("/upload", {"filename": "x"}, format="multipart")

    assert response.status_code == 400
    assert response.json()["data"] == {"field": "file"}
    assert VideoFile.objects.count() == 0


def test_good_upload_is_stored_under_the_media_root_and_listed(api, media_root):
    stored = upload(api, "my clip.mp4", size=5000)

    assert stored["filename"] == "my_clip.mp4"
    assert stored["size"] == 5000
    assert _files_on_disk(media_root) == [stored["file_path"]]
    assert (media_root / stored["file_path"]).read_bytes()[4:8] == b"ftyp"
    listed = api.get("/getFiles").json()
    assert listed["code"] == 200
    assert [f["id"] for f in listed["data"]] == [stored["id"]]


def test_publish_with_bad_ids_names_the_field_and_creates_nothing(api, other_api, media_root):
    mine = upload(api, "mine.mp4")
    my_account = add_account(api, PlatformType.DOUYIN, "me")
    theirs = add_account(other_api, PlatformType.DOUYIN, "them")
    cases = [
        ({"fileList": [999_999]}, "fileList.0"),
        ({"fileList": [mine["id"], "nope.mp4"]}, "fileList.1"),
        ({"accountList": [theirs["id"]]}, "accountList.0"),
        ({"accountList": ["abc"]}, "accountList.0"),
        ({"accountList": [True]}, "accountList.0"),
        ({"fileList": []}, "fileList"),
        ({"title": ""}, "title"),
        ({"tags": {"not": "a list"}}, "tags"),
    ]
    for change, field in cases:
        body = {"fileList": [mine["id"]], "accountList": [my_account["id"]], "title": "t", **change}
        response = api.post("/postVideosToMultiplePlatforms", body, format="json")
        assert response.status_code == 400, (change, response.content)
        assert response.json()["data"]["field"] == field, change
        assert response.json()["msg"].startswith(field + ": ")

    wrong_platform = api.post(
        "/postVideo",
        {
            "type": PlatformType.KUAISHOU,
            "fileList": [mine["id"]],
            "accountList": [my_account["id"]],
            "title": "t",
        },
        format="json",
    )
    assert wrong_platform.status_code == 400
    assert "douyin" in wrong_platform.json()["msg"]
    assert Task.objects.count() == 0
    assert PublishTaskRecord.objects.count() == 0


def test_post_video_to_one_platform_by_names(api, media_root):
    clip = upload(api, "named.mp4")
    add_account(api, PlatformType.DOUYIN, "by-name")

    response = api.post(
        "/postVideo",
        {
            "type": PlatformType.DOUYIN,
            "fileList": ["named.mp4"],
            "accountList": ["by-name"],
            "title": "By name",
            "tags": "#one #two",
            "enableTimer": True,
            "scheduleTime": "2030-01-02T03:04:05Z",
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    record = response.json()["data"]["records"][0]
    assert record["filename"] == "named.mp4"
    assert record["file_id"] == clip["id"]
    assert record["platform_name"] == "douyin"
    assert record["platform_type"] == 3
    task = Task.objects.get()
    assert task.status == Status.QUEUED
    assert task.platform == "douyin"
    assert task.parameters["tags"] == ["one", "two"]
    assert task.parameters["schedule_time"].startswith("2030-01-02T03:04:05")


def test_record_actions_with_bad_or_foreign_ids_are_4xx(api, other_api, media_root):
    clip = upload(api, "a.mp4")
    account = add_account(api, PlatformType.DOUYIN, "acc")
    batch = api.post(
        "/postVideosToMultiplePlatforms",
        {"fileList": [clip["id"]], "accountList": [account["id"]], "title": "t"},
        format="json",
    ).json()["data"]
    record_id = batch["records"][0]["id"]

    for path in ("/retryPublishTask", "/cancelPublishTask"):
        assert api.post(path, {"id": 987654}, format="json").status_code == 404
        assert api.post(path, {"id": "abc"}, format="json").status_code == 400
        assert api.post(path, {}, format="json").json()["data"]["field"] == "id"
        assert other_api.post(path, {"id": record_id}, format="json").status_code == 404
        assert other_api.post(path, {"task_id": batch["task_id"]}, format="json").status_code == 404
    assert other_api.get("/getPublishTaskRecords").json()["data"]["total"] == 0

    bad_status = [
        ({"id": record_id, "status": "发布成功"}, 400, "status"),
        ({"id": record_id, "status": "done"}, 400, "status"),
        ({"id": 10**30, "status": "已取消"}, 400, "id"),
        ({"id": 424242, "status": "已取消"}, 404, "id"),
    ]
    for body, code, field in bad_status:
        response = api.post("/updatePublishTaskStatus", body, format="json")
        assert response.status_code == code, body
        assert response.json()["data"]["field"] == field
    # A queued record cannot be retried (409), and nothing moved.
    refused = api.post("/retryPublishTask", {"id": record_id}, format="json")
    assert refused.status_code == 409
    assert refused.json()["data"]["status"] == "待发布"
    assert Task.objects.get().status == Status.QUEUED

    for query, field in [
        ({"page": 0}, "page"),
        ({"page_size": 101}, "page_size"),
        ({"status": "bogus"}, "status"),
    ]:
        response = api.get("/getPublishTaskRecords", query)
        assert response.status_code == 400
        assert response.json()["data"]["field"] == field


def test_update_status_maps_words_onto_cancel_and_retry(api, media_root):
    clip = upload(api, "b.mp4")
    account = add_account(api, PlatformType.DOUYIN, "acc")
    record_id = api.post(
        "/postVideosToMultiplePlatforms",
        {"fileList": [clip["id"]], "accountList": [account["id"]], "title": "t"},
        format="json",
    ).json()["data"]["records"][0]["id"]

    cancelled = api.post(
        "/updatePublishTaskStatus",
        {"id": record_id, "status": "已取消", "error_msg": "wrong video"},
        format="json",
    )
    assert cancelled.json()["data"]["status"] == "已取消"
    assert cancelled.json()["data"]["error_msg"] == "wrong video"
    task = Task.objects.get()
    assert task.status == Status.CANCELLED
    assert task.events.filter(verb="cancelled", data__reason="wrong video").exists()

    again = api.post(
        "/updatePublishTaskStatus", {"id": record_id, "status": "待发布"}, format="json"
    )
    assert again.status_code == 200
    assert again.json()["data"]["status"] == "待发布"
    assert Task.objects.get().status == Status.QUEUED

    # A record stopped through the task API (still 待发布 in social-auto-upload's words) is
    # started again.
    assert api.post(f"/api/v1/tasks/{task.pk}/stop").status_code == 200
    restarted = api.post(
        "/updatePublishTaskStatus", {"id": record_id, "status": "待发布"}, format="json"
    )
    assert restarted.status_code == 200
    verbs = list(task.events.order_by("id").values_list("verb", flat=True))
    assert verbs[-2:] == ["stopped", "queued"]


def test_accounts_hide_credentials_and_refuse_duplicates(api, other_api, media_root):
    account = add_account(api, PlatformType.BILIBILI, "bili")
    assert "credentials" not in account
    assert account["has_credentials"] is True

    bad_credentials = api.post(
        "/updateUserinfo", {"id": account["id"], "credentials": ["a"]}, format="json"
    )
    assert bad_credentials.status_code == 400
    assert bad_credentials.json()["data"] == {"field": "credentials"}
    duplicate = api.post("/addAccount", {"type": 6, "userName": "bili"}, format="json")
    assert duplicate.status_code == 409
    assert api.post("/addAccount", {"type": 5, "userName": "x"}, format="json").status_code == 400
    assert other_api.post("/deleteAccount", {"id": account["id"]}, format="json").status_code == 404
    assert PlatformAccount.objects.count() == 1
    assert api.post("/deleteAccount", {"id": account["id"]}, format="json").status_code == 200
    assert PlatformAccount.objects.count() == 0


def test_publishing_endpoints_need_authentication(client, db):
    response = client.get("/getPublishTaskRecords")

    assert response.status_code == 401
    assert response.json()["code"] == 401


@pytest.mark.parametrize(
    "path",
    [
        "/postVideo",
        "/postVideosToMultiplePlatforms",
        "/updatePublishTaskStatus",
        "/retryPublishTask",
        "/cancelPublishTask",
        "/addAccount",
        "/updateUserinfo",
        "/deleteAccount",
        "/deleteFile",
    ],
)
def test_malformed_bodies_are_4xx_in_the_envelope_never_500(api, media_root, path):
    clip = upload(api, "ok.mp4")
    account = add_account(api, PlatformType.DOUYIN, "acc")
    bodies = [
        [],
        "text",
        {"id": []},
        {"id": -1, "task_id": "x"},
        {"fileList": [{}], "accountList": [account["id"]], "title": "t"},
        {"fileList": ["a\x00b"], "accountList": [account["id"]], "title": "t"},
        {"fileList": [clip["id"]], "accountList": [account["id"]], "title": "t", "tags": ["\x00"]},
        {
            "fileList": [clip["id"]],
            "accountList": [account["id"]],
            "title": "t",
            "scheduleTime": "soon",
        },
        {"type": 3, "userName": "x", "credentials": {"c": "\x00"}},
        {"id": 0, "credentials": ["not", "an", "object"]},
        {"id": "1x", "status": None},
    ]
    for body in bodies:
        response = api.post(path, body, format="json")
        assert 400 <= response.status_code < 500, (body, response.content)
        assert response.json()["code"] == response.status_code
    garbage = api.generic("POST", path, b"{not json", content_type="application/json")
    assert garbage.status_code == 400
    assert Task.objects.count() == 0
    assert PlatformAccount.objects.count() == 1
