"""social-auto-upload's built frontend served on Task Center's origin, and the session + CSRF
path its pages use: files only for logged-in users, nothing outside the folder, the CSRF cookie
and header axios uses, and no cross-site request to a social-auto-upload endpoint getting in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern

from publishing.api.urls import urlpatterns as SAU_ROUTES
from publishing.models import PlatformAccount, PublishTaskRecord, VideoFile
from taskcenter.models import Task, TaskEvent
from taskcenter.settings import env_header
from tests.support.clients import token_client
from tests.support.frontend import STANDIN, STANDIN_BUNDLE, XSRF_COOKIE, serve_standin
from tests.support.processes import ROOT
from tests.support.publishing import add_account, upload

FRONTEND_PATHS = ["/", f"/assets/{STANDIN_BUNDLE}", "/vite.svg", "/favicon.ico"]
LOGIN = "/api/auth/login/"
EVIL = "https://evil.example"


@pytest.fixture
def dist(settings, tmp_path) -> Path:
    """The stand-in frontend served from tmp_path/dist, with a secret file beside the folder."""
    (tmp_path / "secret.txt").write_text("not for the browser")
    return serve_standin(settings, tmp_path)


@pytest.fixture
def browser(user, dist) -> Client:
    """``alice``'s browser with a session, CSRF enforced as a real browser would meet it."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    return browser


def xsrf_token(browser: Client) -> str:
    """Load the index as the frontend does and read the cookie axios copies into its header."""
    assert browser.get("/").status_code == 200
    return browser.cookies[XSRF_COOKIE].value


def tables() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (PlatformAccount, VideoFile, PublishTaskRecord, Task, TaskEvent)
    }


# --- serving ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FRONTEND_PATHS)
def test_frontend_paths_stay_unknown_when_no_folder_is_configured(client, user, settings, path):
    settings.SOCIAL_AUTO_UPLOAD_FRONTEND_DIR = ""
    assert client.get(path).json() == {"code": 404, "msg": "Not found.", "data": None}
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == 404


