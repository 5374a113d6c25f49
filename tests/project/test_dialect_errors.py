"""Errors in each dialect's own JSON envelope, never a 500 or Django's HTML page.

The four inputs that crashed (a huge page number, a 10^30 channel id, JSON nested 5,000 deep, a
file name of 200 CJK characters), unknown URLs, wrong methods, a crash in a view, and bodies
above the size limit: answered in the envelope, read to the end so the client sees the answer.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from publishing.models import PlatformAccount, PublishTaskRecord, VideoFile
from quota import ledger as quota
from taskcenter.api.pagination import MAX_PAGE
from taskcenter.api.parsers import MAX_JSON_NESTING, TooDeeplyNested, check_nesting
from taskcenter.models import Task, TaskEvent
from tests.support.clients import new_api_client
from tests.support.dialects import (
    CANONICAL,
    GENERATION,
    INTEGRATION,
    PREFIXES,
    PUBLISHING,
    SYNC,
    assert_error_envelope,
)
from tests.support.processes import ROOT
from tests.support.publishing import mp4_bytes, video

DEEP = 5000


def deep_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def row_counts() -> dict[str, int]:
    models = (Task, TaskEvent, PublishTaskRecord, VideoFile, PlatformAccount)
    return {model.__name__: model.objects.count() for model in models}


@pytest.fixture
def client(user) -> APIClient:
    """alice, sending what each dialect's clients send (Bearer token, New-Api-User)."""
    quota.grant(user.pk, 1000)
    return new_api_client(user)


# --- the four inputs found today ---------------------------------------------------------------


def test_page_number_beyond_any_row_on_new_api_self_is_a_400_naming_p(client):
    response = client.get("/api/task/self", {"p": "99999999999999999999999"})

    body = assert_error_envelope(GENERATION, response, 400)
    assert body["message"].startswith("p: ")


def test_last_allowed_page_on_new_api_self_is_an_empty_page(client):
    response = client.get("/api/task/self", {"p": MAX_PAGE, "page_size": 100})

    assert response.status_code == 200, response.content
    assert response.json()["data"]["items"] == []


def test_channel_id_beyond_64_bits_on_new_api_submit_is_a_400_and_creates_nothing(client):
    before = row_counts()
    response = client.post(
        "/api/task/submit",
        {"action": "song", "prompt": "a song", "channel_id": 10**30},
        format="json",
    )

    body = assert_error_envelope(GENERATION, response, 400)
    assert body["message"].startswith("channel_id: ")
    assert row_counts() == before


def test_argument_text_nested_5000_deep_is_a_400_naming_argument(client):
    row = {"integration_id": 1, "client_id": 1, "template_id": 1, "account_id": 1}
    response = client.post(
        "/api/integration/tasks", {**row, "argument": deep_list(DEEP)}, format="json"
    )

    body = assert_error_envelope(INTEGRATION, response, 400)
    assert body["error"]["fields"] == [
        {"field": "argument", "message": f"JSON is nested deeper than {MAX_JSON_NESTING} levels."}
    ]
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("dialect", "path"),
    [
        (GENERATION, "/api/task/submit"),
        (INTEGRATION, "/api/integration/tasks"),
        (SYNC, "/api/sync/tasks"),
        (PUBLISHING, "/postVideo"),
        (PUBLISHING, "/addAccount"),
        (CANONICAL, "/api/v1/tasks"),
        (CANONICAL, "/api/v1/tasks/batch"),
    ],
)
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_json_body_nested_5000_deep_is_a_400_naming_the_body(client, dialect, path, opener):
    closer = "]" if opener == "[" else "}"
    document = '{"x":' + opener * DEEP + "1" + closer * DEEP + "}"
    before = row_counts()

    response = client.generic("POST", path, document, content_type="application/json")

    body = assert_error_envelope(dialect, response, 400)
    assert "body: JSON is nested deeper than 64 levels" in json.dumps(body)
    assert row_counts() == before


def test_brackets_inside_strings_do_not_count_as_nesting():
    check_nesting(json.dumps({"text": "[" * 1000, "quoted": '\\"[[[' * 100}))
    check_nesting(deep_list(MAX_JSON_NESTING))
    with pytest.raises(TooDeeplyNested):
        check_nesting(deep_list(MAX_JSON_NESTING + 1))


def test_upload_named_200_cjk_characters_is_stored_under_a_short_name_keeping_the_original(
    client, media_root
):
    name = "视" * 200 + ".mp4"

    response = client.post("/upload", {"file": video(name)}, format="multipart")

    assert response.status_code == 200, response.content
    stored = VideoFile.objects.get()
    assert response.json()["data"] == stored.stored_name
    assert stored.filename == name
    assert len(stored.stored_name.encode()) <= 140
    assert stored.stored_name.endswith(".mp4")
    assert stored.path.read_bytes() == mp4_bytes(4096, name)


def test_renaming_an_upload_to_200_cjk_characters_keeps_the_name_in_the_record(client, media_root):
    response = client.post(
        "/uploadSave", {"file": video("clip.mp4"), "filename": "名" * 200}, format="multipart"
    )

    assert response.status_code == 200, response.content
    stored = VideoFile.objects.get()
    assert stored.filename.startswith("名" * 190)
    assert stored.path.is_file()


# --- unknown URLs, wrong methods, crashes --------------------------------------------------------


@pytest.mark.parametrize("dialect", list(PREFIXES))
def test_unknown_path_under_a_dialect_answers_its_json_envelope(client, dialect):
    response = client.get(f"{PREFIXES[dialect]}no-such-endpoint/x")

    assert_error_envelope(dialect, response, 404)


