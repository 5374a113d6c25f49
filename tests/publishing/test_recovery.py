"""Failures on the platform, retries and cancels, with a real worker and the sandbox."""

from __future__ import annotations

import time

import pytest

from publishing.models import LoginStatus, PlatformAccount, PublishTaskRecord
from publishing.platforms import PlatformType
from taskcenter.models import ExecutionStatus, Status, Task, TaskExecution
from tests.support.processes import wait_for
from tests.support.publishing import add_account, statuses, upload, worker_env

pytestmark = pytest.mark.slow


def _post(api, files, accounts, title="A title") -> dict:
    response = api.post(
        "/postVideosToMultiplePlatforms",
        {"fileList": files, "accountList": accounts, "title": title},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["data"]


def _status_of(record_id: int) -> str:
    return PublishTaskRecord.objects.select_related("task").get(pk=record_id).task.status


def test_failed_record_retried_publishes_without_uploading_again(
    api, media_root, platform, area, start_worker
):
    clip = upload(api, "retry-me.mp4")
    account = add_account(api, PlatformType.XIAOHONGSHU, "red-note")
    # The login expires right after the upload: the upload worked, the status check is a 401.
    area.apply({"expire_after_upload": str(account["id"])})
    batch = _post(api, [clip["id"]], [account["id"]])
    record_id = batch["records"][0]["id"]
    start_worker("--concurrency", "2", env=worker_env(platform, media_root))

    wait_for(lambda: _status_of(record_id) == Status.FAILED, timeout=30)
    failed = api.get("/getPublishTaskRecords", {"status": "发布失败"}).json()["data"]["records"]
    assert [r["id"] for r in failed] == [record_id]
    assert "Login expired" in failed[0]["error_msg"]
    remote_id = failed[0]["remote_id"]
    assert remote_id
    assert PlatformAccount.objects.get(pk=account["id"]).login_status == LoginStatus.EXPIRED
    # social-auto-upload's row: [id, type, filePath, userName, status], no credentials.
    listed = api.get("/getAccounts").json()["data"]
    assert listed == [[account["id"], 1, account["filePath"], "red-note", 0]]

    # The owner logs in again (new credentials), then retries the record.
    area.apply({"restore_login": str(account["id"])})
    relogin = api.post(
        "/updateUserinfo", {"id": account["id"], "credentials": {"cookie": "new"}}, format="json"
    )
    assert relogin.json()["data"]["status"] == 1
    retried = api.post("/retryPublishTask", {"id": record_id}, format="json")
    assert retried.status_code == 200, retried.content
    assert retried.json()["data"]["status"] == "待发布"

    wait_for(lambda: _status_of(record_id) == Status.COMPLETED, timeout=30)
    uploads = [u for u in area.uploads() if u["account_id"] == str(account["id"])]
    assert len(uploads) == 1, "the retry must publish the uploaded video, not upload it again"
    record = PublishTaskRecord.objects.select_related("task").get(pk=record_id)
    assert record.remote_id == remote_id == uploads[0]["video_id"]
    assert record.task.error_message == ""
    with area.lock:
        assert [e["video_id"] for e in area.log if e["event"] == "publish"] == [remote_id]


def test_upload_error_is_retried_by_itself_and_then_succeeds(
    api, media_root, platform, area, start_worker
):
    clip = upload(api, "flaky-storage.mp4")
    account = add_account(api, PlatformType.KUAISHOU, "ks")
    area.apply({"upload_fail_next": 1})
    record_id = _post(api, [clip["id"]], [account["id"]])["records"][0]["id"]
    start_worker(env=worker_env(platform, media_root))

    wait_for(lambda: _status_of(record_id) == Status.COMPLETED, timeout=30)

    assert [u["status"] for u in area.uploads()] == [500, 201]
    executions = TaskExecution.objects.filter(task__publish_record=record_id).order_by("attempt")
    assert [e.status for e in executions] == [ExecutionStatus.FAILED, ExecutionStatus.COMPLETED]
    assert "storage unavailable" in executions[0].error_message


def test_cancelled_queued_record_is_never_uploaded(api, media_root, platform, area, start_worker):
    clip = upload(api, "half.mp4")
    first = add_account(api, PlatformType.DOUYIN, "keep")
    second = add_account(api, PlatformType.DOUYIN, "drop")
    batch = _post(api, [clip["id"]], [first["id"], second["id"]])
    keep, drop = (r["id"] for r in batch["records"])

    cancelled = api.post("/cancelPublishTask", {"id": drop}, format="json")
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["data"]["status"] == "已取消"
    start_worker(env=worker_env(platform, media_root))

    wait_for(lambda: _status_of(keep) == Status.COMPLETED, timeout=30)
    time.sleep(0.3)  # a stray attempt for the cancelled record would have run by now
    assert statuses(api) == {keep: "发布成功", drop: "已取消"}
    assert {u["account_id"] for u in area.uploads()} == {str(first["id"])}
    again = api.post("/cancelPublishTask", {"id": keep}, format="json")
    assert again.status_code == 409
    assert again.json() == {
        "code": 409,
        "msg": f"Cannot cancel publish record {keep}: it is 发布成功",
        "data": {"id": keep, "status": "发布成功", "field": "status"},
    }


def test_cancelled_running_record_stops_polling_and_frees_the_account(
    api, media_root, platform, area, start_worker
):
    area.apply({"processing_polls": 10_000})  # the platform never finishes processing it
    first_clip, second_clip = upload(api, "stuck.mp4"), upload(api, "next.mp4")
    account = add_account(api, PlatformType.YOUTUBE, "yt")
    batch = _post(api, [first_clip["id"], second_clip["id"]], [account["id"]])
    stuck, following = (r["id"] for r in batch["records"])
    start_worker(env=worker_env(platform, media_root))

    # The first record holds the account while the platform processes its upload.
    wait_for(lambda: len(area.uploads()) == 1, timeout=30)
    uploaded = area.uploads()[0]
    holder = wait_for(
        lambda: PublishTaskRecord.objects.filter(task__external_id=uploaded["video_id"]).first()
    )
    assert _status_of(holder.pk) == Status.RUNNING
    assert statuses(api)[holder.pk] == "发布中"

    response = api.post("/cancelPublishTask", {"id": holder.pk}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["data"]["status"] == "已取消"

    # The hold ended with the cancelled attempt: the other record gets the account.
    other = following if holder.pk == stuck else stuck
    wait_for(lambda: len(area.uploads()) == 2, timeout=30)
    area.apply({"processing_polls": 0})
    wait_for(lambda: _status_of(other) == Status.COMPLETED, timeout=30)
    assert _status_of(holder.pk) == Status.CANCELLED
    with area.lock:
        published = [e["video_id"] for e in area.log if e["event"] == "publish"]
    assert uploaded["video_id"] not in published
    execution = TaskExecution.objects.filter(task__publish_record=holder.pk).get()
    assert execution.status == ExecutionStatus.CANCELLED


def test_cancel_a_whole_batch_by_its_task_id(api, media_root):
    clip = upload(api, "batch.mp4")
    accounts = [add_account(api, PlatformType.TIKTOK, f"tt-{n}")["id"] for n in range(3)]
    batch = _post(api, [clip["id"]], accounts)

    response = api.post("/cancelPublishTask", {"task_id": batch["task_id"]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["data"]["changed"] == 3
    assert set(Task.objects.filter(batch_id=batch["task_id"]).values_list("status", flat=True)) == {
        Status.CANCELLED
    }
    retried = api.post("/retryPublishTask", {"task_id": batch["task_id"]}, format="json")
    assert retried.json()["data"] == {
        "task_id": batch["task_id"],
        "changed": 3,
        "skipped": 0,
        "ids": [r["id"] for r in batch["records"]],
    }
    assert set(statuses(api).values()) == {"待发布"}


def test_worker_killed_before_it_saw_the_video_id_gets_the_same_video_back_on_retry(
    api, media_root, platform, area, start_worker
):
    """The platform stored the upload; the worker died before saving its id (SIGKILL)."""
    clip = upload(api, "lost-answer.mp4")
    account = add_account(api, PlatformType.BILIBILI, "bili")
    area.apply({"upload_answer_ms": 60_000})
    record_id = _post(api, [clip["id"]], [account["id"]])["records"][0]["id"]
    env = worker_env(platform, media_root, TASKCENTER_LEASE_SECONDS=2)
    doomed = start_worker("--worker-id", "doomed", env=env)

    stored = wait_for(lambda: [u for u in area.uploads() if u["status"] == 201], timeout=30)
    doomed.process.kill()  # SIGKILL while the platform has not answered yet
    assert Task.objects.get(publish_record=record_id).external_id == ""
    area.apply({"upload_answer_ms": 0})
    start_worker("--worker-id", "rescuer", "--reap-interval", "0.5", env=env)

    wait_for(lambda: _status_of(record_id) == Status.COMPLETED, timeout=30)
    video_id = stored[0]["video_id"]
    assert [u["video_id"] for u in area.uploads()] == [video_id]
    with area.lock:
        replays = [e for e in area.log if e["event"] == "upload_replayed"]
        published = [e["video_id"] for e in area.log if e["event"] == "publish"]
    assert [r["key"] for r in replays] == [f"taskcenter-publish-record-{record_id}"]
    assert published == [video_id]
    assert PublishTaskRecord.objects.get(pk=record_id).remote_id == video_id
    attempts = TaskExecution.objects.filter(task__publish_record=record_id).order_by("attempt")
    assert [e.worker_id for e in attempts] == ["doomed", "rescuer"]
