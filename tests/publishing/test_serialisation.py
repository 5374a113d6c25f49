"""One account publishes one video at a time, with a cooldown, even under two worker processes."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

import pytest

from publishing.platforms import PlatformType
from taskcenter.models import EventVerb, ExecutionStatus, Status, Task, TaskEvent, TaskExecution
from tests.support.processes import wait_for
from tests.support.publishing import add_account, upload, worker_env

pytestmark = pytest.mark.slow

COOLDOWN = 0.6
# The sandbox and the workers share this machine's clock; allow for float rounding only.
CLOCK_SLACK = 0.02


def test_two_workers_never_overlap_one_accounts_publishes_and_keep_its_cooldown(
    api, media_root, platform, area, start_worker
):
    area.apply({"upload_ms": 150})
    # Both workers poll before anything is queued: the batch is about three seconds of work,
    # and a worker still booting on a loaded machine would leave all of it to the other one.
    env = worker_env(platform, media_root, PUBLISHING_ACCOUNT_COOLDOWN_SECONDS=COOLDOWN)
    workers = [
        start_worker("--concurrency", "3", "--worker-id", name, env=env) for name in ("w1", "w2")
    ]
    for worker in workers:
        worker.wait_until_polling()
    files = [upload(api, f"clip-{n}.mp4") for n in range(3)]
    accounts = [
        add_account(api, PlatformType.DOUYIN, "busy-one"),
        add_account(api, PlatformType.KUAISHOU, "busy-two"),
    ]
    response = api.post(
        "/postVideosToMultiplePlatforms",
        {
            "fileList": [f["id"] for f in files],
            "accountList": [a["id"] for a in accounts],
            "title": "Six at once",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    batch_id = response.json()["data"]["task_id"]

    wait_for(
        lambda: Task.objects.filter(batch_id=batch_id, status=Status.COMPLETED).count() == 6,
        timeout=60,
        every=0.2,
    )

    with area.lock:
        log = list(area.log)
    uploads = {e["video_id"]: e for e in log if e["event"] == "upload" and e["status"] == 201}
    publishes = {e["video_id"]: e for e in log if e["event"] == "publish"}
    assert len(uploads) == 6
    assert set(publishes) == set(uploads)

    spans = defaultdict(list)  # account -> [(upload started, published at)]
    for video_id, sent in uploads.items():
        spans[sent["account_id"]].append((sent["started"], publishes[video_id]["at"]))
    assert len(spans) == 2
    for account, videos in spans.items():
        videos.sort()
        for (_, previous_end), (next_start, _) in pairwise(videos):
            assert next_start > previous_end, f"account {account}: two publishes overlap"
            gap = next_start - previous_end
            assert gap >= COOLDOWN - CLOCK_SLACK, f"account {account}: rested only {gap:.3f}s"

    # Both workers took part: the serialisation held across processes, not just threads. Every
    # claim and every resume after a busy account counts, not only who finished each task.
    runners = set(
        TaskEvent.objects.filter(
            task__batch_id=batch_id, verb__in=[EventVerb.STARTED, EventVerb.RESUMED]
        ).values_list("actor", flat=True)
    )
    assert {"worker:w1", "worker:w2"} <= runners
    assert set(
        TaskExecution.objects.filter(task__batch_id=batch_id).values_list("status", flat=True)
    ) == {ExecutionStatus.COMPLETED}
