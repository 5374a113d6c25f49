"""The canonical /api/v1/publish-records, the admin pages for publishing, and the schema."""

from __future__ import annotations

import pytest
from django.urls import reverse

from publishing.models import PublishTaskRecord, VideoFile
from publishing.platforms import PlatformType
from taskcenter import lifecycle
from taskcenter.models import Status, Task
from tests.support.publishing import MAX_UPLOAD, add_account, upload, video


@pytest.fixture
def batch(api, media_root) -> dict:
    files = [upload(api, f"f{n}.mp4")["id"] for n in range(2)]
    accounts = [
        add_account(api, PlatformType.DOUYIN, "dy")["id"],
        add_account(api, PlatformType.TENCENT, "wx")["id"],
    ]
    response = api.post(
        "/postVideosToMultiplePlatforms",
        {"fileList": files, "accountList": accounts, "title": "t"},
        format="json",
    )
    return response.json()["data"]


def _fail(record_id: int) -> None:
    """Have a worker's attempt fail for good, as the lifecycle records it."""
    record = PublishTaskRecord.objects.get(pk=record_id)
    _, execution = lifecycle.claim_attempt(record.task_id, worker_id="test")
    lifecycle.fail_attempt(execution, error="Login expired (HTTP 401)", permanent=True)


def test_publish_records_time_filters_take_any_iso_offset_or_epoch_and_refuse_junk(api, batch):
    # PostgreSQL refuses offsets past +-15:59 that Python parses; the filter converts to UTC.
    odd = api.get("/api/v1/publish-records", {"created_after": "1045-01-29T23:10:50.23-20:33"})
    assert odd.status_code == 200
    assert odd.json()["total"] == 4
    future = api.get("/api/v1/publish-records", {"created_after": "4102444800"})
    assert future.json()["total"] == 0
    junk = api.get("/api/v1/publish-records", {"created_before": "yesterday"})
    assert junk.status_code == 400
    assert junk.json()["detail"][0]["loc"] == ["created_before"]


def test_publish_records_list_filters_and_pages_with_canonical_statuses(api, batch):
    first = batch["records"][0]["id"]
    _fail(first)

    page = api.get("/api/v1/publish-records", {"size": 3}).json()
    assert page["total"] == 4
    assert page["pages"] == 2
    assert len(page["items"]) == 3
    failed = api.get("/api/v1/publish-records", {"status": "FAILED"}).json()
    assert [r["id"] for r in failed["items"]] == [first]
    assert failed["items"][0]["error_message"] == "Login expired (HTTP 401)"
    douyin = api.get("/api/v1/publish-records", {"platform_name": "douyin"}).json()
    assert douyin["total"] == 2
    assert api.get("/api/v1/publish-records", {"batch_id": batch["task_id"]}).json()["total"] == 4
    assert api.get("/api/v1/publish-records", {"status": "NOPE"}).status_code == 400
    assert api.get("/api/v1/publish-records", {"size": 101}).status_code == 400

    retried = api.post(f"/api/v1/publish-records/{first}/retry")
    assert retried.status_code == 200
    assert retried.json()["status"] == Status.QUEUED
    refused = api.post(f"/api/v1/publish-records/{first}/retry")
    assert refused.status_code == 409
    assert refused.json()["status"] == Status.QUEUED
    cancelled = api.post(f"/api/v1/publish-records/{first}/cancel")
    assert cancelled.json()["status"] == Status.CANCELLED
    # The social-auto-upload dialect shows the same record through the same task.
    dialect = api.get("/getPublishTaskRecords", {"status": "已取消"}).json()["data"]["records"]
    assert [r["id"] for r in dialect] == [first]


def test_another_users_publish_record_is_not_found_and_staff_see_all(
    api, other_api, staff_api, batch
):
    record_id = batch["records"][0]["id"]

    assert other_api.get(f"/api/v1/publish-records/{record_id}").status_code == 404
    assert other_api.post(f"/api/v1/publish-records/{record_id}/cancel").status_code == 404
    assert other_api.get("/api/v1/publish-records").json()["total"] == 0
    assert staff_api.get("/api/v1/publish-records").json()["total"] == 4
    assert Task.objects.filter(status=Status.CANCELLED).count() == 0


def test_upload_far_over_the_limit_is_refused_before_it_is_read(api, media_root):
    response = api.post(
        "/upload", {"file": video("big.mp4", size=MAX_UPLOAD * 2)}, format="multipart"
    )

    assert response.status_code == 413
    assert response.json()["code"] == 413
    assert VideoFile.objects.count() == 0


def test_schema_documents_publish_records_and_social_auto_upload_paths(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    paths = response.json()["paths"]
    assert "/api/v1/publish-records/{id}/retry" in paths
    assert "/api/v1/publish-records/{id}/cancel" in paths
    for path in (
        "/getPublishTaskRecords",
        "/postVideo",
        "/postVideosToMultiplePlatforms",
        "/updatePublishTaskStatus",
        "/retryPublishTask",
        "/cancelPublishTask",
    ):
        assert path in paths


def test_admin_batch_view_shows_progress_per_platform(admin_client, batch):
    _fail(batch["records"][0]["id"])

    response = admin_client.get(
        reverse("admin:publishing_publishtaskrecord_batch", args=[batch["task_id"]])
    )

    assert response.status_code == 200
    rows = {row["platform"]: row for row in response.context["rows"]}
    columns = response.context["columns"]
    assert set(rows) == {"douyin", "tencent"}
    failed = sum(row["cells"][columns.index("发布失败")] for row in rows.values())
    waiting = sum(row["cells"][columns.index("待发布")] for row in rows.values())
    assert (failed, waiting) == (1, 3)
    assert (
        admin_client.get(
            reverse("admin:publishing_publishtaskrecord_batch", args=["no-such-batch"])
        ).status_code
        == 404
    )


def test_admin_bulk_cancel_and_retry_report_changed_and_refused(admin_client, batch):
    ids = [r["id"] for r in batch["records"]]
    _fail(ids[0])
    url = reverse("admin:publishing_publishtaskrecord_changelist")

    response = admin_client.post(
        url, {"action": "retried_selected", "_selected_action": ids}, follow=True
    )
    text = [str(m) for m in response.context["messages"]]
    assert "Retried: 1 record(s)." in text
    assert any("Refused for 3 record(s)" in m and "3 待发布" in m for m in text)

    response = admin_client.post(
        url, {"action": "cancelled_selected", "_selected_action": ids}, follow=True
    )
    assert "Cancelled: 4 record(s)." in [str(m) for m in response.context["messages"]]
    assert set(Task.objects.values_list("status", flat=True)) == {Status.CANCELLED}

    listed = admin_client.get(url, {"status_word": "已取消", "platform_name": "douyin"})
    assert len(listed.context["cl"].result_list) == 2
    in_batch = admin_client.get(url, {"batch": batch["task_id"]})
    assert len(in_batch.context["cl"].result_list) == 4
    assert admin_client.get(url, {"batch": "other"}).context["cl"].result_list.count() == 0


def test_admin_account_page_never_shows_credentials(admin_client, api, media_root):
    account = add_account(api, PlatformType.DOUYIN, "secretive")

    page = admin_client.get(
        reverse("admin:publishing_platformaccount_change", args=[account["id"]])
    )

    assert page.status_code == 200
    assert b"secret" not in page.content.replace(b"secretive", b"")
