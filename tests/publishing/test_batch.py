"""A publish batch end to end: the social-auto-upload publishing API, real worker processes and
the sandbox platform."""

from __future__ import annotations

from collections import defaultdict

import pytest

from publishing.models import PublishTaskRecord
from publishing.platforms import PlatformType
from taskcenter.models import Status, Task
from tests.support.processes import wait_for
from tests.support.publishing import add_account, records, upload, worker_env

pytestmark = pytest.mark.slow


def _all_published(batch_id: str) -> bool:
    tasks = Task.objects.filter(batch_id=batch_id)
    return tasks.exists() and not tasks.exclude(status=Status.COMPLETED).exists()


def test_batch_of_three_files_to_four_accounts_on_three_platforms_is_published(
    api, media_root, platform, area, start_worker
):
    files = [upload(api, f"video-{n}.mp4", size=20_000 + n) for n in range(3)]
    accounts = [
        add_account(api, PlatformType.DOUYIN, "dy-main"),
        add_account(api, PlatformType.DOUYIN, "dy-second"),
        add_account(api, PlatformType.TENCENT, "channels"),
        add_account(api, PlatformType.BILIBILI, "bili"),
    ]

    response = api.post(
        "/postVideosToMultiplePlatforms",
        {
            "fileList": [f["id"] for f in files[:2]] + [files[2]["file_path"]],
            "accountList": [a["id"] for a in accounts],
            "title": "Launch day",
            "tags": ["launch", "demo"],
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["code"] == 200
    batch_id = body["data"]["task_id"]
    assert body["data"]["count"] == 12
    assert {r["status"] for r in body["data"]["records"]} == {"待发布"}
    assert PublishTaskRecord.objects.filter(batch_id=batch_id).count() == 12
    assert not area.uploads(), "the request must not upload anything itself"

    start_worker("--concurrency", "4", env=worker_env(platform, media_root))
    wait_for(lambda: _all_published(batch_id), timeout=60, every=0.2)

    listed = records(api, task_id=batch_id)
    assert listed["total"] == 12
    assert {r["status"] for r in listed["records"]} == {"发布成功"}
    assert records(api, status="发布成功", platform_name="douyin")["total"] == 6
    assert records(api, status="发布成功", platform_name="视频号")["total"] == 3

    uploads = [u for u in area.uploads() if u["status"] == 201]
    assert len(uploads) == 12
    by_remote = {u["video_id"]: u for u in uploads}
    sizes = {f["id"]: f["size"] for f in files}
    for record in PublishTaskRecord.objects.select_related("task", "account"):
        sent = by_remote[record.remote_id]  # each record kept the id the platform gave it
        assert sent["account_id"] == str(record.account_id)
        assert sent["platform"] == record.platform_name
        assert sent["size"] == sizes[record.file_id]
        assert record.task.result["url"].endswith(record.remote_id)
    published = [e for e in platform_log(area) if e["event"] == "publish"]
    assert len(published) == 12

    # One account publishes one video at a time: its uploads never overlap.
    per_account = defaultdict(list)
    for u in uploads:
        per_account[u["account_id"]].append(u)
    assert sorted(len(v) for v in per_account.values()) == [3, 3, 3, 3]


def platform_log(area) -> list[dict]:
    with area.lock:
        return list(area.log)
