"""social-auto-upload's front end, unchanged, against Task Center: the dashboard, the account
page and the material page, each call replayed as the source sends it (``tests.support.
sau_frontend``), every field the page reads checked with its type, and the database after.

The publish center's calls are in ``test_frontend_publish``; the account login stream is tested
with the login flow.
"""

from __future__ import annotations

import json
import re
import string

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.utils.crypto import get_random_string

from publishing.models import LoginStatus, PlatformAccount, PublishTaskRecord, VideoFile
from publishing.platforms import PlatformType
from taskcenter import lifecycle
from taskcenter.models import Status
from tests.support.publishing import add_account, mp4_bytes, upload, video
from tests.support.sau_frontend import SauFrontend

UPLOAD_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
STORAGE_STATE = {
    "cookies": [{"name": "sessionid", "value": "s3cr3t-session", "domain": ".douyin.com"}],
    "origins": [{"origin": "https://creator.douyin.com", "localStorage": []}],
}


@pytest.fixture
def frontend(user) -> SauFrontend:
    return SauFrontend(user)


@pytest.fixture
def other_frontend(other_user) -> SauFrontend:
    return SauFrontend(other_user)


@pytest.fixture
def on_platform(media_root, platform, settings):
    """The publishing settings pointing at the sandbox platform."""
    settings.PUBLISHING = {**settings.PUBLISHING, "BASE_URL": platform.url}
    return platform


def _ok(response) -> dict:
    """The body of an answer the front end's interceptor takes as success."""
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert body["code"] == 200, body
    return body


