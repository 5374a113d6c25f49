"""social-auto-upload's publish center (PublishCenter.vue), unchanged, against Task Center: files
uploaded by ``el-upload`` or picked from the material library, published with ``/postVideo`` at
once or on its timer, and what the platform then receives; ``/postVideoBatch`` as the original
backend takes it. Publishing runs in-process against the sandbox platform.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from publishing.models import PublishTaskRecord
from publishing.platforms import PlatformType
from publishing.task_kinds import KIND
from taskcenter.execution.runner import run_attempt
from taskcenter.models import FINISHED_STATUSES, Status, Task
from tests.support.publishing import add_account, upload, video
from tests.support.sau_frontend import SauFrontend

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def frontend(user) -> SauFrontend:
    return SauFrontend(user)


@pytest.fixture
def on_platform(media_root, platform, settings):
    settings.PUBLISHING = {**settings.PUBLISHING, "BASE_URL": platform.url}
    return platform


def _ok(response) -> dict:
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert body["code"] == 200, body
    return body


def _publish_data(files: list[dict], accounts: list[dict], **tab) -> dict:
    """confirmPublish's body from a tab: fileList from each file's ``path`` (what /upload
    answered, or the material's file_path), accountList from each account's ``filePath``."""
    timer = tab.get("scheduleEnabled", False)
    return {
        "type": tab.get("selectedPlatform", 3),
        "title": tab.get("title", "My video"),
        "tags": tab.get("selectedTopics", ["游戏", "旅行"]),
        "fileList": [f["path"] for f in files],
        "accountList": [a["filePath"] for a in accounts],
        "enableTimer": 1 if timer else 0,
        "videosPerDay": tab.get("videosPerDay", 1) if timer else 1,
        "dailyTimes": tab.get("dailyTimes", ["10:00"]) if timer else ["10:00"],
        "startDays": tab.get("startDays", 0) if timer else 0,
        "category": 1 if tab.get("isOriginal") else 0,
        "productLink": tab.get("productLink", ""),
        "productTitle": tab.get("productTitle", ""),
        "isDraft": tab.get("isDraft", False),
    }


def _el_upload(frontend: SauFrontend, name: str) -> dict:
    """handleUploadSuccess: ``filePath = response.data.path || response.data``, the preview URL
    from ``filePath.split('/').pop()``."""
    body = _ok(frontend.el_upload("/upload", video(name)))
    file_path = body["data"]
    assert isinstance(file_path, str)
    return {"name": name, "path": file_path, "url": f"/getFile?filename={file_path.split('/')[-1]}"}


def _account_rows(frontend: SauFrontend) -> list[dict]:
    """The account store as setAccounts builds it from /getAccounts."""
    labels = {1: "小红书", 2: "视频号", 3: "抖音", 4: "快手"}
    rows = _ok(frontend.get("/getAccounts"))["data"]
    return [
        {"id": r[0], "type": r[1], "filePath": r[2], "name": r[3], "platform": labels.get(r[1])}
        for r in rows
    ]


def _publish_everything(timeout: float = 20.0) -> list[Task]:
    """Run the publish tasks' attempts in this process until all have finished."""
    deadline = time.monotonic() + timeout
    while True:
        waiting = Task.objects.filter(task_type=KIND).exclude(status__in=FINISHED_STATUSES)
        ids = list(waiting.values_list("pk", flat=True))
        if not ids:
            return list(Task.objects.filter(task_type=KIND).order_by("pk"))
        assert time.monotonic() < deadline, f"tasks {ids} still running"
        for task_id in ids:
            run_attempt(task_id, worker_id="test")
        time.sleep(0.05)


def _published(area) -> dict[tuple[str, str], dict]:
    """What the platform published: (account id, file name) -> the publish it received."""
    with area.lock:
        return {
            (video.account_id, video.filename): dict(video.published)
            for video in area.videos.values()
            if video.published
        }


def test_publish_now_to_two_accounts_creates_a_record_per_file_and_account(
    frontend, api, on_platform, area
):
    first = add_account(api, PlatformType.DOUYIN, "dy-one")
    second = add_account(api, PlatformType.DOUYIN, "dy-two")
    add_account(api, PlatformType.KUAISHOU, "ks")
    library = upload(api, "from-library.mp4")
    uploaded = _el_upload(frontend, "new.mp4")
    picked = {"name": library["filename"], "path": library["file_path"]}  # confirmMaterialSelection
    douyin = [a for a in _account_rows(frontend) if a["platform"] == "抖音"]  # availableAccounts

    body = _ok(
        frontend.post(
            "/postVideo",
            _publish_data(
                [uploaded, picked],
                douyin,
                isOriginal=True,
                productLink="https://shop.example/p/1",
                productTitle="A product",
            ),
        )
    )

    assert body["msg"] == "发布任务已提交"
    assert body["data"]["count"] == 4
    records = PublishTaskRecord.objects.order_by("pk")
    assert [(r.filename, r.account_name) for r in records] == [
        ("new.mp4", "dy-one"),
        ("new.mp4", "dy-two"),
        ("from-library.mp4", "dy-one"),
        ("from-library.mp4", "dy-two"),
    ]
    assert {r.batch_id for r in records} == {body["data"]["task_id"]}
    listed = _ok(frontend.get("/getPublishTaskRecords"))["data"]
    assert listed["total"] == 4
    assert {r["status"] for r in listed["records"]} == {"待发布"}
    params = Task.objects.order_by("pk").first().parameters
    assert params["schedule_time"] is None
    assert params["tags"] == ["游戏", "旅行"]
    assert (params["category"], params["is_draft"]) == (1, False)
    assert params["product_link"] == "https://shop.example/p/1"

    tasks = _publish_everything()

    assert [t.status for t in tasks] == [Status.COMPLETED] * 4
    published = _published(area)
    assert set(published) == {
        (str(account["id"]), name)
        for account in (first, second)
        for name in ("new.mp4", "from-library.mp4")
    }
    for received in published.values():
        assert received["title"] == "My video"
        assert received["tags"] == ["游戏", "旅行"]
        assert received["schedule_time"] is None
        assert received["category"] == 1
        assert received["product_title"] == "A product"
    done = _ok(
        frontend.get(
            "/getPublishTaskRecords",
        )
    )["data"]["records"]
    assert {r["status"] for r in done} == {"发布成功"}


def test_timer_gives_each_file_its_day_and_time_and_the_platform_receives_it(
    frontend, api, on_platform, area, settings
):
    settings.TIME_ZONE = "Asia/Shanghai"
    account = add_account(api, PlatformType.TENCENT, "channels")
    files = [_el_upload(frontend, f"part{n}.mp4") for n in range(3)]
    today = timezone.localtime().date()

    _ok(
        frontend.post(
            "/postVideo",
            _publish_data(
                files,
                [{"filePath": account["filePath"]}],
                selectedPlatform=2,
                scheduleEnabled=True,
                videosPerDay=2,
                dailyTimes=["10:00", "16:30"],
                startDays=1,
                isDraft=True,
            ),
        )
    )

    # Two a day from the day after tomorrow (startDays 1): 10:00 and 16:30, then 10:00.
    day = today + timedelta(days=2)
    expected = {
        "part0.mp4": datetime(day.year, day.month, day.day, 10, 0, tzinfo=SHANGHAI),
        "part1.mp4": datetime(day.year, day.month, day.day, 16, 30, tzinfo=SHANGHAI),
        "part2.mp4": datetime(day.year, day.month, day.day, 10, 0, tzinfo=SHANGHAI)
        + timedelta(days=1),
    }
    stored = {
        record.filename: datetime.fromisoformat(record.task.parameters["schedule_time"])
        for record in PublishTaskRecord.objects.select_related("task")
    }
    assert stored == expected
    assert all(t.parameters["is_draft"] is True for t in Task.objects.all())

    _publish_everything()

    received = {name: p["schedule_time"] for (_, name), p in _published(area).items()}
    assert {name: datetime.fromisoformat(at) for name, at in received.items()} == expected
    assert all(p["is_draft"] is True for p in _published(area).values())
    with area.lock:
        logged = sorted(e["schedule_time"] for e in area.log if e["event"] == "publish")
    assert logged == sorted(received.values())


def test_timer_without_times_uses_the_originals_daily_hours(frontend, api, media_root, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    account = add_account(api, PlatformType.DOUYIN, "dy")
    files = [_el_upload(frontend, f"v{n}.mp4") for n in range(2)]
    body = _publish_data(files, [account])
    body.update(enableTimer=1, videosPerDay=2)
    del body["dailyTimes"]
    tomorrow = timezone.localtime().date() + timedelta(days=1)

    _ok(frontend.post("/postVideo", body))

    hours = [
        datetime.fromisoformat(t.parameters["schedule_time"]) for t in Task.objects.order_by("pk")
    ]
    assert [(at.date(), at.hour, at.minute) for at in hours] == [
        (tomorrow, 6, 0),
        (tomorrow, 11, 0),
    ]


def test_timer_fields_are_ignored_when_the_timer_is_off(frontend, api, media_root):
    account = add_account(api, PlatformType.DOUYIN, "dy")
    file = _el_upload(frontend, "now.mp4")

    # The page always sends videosPerDay, dailyTimes and startDays; enableTimer 0 means now.
    _ok(frontend.post("/postVideo", _publish_data([file], [account])))

    assert Task.objects.get().parameters["schedule_time"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"enableTimer": 1, "videosPerDay": 2, "dailyTimes": ["10:00"]}, "videosPerDay"),
        ({"enableTimer": 1, "videosPerDay": 0}, "videosPerDay"),
        ({"enableTimer": 1, "dailyTimes": ["25:00"]}, "dailyTimes.0"),
        ({"enableTimer": 1, "dailyTimes": []}, "dailyTimes"),
        ({"enableTimer": 1, "dailyTimes": "10:00"}, "dailyTimes"),
        ({"enableTimer": 1, "startDays": -1}, "startDays"),
        ({"enableTimer": "soon"}, "enableTimer"),
        ({"thumbnail": "/videoFile/cover.png"}, "thumbnail"),
        ({"category": "original"}, "category"),
        ({"isDraft": "maybe"}, "isDraft"),
        ({"productLink": 5}, "productLink"),
        ({"type": 5}, "type"),
        ({"type": 4}, "accountList.0"),
        ({"title": ""}, "title"),
        ({"fileList": []}, "fileList"),
        ({"fileList": ["nope_clip.mp4"]}, "fileList.0"),
        ({"accountList": ["nope.json"]}, "accountList.0"),
    ],
)
def test_bad_publish_body_names_the_field_and_creates_nothing(
    frontend, api, media_root, change, field
):
    account = add_account(api, PlatformType.DOUYIN, "dy")
    file = _el_upload(frontend, "v.mp4")
    body = {**_publish_data([file], [account]), **change}

    response = frontend.post("/postVideo", body)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == 400
    assert response.json()["data"]["field"] == field
    assert not Task.objects.exists()
    assert not PublishTaskRecord.objects.exists()