@pytest.mark.parametrize("path", [*FRONTEND_PATHS, "/assets/no-such-bundle.js"])
def test_anonymous_visitor_is_sent_to_the_login_page_and_gets_no_file(client, dist, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next={path}"
    assert b"stand-in" not in response.content


def test_login_page_sends_a_person_back_to_the_frontend(user, dist):
    browser = Client(enforce_csrf_checks=True)
    login_page = browser.get(f"{LOGIN}?next=/")
    assert login_page.status_code == 200
    response = browser.post(
        LOGIN,
        {
            "username": "alice",
            "password": "alice-pass-123",
            "next": "/",
            "csrfmiddlewaretoken": browser.cookies[XSRF_COOKIE].value,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    index = browser.get("/")
    assert index.status_code == 200
    assert b"".join(index.streaming_content) == (STANDIN / "index.html").read_bytes()


def test_index_is_never_cached_and_sets_the_csrf_cookie_axios_reads(browser):
    response = browser.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert {"no-cache", "no-store", "private"} <= {
        part.strip() for part in response["Cache-Control"].split(",")
    }
    cookie = response.cookies[XSRF_COOKIE]
    assert len(cookie.value) == 32
    assert not cookie["httponly"]  # the frontend's script reads it
    assert cookie["samesite"] == "Lax"


def test_hashed_bundles_are_cached_for_a_year_and_the_icon_for_an_hour(browser, dist):
    bundle = browser.get(f"/assets/{STANDIN_BUNDLE}")
    assert bundle.status_code == 200
    assert bundle["Content-Type"] == "text/javascript"
    assert b"".join(bundle.streaming_content) == (dist / "assets" / STANDIN_BUNDLE).read_bytes()
    assert set(bundle["Cache-Control"].split(", ")) == {
        "private",
        "max-age=31536000",
        "immutable",
    }
    for path in ("/vite.svg", "/favicon.ico"):
        icon = browser.get(path)
        assert icon.status_code == 200
        assert icon["Content-Type"] == "image/svg+xml"
        assert set(icon["Cache-Control"].split(", ")) == {"private", "max-age=3600"}


@pytest.mark.parametrize(
    "name",
    [
        "../secret.txt",
        "../../secret.txt",
        "%2e%2e/secret.txt",
        "..%2fsecret.txt",
        "..%5csecret.txt",
        "/etc/passwd",
        "link-out.txt",
        "sub",
        "%00",
        "x" * 300,
        "no-such-bundle.js",
    ],
)
def test_nothing_outside_the_folder_or_missing_is_served(browser, dist, name):
    (dist / "assets" / "link-out.txt").symlink_to(dist.parent / "secret.txt")
    (dist / "assets" / "sub").mkdir()
    response = browser.get(f"/assets/{name}")
    assert response.status_code == 404
    assert response.json()["code"] == 404
    assert b"not for the browser" not in response.content


def test_frontend_files_answer_get_and_head_only(client, user, dist):
    client.force_login(user)  # Django's test client skips CSRF: the method check is what answers
    assert client.head("/").status_code == 200
    for path in FRONTEND_PATHS:
        assert client.post(path).status_code == 405
        assert client.delete(path).status_code == 405


# --- the session + CSRF path ------------------------------------------------------------------


def test_session_post_with_the_axios_csrf_header_passes_and_without_it_is_refused(browser, user):
    token = xsrf_token(browser)
    body = {"type": 3, "userName": "douyin-main"}

    refused = browser.post("/addAccount", body, content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["code"] == 403
    # Only the configured header counts: Django's default name is not read any more.
    assert (
        browser.post(
            "/addAccount", body, content_type="application/json", HTTP_X_CSRFTOKEN=token
        ).status_code
        == 403
    )
    assert not PlatformAccount.objects.exists()

    accepted = browser.post(
        "/addAccount", body, content_type="application/json", HTTP_X_XSRF_TOKEN=token
    )
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["code"] == 200
    assert PlatformAccount.objects.get().owner == user


def route(pattern: URLPattern) -> str:
    return "/" + str(pattern.pattern)


@pytest.mark.parametrize("path", [route(p) for p in SAU_ROUTES], ids=str)
def test_cross_site_request_to_any_social_auto_upload_endpoint_is_refused(
    browser, api, media_root, path
):
    """What a page on another site can make a logged-in person's browser send: the session
    cookie and its own Origin (or Referer), no token. Refused before the view runs."""
    account = add_account(api, 3, "douyin-main")
    video = upload(api, "clip.mp4")
    token = xsrf_token(browser)
    # A body that would delete, add, change or publish something if it got through.
    body = {
        "id": account["id"],
        "type": 3,
        "userName": "planted",
        "name": "planted",
        "fileList": [video["file_path"]],
        "accountList": [account["id"]],
        "title": "planted",
        "status": "cancelled",
    }
    before = tables()

    by_origin = browser.post(path, body, content_type="application/json", HTTP_ORIGIN=EVIL)
    by_referer = browser.post(
        path, body, content_type="application/json", secure=True, HTTP_REFERER=f"{EVIL}/page"
    )
    # A token leaked to another site does not help it: the Origin is checked too.
    with_token = browser.post(
        path, body, content_type="application/json", HTTP_ORIGIN=EVIL, HTTP_X_XSRF_TOKEN=token
    )

    assert [by_origin.status_code, by_referer.status_code, with_token.status_code] == [403] * 3
    assert tables() == before
    assert PlatformAccount.objects.get(pk=account["id"]).name == ""


@pytest.mark.parametrize("path", [route(p) for p in SAU_ROUTES], ids=str)
def test_cross_site_link_to_any_social_auto_upload_endpoint_deletes_nothing(
    browser, api, media_root, path
):
    """social-auto-upload deletes with GET (``/deleteFile?id=``, ``/deleteAccount?id=``), and
    Django checks CSRF on unsafe methods only: a link on another site, followed by a logged-in
    person (a top-level navigation carries the SameSite=Lax session cookie), must not delete or
    change anything. The frontend's own GETs carry the X-XSRF-TOKEN header; this has none."""
    account = add_account(api, 3, "douyin-main")
    video = upload(api, "clip.mp4")
    link_from_elsewhere = {
        "HTTP_SEC_FETCH_SITE": "cross-site",
        "HTTP_SEC_FETCH_MODE": "navigate",
        "HTTP_REFERER": f"{EVIL}/page",
    }
    for query in (
        {"id": account["id"]},
        {"id": video["id"]},
        {"filePath": video["file_path"], "filename": video["file_path"]},
    ):
        assert browser.get(path, query, **link_from_elsewhere).status_code != 500

    kept = PlatformAccount.objects.get(pk=account["id"])
    assert (kept.name, kept.account_name, kept.credentials) == (
        "",
        "douyin-main",
        {"cookie": "secret"},
    )
    assert VideoFile.objects.filter(pk=video["id"]).exists()
    assert (media_root / video["file_path"]).exists()


def test_bearer_token_clients_need_no_csrf_token(user, dist):
    client = token_client(user)
    client.handler.enforce_csrf_checks = True
    response = client.post("/addAccount", {"type": 3, "userName": "douyin-main"}, format="json")
    assert response.status_code == 200, response.content
    assert PlatformAccount.objects.filter(owner=user, account_name="douyin-main").exists()


def test_admin_browsable_api_and_swagger_ui_follow_the_csrf_names(staff_user, dist):
    browser = Client(enforce_csrf_checks=True)
    browser.get("/admin/login/")
    logged_in = browser.post(
        "/admin/login/?next=/admin/",
        {
            "username": "operator",
            "password": "operator-pass-123",
            "csrfmiddlewaretoken": browser.cookies[XSRF_COOKIE].value,
        },
    )
    assert logged_in.status_code == 302
    assert logged_in["Location"] == "/admin/"
    assert browser.get("/admin/").status_code == 200

    browsable = browser.get("/api/v1/tasks", HTTP_ACCEPT="text/html")
    assert browsable.status_code == 200
    assert b'"csrfHeaderName": "X-XSRF-TOKEN"' in browsable.content
    swagger = browser.get("/api/docs/")
    assert swagger.status_code == 200
    assert b'request.headers["X-XSRF-TOKEN"]' in swagger.content


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("X-XSRF-TOKEN", "HTTP_X_XSRF_TOKEN"),
        ("x-xsrf-token", "HTTP_X_XSRF_TOKEN"),
        ("HTTP_X_XSRF_TOKEN", "HTTP_X_XSRF_TOKEN"),
        ("X-CSRFToken", "HTTP_X_CSRFTOKEN"),
        ("", "HTTP_X_DEFAULT"),
    ],
)
def test_csrf_header_setting_takes_the_header_as_clients_send_it(monkeypatch, raw, key):
    monkeypatch.setenv("CSRF_HEADER_NAME", raw)
    assert env_header("CSRF_HEADER_NAME", "X-Default") == key


def settings_in_a_new_process(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    code = (
        "from taskcenter import settings as s; "
        "print(s.CSRF_COOKIE_NAME, s.CSRF_HEADER_NAME, s.SOCIAL_AUTO_UPLOAD_FRONTEND_DIR or '-')"
    )
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CSRF_", "SOCIAL_AUTO_UPLOAD_", "DJANGO_SETTINGS"))
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **inherited,
            "TASKCENTER_VAR_DIR": str(tmp_path / "var"),
            "SECRET_KEY": "x" * 50,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_serving_the_frontend_names_the_csrf_cookie_and_header_as_axios_does(tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html>")

    plain = settings_in_a_new_process(tmp_path)
    served = settings_in_a_new_process(tmp_path, SOCIAL_AUTO_UPLOAD_FRONTEND_DIR=str(dist))
    chosen = settings_in_a_new_process(
        tmp_path,
        SOCIAL_AUTO_UPLOAD_FRONTEND_DIR=str(dist),
        CSRF_COOKIE_NAME="sau_csrf",
        CSRF_HEADER_NAME="X-Sau-Csrf",
    )
    no_build = settings_in_a_new_process(tmp_path, SOCIAL_AUTO_UPLOAD_FRONTEND_DIR=str(tmp_path))

    assert plain.stdout.split() == ["csrftoken", "HTTP_X_CSRFTOKEN", "-"], plain.stderr
    assert served.stdout.split() == ["XSRF-TOKEN", "HTTP_X_XSRF_TOKEN", str(dist)], served.stderr
    assert chosen.stdout.split() == ["sau_csrf", "HTTP_X_SAU_CSRF", str(dist)], chosen.stderr
    assert no_build.returncode != 0
    assert "has no index.html" in no_build.stderr