def test_unknown_admin_path_keeps_the_html_page_for_people(client):
    response = client.get("/admin/no-such-page/")

    assert response.status_code in (302, 404)
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("dialect", "method", "path"),
    [
        (PUBLISHING, "delete", "/getFiles"),
        (PUBLISHING, "get", "/postVideo"),
        (PUBLISHING, "put", "/upload"),
        (GENERATION, "post", "/api/task/self"),
        (GENERATION, "get", "/api/task/submit"),
        (SYNC, "delete", "/api/sync/tasks"),
        (SYNC, "get", "/api/sync/tasks/1/cancel"),
        (INTEGRATION, "put", "/api/integration/tasks"),
        (INTEGRATION, "post", "/api/integration/tasks/1"),
        (CANONICAL, "patch", "/api/v1/tasks/statistics"),
    ],
)
def test_wrong_method_answers_the_dialects_json_envelope(client, dialect, method, path):
    before = row_counts()

    response = getattr(client, method)(path)

    assert_error_envelope(dialect, response, 405)
    assert row_counts() == before


@pytest.mark.parametrize("dialect", list(PREFIXES))
def test_too_many_query_fields_answer_the_dialects_400_envelope(client, dialect, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    path = {
        PUBLISHING: "/getPublishTaskRecords",
        GENERATION: "/api/task/self",
        SYNC: "/api/sync/tasks",
        INTEGRATION: "/api/integration/tasks",
        CANONICAL: "/api/v1/tasks",
    }[dialect]

    response = client.get(path, {f"f{n}": n for n in range(20)})

    assert_error_envelope(dialect, response, 400)


@override_settings(ROOT_URLCONF="tests.support.crash_urls")
@pytest.mark.parametrize("dialect", list(PREFIXES))
def test_crash_in_a_dialect_view_answers_its_500_envelope_and_is_logged(client, dialect, caplog):
    client.raise_request_exception = False

    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get(f"{PREFIXES[dialect]}crash")

    assert_error_envelope(dialect, response, 500)
    logged = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert [str(exc) for exc in logged] == ["a bug in a dialect view"]


# --- bodies above the limit ----------------------------------------------------------------------

UPLOAD_510_MIB = 510 * 1024 * 1024


class ZeroBody:
    """A request body of ``size`` zero bytes, made as it is read: nothing large in memory."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= size
        self.consumed += size
        return bytes(size)

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


@pytest.mark.parametrize(
    ("dialect", "path", "content_type"),
    [
        (PUBLISHING, "/upload", "multipart/form-data; boundary=b"),
        (PUBLISHING, "/postVideo", "application/json"),
        (GENERATION, "/api/task/submit", "application/json"),
        (SYNC, "/api/sync/tasks", "application/json"),
        (INTEGRATION, "/api/integration/tasks", "application/json"),
        (CANONICAL, "/api/v1/tasks", "application/json"),
    ],
)
def test_body_of_510_mib_is_a_413_in_the_envelope_and_is_read_to_the_end(
    client, dialect, path, content_type
):
    body = ZeroBody(UPLOAD_510_MIB)
    before = row_counts()

    response = client.generic(
        "POST",
        path,
        b"",
        content_type=content_type,
        CONTENT_LENGTH=str(UPLOAD_510_MIB),
        **{"wsgi.input": body},
    )

    assert_error_envelope(dialect, response, 413)
    assert body.consumed == UPLOAD_510_MIB  # drained after the answer: no reset for the client
    assert row_counts() == before


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def send_streamed_upload(port: int, size: int) -> tuple[int, bytes]:
    """POST a multipart upload of ``size`` bytes to /upload, written 1 MiB at a time."""
    head = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
        b"Content-Type: video/mp4\r\n\r\n"
    )
    tail = b"\r\n--b--\r\n"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.putrequest("POST", "/upload")
    connection.putheader("Content-Type", "multipart/form-data; boundary=b")
    connection.putheader("Content-Length", str(len(head) + size + len(tail)))
    connection.endheaders()
    connection.send(head)
    chunk = bytes(1024 * 1024)
    for _ in range(size // len(chunk)):
        connection.send(chunk)
    connection.send(tail)
    response = connection.getresponse()
    return response.status, response.read()


@pytest.mark.slow
def test_510_mib_upload_to_gunicorn_reads_the_413_envelope_not_a_reset(tmp_path: Path):
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("w+")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
        "TASKCENTER_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    }
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "taskcenter.wsgi", "--bind", f"127.0.0.1:{port}"),
            *("--workers", "1", "--threads", "2", "--no-control-socket"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, log.seek(0) or log.read()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)

        status, content = send_streamed_upload(port, UPLOAD_510_MIB)

        assert status == 413, content
        body = json.loads(content)
        assert body["code"] == 413
        assert "limit" in body["msg"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


@pytest.mark.slow
def test_510_mib_upload_under_asgi_is_refused_unread_with_the_413_envelope(tmp_path: Path):
    """Django reads a body whole under ASGI before any view runs; taskcenter.asgi lets a body
    over every limit reach it empty (the 413 comes from Content-Length) and then reads and
    drops the body, so the client, still sending, reads the answer."""
    port = free_port()
    log = (tmp_path / "web.log").open("w+")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
        "TASKCENTER_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
    }
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "taskcenter.asgi:application"),
            *("--worker-class", "taskcenter.web_worker.WebWorker", "--workers", "1"),
            *("--bind", f"127.0.0.1:{port}", "--no-control-socket"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, log.seek(0) or log.read()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)

        status, content = send_streamed_upload(port, UPLOAD_510_MIB)

        assert status == 413, content
        body = json.loads(content)
        assert body["code"] == 413
        assert "limit" in body["msg"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()