def test_another_users_file_and_account_paths_are_not_found(frontend, api, other_api, media_root):
    mine = add_account(api, PlatformType.DOUYIN, "mine")
    my_file = _el_upload(frontend, "mine.mp4")
    theirs = add_account(other_api, PlatformType.DOUYIN, "theirs")
    their_file = upload(other_api, "theirs.mp4")

    stolen_file = frontend.post(
        "/postVideo", _publish_data([{"path": their_file["file_path"]}], [mine])
    )
    stolen_account = frontend.post("/postVideo", _publish_data([my_file], [theirs]))

    assert stolen_file.json()["data"]["field"] == "fileList.0"
    assert stolen_account.json()["data"]["field"] == "accountList.0"
    assert not Task.objects.exists()


def test_post_video_batch_queues_every_body_or_none(frontend, api, media_root):
    douyin = add_account(api, PlatformType.DOUYIN, "dy")
    kuaishou = add_account(api, PlatformType.KUAISHOU, "ks")
    files = [_el_upload(frontend, f"b{n}.mp4") for n in range(2)]
    bodies = [
        _publish_data(files, [douyin]),
        _publish_data(files[:1], [kuaishou], selectedPlatform=4, title="Second"),
    ]

    refused = frontend.post("/postVideoBatch", [bodies[0], {**bodies[1], "type": 3}])
    not_a_list = frontend.post("/postVideoBatch", bodies[0])
    assert refused.status_code == 400
    assert refused.json()["data"]["field"] == "1.accountList.0"
    assert not_a_list.json()["data"]["field"] == "body"
    assert not Task.objects.exists()

    body = _ok(frontend.post("/postVideoBatch", bodies))

    assert [batch["count"] for batch in body["data"]] == [2, 1]
    records = PublishTaskRecord.objects.order_by("pk")
    assert [(r.filename, r.account_name) for r in records] == [
        ("b0.mp4", "dy"),
        ("b1.mp4", "dy"),
        ("b0.mp4", "ks"),
    ]
    assert records[0].batch_id != records[2].batch_id
    assert _ok(frontend.get("/getPublishTaskRecords"))["data"]["total"] == 3
    assert _ok(frontend.post("/postVideoBatch", []))["data"] == []