def _refused(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert body["code"] == status, body
    assert isinstance(body["msg"], str), body
    assert body["msg"], body
    if field is not None:
        assert body["data"]["field"] == field, body
        assert body["msg"].startswith(f"{field}: "), body
    return body


def _cookie_file(content: object, name: str = "douyin_cookie.json") -> SimpleUploadedFile:
    raw = content if isinstance(content, bytes) else json.dumps(content).encode()
    return SimpleUploadedFile(name, raw, "application/json")


def _stored_credentials(account_id: int) -> str:
    """The credentials column as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials FROM publishing_platformaccount WHERE id = %s", [account_id]
        )
        return cursor.fetchone()[0]


# --- the dashboard (Dashboard.vue) ---------------------------------------------------------------


def test_dashboard_reads_accounts_as_rows_and_files_with_their_fields(frontend, api, media_root):
    clip = upload(api, "holiday.mp4", size=157_286)
    douyin = add_account(api, PlatformType.DOUYIN, "my-douyin")
    channels = add_account(api, PlatformType.TENCENT, "my-channels")

    accounts = _ok(frontend.get("/getAccounts"))
    files = _ok(frontend.get("/getFiles"))

    # stores/account.js setAccounts: id item[0], type item[1], filePath item[2], name item[3],
    # status item[4] (1 正常, 0 异常, -1 验证中); platform from the type 1-4.
    assert accounts["data"] == [
        [douyin["id"], 3, douyin["filePath"], "my-douyin", 1],
        [channels["id"], 2, channels["filePath"], "my-channels", 1],
    ]
    for row in accounts["data"]:
        assert [type(value) for value in row] == [int, int, str, str, int]
        assert row[2].endswith(".json")
    assert douyin["filePath"] != channels["filePath"]
    # The material table reads uuid, filename, filesize (MB), upload_time; previews file_path.
    [material] = files["data"]
    assert material["id"] == clip["id"]
    assert material["filename"] == "holiday.mp4"
    assert material["filesize"] == 0.15
    assert isinstance(material["filesize"], float)
    assert UPLOAD_TIME.fullmatch(material["upload_time"])
    assert material["file_path"] == VideoFile.objects.get().stored_name
    assert material["uuid"] == material["file_path"].split("_", 1)[0]


def test_lists_show_only_the_callers_own_accounts_and_files(
    frontend, other_frontend, api, other_api, media_root
):
    add_account(api, PlatformType.DOUYIN, "mine")
    upload(api, "mine.mp4")
    theirs = add_account(other_api, PlatformType.DOUYIN, "theirs")
    upload(other_api, "theirs.mp4")

    assert [row[3] for row in _ok(frontend.get("/getAccounts"))["data"]] == ["mine"]
    assert [f["filename"] for f in _ok(frontend.get("/getFiles"))["data"]] == ["mine.mp4"]
    assert [row[0] for row in _ok(other_frontend.get("/getAccounts"))["data"]] == [theirs["id"]]


# --- the account page (AccountManagement.vue) ----------------------------------------------------


def test_account_page_checks_every_login_with_the_platform(
    frontend, api, other_api, on_platform, area
):
    fine = add_account(api, PlatformType.DOUYIN, "fine")
    stale = add_account(api, PlatformType.KUAISHOU, "stale")
    never = api.post("/addAccount", {"type": 1, "userName": "never"}, format="json").json()["data"]
    theirs = add_account(other_api, PlatformType.DOUYIN, "theirs")
    area.apply({"expire_login": str(stale["id"])})

    # onMounted: the quick list first (shown as 验证中), then the checked one.
    quick = _ok(frontend.get("/getAccounts"))
    checked = _ok(frontend.get("/getValidAccounts"))

    assert [row[4] for row in quick["data"]] == [1, 1, 1]
    assert checked["data"] == [
        [fine["id"], 3, fine["filePath"], "fine", 1],
        [stale["id"], 4, stale["filePath"], "stale", 0],
        [never["id"], 1, never["filePath"], "never", 0],
    ]
    statuses = dict(PlatformAccount.objects.values_list("account_name", "login_status"))
    assert statuses == {"fine": 1, "stale": 0, "never": 0, "theirs": 1}
    mine = PlatformAccount.objects.exclude(pk=theirs["id"])
    assert all(account.login_checked_at for account in mine)
    assert PlatformAccount.objects.get(pk=theirs["id"]).login_checked_at is None
    with area.lock:
        asked = [
            (e["platform"], e["account_id"], e["logged_in"])
            for e in area.log
            if e["event"] == "login_check"
        ]
    assert asked == [
        ("douyin", str(fine["id"]), True),
        ("kuaishou", str(stale["id"]), False),
        ("xiaohongshu", str(never["id"]), False),
    ]

    # 异常 is clickable: the person logs in again (here: the platform takes the login back and
    # the page uploads a fresh cookie file), and the next check shows 正常.
    area.apply({"restore_login": str(stale["id"])})
    _ok(
        frontend.upload(
            "/uploadCookie",
            {"file": _cookie_file(STORAGE_STATE), "id": stale["id"], "platform": "快手"},
        )
    )
    again = _ok(frontend.get("/getValidAccounts"))
    assert [row[4] for row in again["data"]] == [1, 1, 0]


def test_unreachable_platform_keeps_the_statuses_and_says_so(frontend, api, media_root, settings):
    account = add_account(api, PlatformType.DOUYIN, "kept")
    PlatformAccount.objects.filter(pk=account["id"]).update(login_status=LoginStatus.EXPIRED)
    # Nothing listens on the discard port: the connection is refused at once.
    settings.PUBLISHING = {**settings.PUBLISHING, "BASE_URL": "http://127.0.0.1:9"}

    body = _ok(frontend.get("/getValidAccounts"))

    assert body["data"] == [[account["id"], 3, account["filePath"], "kept", 0]]
    assert body["msg"].startswith("1 account(s) could not be checked: Cannot reach the platform")
    assert PlatformAccount.objects.get().login_checked_at is None


def test_edit_dialog_renames_the_account(frontend, other_frontend, api, media_root):
    account = add_account(api, PlatformType.DOUYIN, "old-name")

    # submitAccountForm (edit): {id, type from the platform label, userName}.
    body = _ok(
        frontend.post("/updateUserinfo", {"id": account["id"], "type": 3, "userName": "new"})
    )
    foreign = other_frontend.post(
        "/updateUserinfo", {"id": account["id"], "type": 3, "userName": "stolen"}
    )

    assert body["msg"] == "account update successfully"
    _refused(foreign, 404, "id")
    assert PlatformAccount.objects.get().account_name == "new"
    assert _ok(frontend.get("/getAccounts"))["data"][0][3] == "new"


def test_delete_button_deletes_the_account_with_get(frontend, other_frontend, api, media_root):
    account = add_account(api, PlatformType.DOUYIN, "gone")
    kept = add_account(api, PlatformType.DOUYIN, "kept")

    foreign = other_frontend.get(f"/deleteAccount?id={account['id']}")
    missing = frontend.get("/deleteAccount?id=")
    junk = frontend.get("/deleteAccount?id=abc")
    body = _ok(frontend.get(f"/deleteAccount?id={account['id']}"))

    _refused(foreign, 404, "id")
    _refused(missing, 400, "id")
    _refused(junk, 400, "id")
    assert body == {"code": 200, "msg": "account deleted successfully", "data": None}
    assert list(PlatformAccount.objects.values_list("pk", flat=True)) == [kept["id"]]


def test_account_with_waiting_records_is_kept_and_finished_records_outlive_it(
    frontend, api, media_root
):
    clip = upload(api, "c.mp4")
    account = add_account(api, PlatformType.DOUYIN, "busy")
    _ok(
        frontend.post(
            "/postVideo",
            {
                "type": 3,
                "title": "t",
                "fileList": [clip["file_path"]],
                "accountList": [account["filePath"]],
            },
        )
    )
    record = PublishTaskRecord.objects.get()

    busy = frontend.get(f"/deleteAccount?id={account['id']}")
    _refused(busy, 409, "id")
    assert PlatformAccount.objects.filter(pk=account["id"]).exists()

    lifecycle.cancel_task(record.task_id)
    _ok(frontend.get(f"/deleteAccount?id={account['id']}"))

    assert not PlatformAccount.objects.exists()
    record.refresh_from_db()
    assert record.account_id is None
    assert record.account_name == "busy"
    [listed] = _ok(frontend.get("/getPublishTaskRecords"))["data"]["records"]
    assert (listed["account_name"], listed["account_id"], listed["status"]) == (
        "busy",
        None,
        "已取消",
    )


def test_cookie_file_uploads_encrypted_and_downloads_to_its_owner_only(
    frontend, other_frontend, api, media_root
):
    account = add_account(api, PlatformType.DOUYIN, "dy")

    # handleUploadCookie: FormData file, id, platform (the row's label).
    body = _ok(
        frontend.upload(
            "/uploadCookie",
            {"file": _cookie_file(STORAGE_STATE), "id": account["id"], "platform": "抖音"},
        )
    )
    # handleDownloadCookie: <a href> to /downloadCookie?filePath=<encodeURIComponent(filePath)>.
    download = frontend.link(f"/downloadCookie?filePath={account['filePath']}")
    foreign = other_frontend.link(f"/downloadCookie?filePath={account['filePath']}")
    without_session = Client().get(f"/downloadCookie?filePath={account['filePath']}")

    assert body == {"code": 200, "msg": "Cookie文件上传成功", "data": None}
    assert PlatformAccount.objects.get().credentials == STORAGE_STATE
    assert "s3cr3t-session" not in _stored_credentials(account["id"])
    assert download.status_code == 200
    assert download["Content-Type"].startswith("application/json")
    assert download["Content-Disposition"] == f'attachment; filename="{account["filePath"]}"'
    assert download["Cache-Control"] == "no-store"
    assert json.loads(download.content) == STORAGE_STATE
    _refused(foreign, 404, "filePath")
    _refused(without_session, 401)


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"file": ("cookie.txt", json.dumps(STORAGE_STATE).encode())}, 400, "file"),
        ({"file": ("c.json", b"{not json")}, 400, "file"),
        ({"file": ("c.json", b"\xff\xfe{}")}, 400, "file"),
        ({"file": ("c.json", b"[1, 2]")}, 400, "file"),
        ({"file": ("c.json", b"{}")}, 400, "file"),
        ({"file": ("c.json", b'{"a": NaN}')}, 400, "file"),
        ({"file": ("c.json", b"[" * 100 + b"]" * 100)}, 400, "file"),
        ({"file": None}, 400, "file"),
        ({"id": None}, 400, "id"),
        ({"id": "abc"}, 400, "id"),
        ({"id": "999999"}, 404, "id"),
        ({"platform": "快手"}, 400, "platform"),
        ({"platform": None}, 400, "platform"),
    ],
    ids=[
        "not-a-json-name",
        "broken-json",
        "not-utf8",
        "a-list",
        "empty-object",
        "nan",
        "too-deep",
        "no-file",
        "no-id",
        "junk-id",
        "unknown-id",
        "other-platform",
        "no-platform",
    ],
)
def test_bad_cookie_upload_is_refused_naming_the_field_and_changes_nothing(
    frontend, api, media_root, change, status, field
):
    account = add_account(api, PlatformType.DOUYIN, "dy")
    before = _stored_credentials(account["id"])
    form = {"file": _cookie_file(STORAGE_STATE), "id": account["id"], "platform": "抖音"}
    for name, value in change.items():
        if value is None:
            del form[name]
        elif name == "file":
            form[name] = _cookie_file(value[1], value[0])
        else:
            form[name] = value

    _refused(frontend.upload("/uploadCookie", form), status, field)

    assert _stored_credentials(account["id"]) == before
    assert PlatformAccount.objects.get().credentials == {"cookie": "secret"}


def test_cookie_upload_to_another_users_account_is_not_found(frontend, other_api, media_root):
    theirs = add_account(other_api, PlatformType.DOUYIN, "theirs")

    response = frontend.upload(
        "/uploadCookie",
        {"file": _cookie_file(STORAGE_STATE), "id": theirs["id"], "platform": "抖音"},
    )

    _refused(response, 404, "id")
    assert PlatformAccount.objects.get().credentials == {"cookie": "secret"}


@pytest.mark.parametrize("file_path", ["", "../../etc/passwd", "x" * 65, "a\x00b", "nope.json"])
def test_cookie_download_of_no_account_names_the_field(frontend, api, media_root, file_path):
    add_account(api, PlatformType.DOUYIN, "dy")

    response = frontend.browser.get("/downloadCookie", {"filePath": file_path})

    _refused(response, 400 if not file_path else 404, "filePath")


def test_cookie_download_of_an_account_that_never_logged_in_is_not_found(frontend, api, media_root):
    account = api.post("/addAccount", {"type": 3, "userName": "new"}, format="json").json()["data"]

    _refused(frontend.link(f"/downloadCookie?filePath={account['filePath']}"), 404, "filePath")


# --- the material page (MaterialManagement.vue) --------------------------------------------------


def test_material_page_uploads_lists_previews_downloads_and_deletes(
    frontend, other_frontend, media_root
):
    # submitUpload: FormData file (+ filename when one file and a custom name), progress shown.
    saved = _ok(
        frontend.upload(
            "/uploadSave", {"file": video("raw clip.mp4", size=6000), "filename": "holiday"}
        )
    )
    listed = _ok(frontend.get("/getFiles"))["data"]
    [material] = listed
    # getPreviewUrl(file_path): /getFile?filename=<file_path.split('/').pop()>, in a <video>.
    preview_url = f"/getFile?filename={material['file_path'].split('/').pop()}"
    preview = frontend.link(preview_url)
    seek = frontend.link(preview_url, Range="bytes=100-199")
    tail = frontend.link(preview_url, Range="bytes=-10")
    beyond = frontend.link(preview_url, Range="bytes=6000-")
    # downloadFile: window.open(/download/<file_path>).
    download = frontend.link(f"/download/{material['file_path']}")
    foreign_preview = other_frontend.link(preview_url)
    foreign_delete = other_frontend.get(f"/deleteFile?id={material['id']}")

    assert saved["msg"] == "File uploaded and saved successfully"
    assert saved["data"]["filename"] == "holiday.mp4"
    assert saved["data"]["filepath"] == material["file_path"]
    stored = VideoFile.objects.get()
    assert (stored.filename, stored.size, stored.stored_name) == (
        "holiday.mp4",
        6000,
        material["file_path"],
    )
    content = mp4_bytes(6000, "raw clip.mp4")
    assert preview.status_code == 200
    assert preview["Content-Type"] == "video/mp4"
    assert preview["Accept-Ranges"] == "bytes"
    assert b"".join(preview.streaming_content) == content
    assert seek.status_code == 206
    assert seek["Content-Range"] == "bytes 100-199/6000"
    assert b"".join(seek.streaming_content) == content[100:200]
    assert b"".join(tail.streaming_content) == content[-10:]
    _refused(beyond, 416, "Range")
    assert beyond["Content-Range"] == "bytes */6000"
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="holiday.mp4"'
    assert b"".join(download.streaming_content) == content
    _refused(foreign_preview, 404, "filename")
    _refused(foreign_delete, 404, "id")

    # handleDelete: http.get(/deleteFile?id=<id>); the page drops the row on code 200.
    deleted = _ok(frontend.get(f"/deleteFile?id={material['id']}"))
    assert deleted["data"] == {"id": material["id"], "filename": "holiday.mp4"}
    assert not VideoFile.objects.exists()
    assert not list(media_root.iterdir())
    assert _ok(frontend.get("/getFiles"))["data"] == []


@pytest.mark.parametrize(
    ("url", "status", "field"),
    [
        ("/getFile", 400, "filename"),
        ("/getFile?filename=", 400, "filename"),
        ("/getFile?filename=../../etc/passwd", 404, "filename"),
        ("/getFile?filename=%2Fetc%2Fpasswd", 404, "filename"),
        ("/getFile?filename=a%00b", 404, "filename"),
        ("/download/../../etc/passwd", 404, None),
        ("/download/%2E%2E/%2E%2E/etc/passwd", 404, None),
        ("/download/nope.mp4", 404, "file_path"),
        ("/deleteFile?id=", 400, "id"),
        ("/deleteFile?id=-1", 400, "id"),
        ("/deleteFile?id=99999", 404, "id"),
    ],
)
def test_file_urls_outside_the_callers_files_are_refused(frontend, media_root, url, status, field):
    upload_response = frontend.upload("/uploadSave", {"file": video("keep.mp4")})
    _ok(upload_response)

    response = frontend.link(url) if not url.startswith("/deleteFile") else frontend.get(url)

    assert response.status_code == status
    if field is not None:
        _refused(response, status, field)
    assert VideoFile.objects.count() == 1
    assert len(list(media_root.iterdir())) == 1


# --- GET deletes under a browser session: CSRF as for a POST ------------------------------------


def _csrf_browser(user) -> tuple[Client, str]:
    """A browser logged in by session that enforces CSRF, with the CSRF cookie Django set."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    token = get_random_string(32, string.ascii_letters + string.digits)
    browser.cookies[django_settings.CSRF_COOKIE_NAME] = token
    return browser, token


@pytest.mark.parametrize("kind", ["file", "account"])
def test_session_get_delete_needs_the_csrf_header(user, api, media_root, kind):
    if kind == "file":
        target, url, model = upload(api, "v.mp4"), "/deleteFile", VideoFile
    else:
        target = add_account(api, PlatformType.DOUYIN, "acc")
        url, model = "/deleteAccount", PlatformAccount
    browser, token = _csrf_browser(user)
    header = {django_settings.CSRF_HEADER_NAME: token}

    # A link or an image on another site: the session cookie goes along, no header.
    bare = browser.get(url, {"id": target["id"]})
    wrong = browser.get(url, {"id": target["id"]}, **{django_settings.CSRF_HEADER_NAME: "x" * 32})
    cross_site = browser.get(
        url, {"id": target["id"]}, HTTP_ORIGIN="https://evil.example", **header
    )
    head = browser.head(url, {"id": target["id"]}, **header)

    for refused in (bare, wrong, cross_site):
        body = _refused(refused, 403)
        assert body["msg"].startswith("CSRF Failed"), body
    assert head.status_code == 405
    assert model.objects.filter(pk=target["id"]).exists()

    # The front end's axios sends the header on its own origin.
    _ok(browser.get(url, {"id": target["id"]}, **header))
    assert not model.objects.filter(pk=target["id"]).exists()


def test_session_reads_need_no_csrf_header(user, api, media_root):
    add_account(api, PlatformType.DOUYIN, "acc")
    browser, _ = _csrf_browser(user)

    assert _ok(browser.get("/getAccounts"))["data"][0][3] == "acc"


def test_bearer_get_delete_needs_no_csrf_token(frontend, api, media_root):
    clip = upload(api, "v.mp4")

    # The front end's client enforces CSRF like a server does; a bearer token is not ambient.
    _ok(frontend.get(f"/deleteFile?id={clip['id']}"))

    assert not VideoFile.objects.exists()


def test_post_deletes_still_work(api, media_root):
    clip = upload(api, "v.mp4")
    account = add_account(api, PlatformType.DOUYIN, "acc")

    assert api.post("/deleteFile", {"id": clip["id"]}, format="json").status_code == 200
    assert api.post("/deleteAccount", {"id": account["id"]}, format="json").status_code == 200
    assert not VideoFile.objects.exists()
    assert not PlatformAccount.objects.exists()


def test_file_in_use_by_a_waiting_record_is_not_deleted(frontend, api, media_root):
    clip = upload(api, "busy.mp4")
    account = add_account(api, PlatformType.DOUYIN, "acc")
    _ok(
        frontend.post(
            "/postVideo",
            {
                "type": 3,
                "title": "t",
                "fileList": [clip["file_path"]],
                "accountList": [account["filePath"]],
            },
        )
    )

    _refused(frontend.get(f"/deleteFile?id={clip['id']}"), 409, "id")

    assert VideoFile.objects.filter(pk=clip["id"]).exists()
    assert PublishTaskRecord.objects.get().task.status == Status.QUEUED
