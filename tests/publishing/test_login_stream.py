"""``GET /login``: social-auto-upload's account login stream, replayed as its front end's
``EventSource`` sends it (``Accept: text/event-stream``, the session cookie, no Authorization)
over real HTTP against the sandbox platform's QR-code login."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest
from django.db import connections
from django.test import Client

from publishing.login import LINGER_SECONDS, QrCode, sse_messages
from publishing.models import LoginStatus, PlatformAccount
from publishing.providers import HttpProvider, LoginProgress
from sandbox.login import area_of as login_area_of
from sandbox.publishing import area_of as publishing_area_of
from taskcenter.models.tokens import ApiToken
from tests.publishing.test_credentials_encryption import raw_credentials
from tests.support.asgi_server import asgi_server, gunicorn_server
from tests.support.login import PNG_DATA_URL, answer, platform_logins, read_qr_code
from tests.support.png import is_qr_code_of
from tests.support.processes import test_database_url, wait_for
from tests.support.sse import EventStream, session_cookie
from tests.support.throwaway_postgres import free_port


@pytest.fixture
def browser_cookie(client, user, settings) -> str:
    """alice's session cookie, as her browser holds it after logging in on Task Center."""
    client.force_login(user)
    return session_cookie(client, settings)


def open_stream(
    live_server, platform_type: int, name: str, timeout: float = 15.0, **headers: str
) -> EventStream:
    query = {"type": str(platform_type), "id": name}
    return EventStream(live_server.url, "/login", query, headers=headers, timeout=timeout)


# --- the front end's stream, end to end -------------------------------------------------------


def test_the_frontends_stream_shows_the_qr_code_then_200_once_the_platform_confirms(
    live_server, login_settings, platform, browser_cookie, user
):
    stream = open_stream(live_server, 3, "alice_dy", Cookie=browser_cookie)
    try:
        assert stream.status == 200
        assert stream.header("Content-Type") == "text/event-stream"
        assert stream.header("Cache-Control") == "no-cache"
        assert stream.header("X-Accel-Buffering") == "no"
        messages = stream.messages()
        png = read_qr_code(messages)
        [login] = platform_logins(platform)
        assert login["platform"] == "douyin"
        assert login["account_name"] == "alice_dy"
        assert login["account_id"] == ""  # a new account
        assert is_qr_code_of(png, login["qr_content"])
        assert not PlatformAccount.objects.exists()
        # The person scans once the page shows the code and the server polls the platform.
        stream.wait_for_comment("waiting")

        answer(platform, "confirm", account_name="alice_dy", nickname="Alice on Douyin")

        assert next(messages) == "200"
    finally:
        stream.close()  # the front end closes its EventSource after "200"

    account = PlatformAccount.objects.get()
    assert account.owner == user
    assert (account.platform_type, account.account_name) == (3, "alice_dy")
    assert account.name == "Alice on Douyin"
    assert account.login_status == LoginStatus.VALID
    assert account.login_checked_at is not None
    [cookie] = account.credentials["cookies"]
    assert cookie["domain"] == ".douyin.example"
    raw = raw_credentials(account.pk)
    assert cookie["value"] not in raw
    assert "cookies" not in raw


def test_a_refused_login_sends_500_and_stores_nothing(
    live_server, login_settings, platform, browser_cookie
):
    stream = open_stream(live_server, 1, "alice_xhs", Cookie=browser_cookie)
    try:
        messages = stream.messages()
        read_qr_code(messages)
        answer(platform, "refuse", account_name="alice_xhs")

        assert next(messages) == "500"
        assert list(messages) == []  # the stream ends: the page has closed it already
    finally:
        stream.close()
    assert not PlatformAccount.objects.exists()
    assert [login["status"] for login in platform_logins(platform)] == ["refused"]


def test_nobody_confirming_before_the_deadline_sends_500_and_cancels_the_platforms_login(
    live_server, login_settings, platform, browser_cookie
):
    login_settings.PUBLISHING = {**login_settings.PUBLISHING, "LOGIN_TIMEOUT_SECONDS": 0.5}
    stream = open_stream(live_server, 4, "alice_ks", Cookie=browser_cookie)
    try:
        messages = stream.messages()
        read_qr_code(messages)

        assert next(messages) == "500"
    finally:
        stream.close()
    assert not PlatformAccount.objects.exists()
    # Confirming now is too late: the code no longer works.
    assert [login["status"] for login in platform_logins(platform)] == ["cancelled"]


def test_a_platform_that_cannot_start_a_login_gives_500_without_a_qr_code(
    live_server, login_settings, platform, browser_cookie
):
    login_area_of(platform).apply({"start_fail_next": 1})
    stream = open_stream(live_server, 2, "alice_channels", Cookie=browser_cookie)
    try:
        assert list(stream.messages()) == ["500"]  # and the stream ends
    finally:
        stream.close()
    assert not PlatformAccount.objects.exists()


def test_the_platform_confirming_by_itself_after_a_delay_gives_200(
    live_server, login_settings, platform, browser_cookie
):
    login_area_of(platform).apply({"confirm_after_ms": 300})
    stream = open_stream(live_server, 2, "alice_channels", Cookie=browser_cookie)
    try:
        messages = stream.messages()
        read_qr_code(messages)
        assert next(messages) == "200"
    finally:
        stream.close()
    assert PlatformAccount.objects.get().account_name == "alice_channels"


def test_logging_in_again_with_a_token_renews_the_callers_account_and_nobody_elses(
    live_server, login_settings, platform, user, other_user
):
    mine = PlatformAccount.objects.create(
        owner=user,
        platform_type=3,
        account_name="shared_name",
        credentials={"cookies": "old"},
        login_status=LoginStatus.EXPIRED,
    )
    theirs = PlatformAccount.objects.create(
        owner=other_user,
        platform_type=3,
        account_name="shared_name",
        credentials={"cookies": "bobs"},
        login_status=LoginStatus.EXPIRED,
    )
    publishing_area_of(platform).apply({"expire_login": str(mine.pk)})
    _, key = ApiToken.objects.issue(user)
    stream = open_stream(live_server, 3, "shared_name", Authorization=f"Bearer {key}")
    try:
        messages = stream.messages()
        read_qr_code(messages)
        assert platform_logins(platform)[0]["account_id"] == str(mine.pk)
        answer(platform, "confirm", account_name="shared_name")
        assert next(messages) == "200"
    finally:
        stream.close()

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert PlatformAccount.objects.count() == 2
    assert mine.login_status == LoginStatus.VALID
    assert mine.credentials["cookies"][0]["name"] == "sessionid"
    assert theirs.login_status == LoginStatus.EXPIRED
    assert theirs.credentials == {"cookies": "bobs"}
    # The platform takes the account's new login for publishing again.
    assert publishing_area_of(platform).switches()["expired_logins"] == []


def _request_threads(live_server) -> set[threading.Thread]:
    """The live server's threads serving a request (earlier tests' may be ending still); the
    sandbox platform's are left out."""
    httpd = live_server.thread.httpd
    return {
        thread
        for thread in threading.enumerate()
        if getattr(getattr(thread, "_target", None), "__self__", None) is httpd
    }


def test_a_client_that_goes_away_cancels_the_login_and_frees_its_thread(
    live_server, login_settings, platform, browser_cookie
):
    before = _request_threads(live_server)
    stream = open_stream(live_server, 3, "alice_dy", Cookie=browser_cookie)
    read_qr_code(stream.messages())
    [serving] = _request_threads(live_server) - before
    assert [login["status"] for login in platform_logins(platform)] == ["waiting"]

    stream.close()  # the page is closed while the QR code shows

    wait_for(lambda: not serving.is_alive(), timeout=5)
    assert [login["status"] for login in platform_logins(platform)] == ["cancelled"]
    assert not PlatformAccount.objects.exists()


class ConnectionWatchingProvider(HttpProvider):
    """The HTTP provider, noting at each look at the platform whether the thread holds a
    database connection."""

    held: list[bool] = []

    def login_status(self, platform: str, login_id: str) -> LoginProgress:
        self.held.append(connections["default"].connection is not None)
        return super().login_status(platform, login_id)


def test_the_stream_holds_no_database_connection_while_it_waits(
    live_server, login_settings, platform, browser_cookie
):
    login_settings.PUBLISHING = {
        **login_settings.PUBLISHING,
        "PROVIDER": f"{__name__}.ConnectionWatchingProvider",
    }
    ConnectionWatchingProvider.held = []
    login_area_of(platform).apply({"confirm_after_ms": 300})
    stream = open_stream(live_server, 3, "alice_dy", Cookie=browser_cookie)
    try:
        messages = stream.messages()
        read_qr_code(messages)
        assert next(messages) == "200"
    finally:
        stream.close()
    assert len(ConnectionWatchingProvider.held) >= 3
    assert not any(ConnectionWatchingProvider.held)
    assert PlatformAccount.objects.count() == 1


@pytest.mark.slow
def test_the_stream_stays_open_a_moment_after_200_for_the_page_to_close_it(
    live_server, login_settings, platform, browser_cookie
):
    """The front end keeps its EventSource a second after "200"; an earlier end of the stream
    would reach it as a connection error."""
    login_area_of(platform).apply({"confirm_after_ms": 100})
    stream = open_stream(
        live_server, 3, "alice_dy", timeout=LINGER_SECONDS + 5, Cookie=browser_cookie
    )
    try:
        messages = stream.messages()
        read_qr_code(messages)
        assert next(messages) == "200"
        started = time.monotonic()
        assert list(messages) == []  # then it ends, with heartbeats only
        assert LINGER_SECONDS - 0.5 < time.monotonic() - started < LINGER_SECONDS + 3
        # Heartbeats go on while it lingers (about one a second; a loaded machine sends fewer).
        assert stream.comments.count("waiting") >= 2
    finally:
        stream.close()


# --- refusals: the envelope, never a stream --------------------------------------------------


@pytest.mark.django_db
def test_anonymous_is_401_in_the_envelope_not_a_stream(client):
    response = client.get("/login", {"type": 3, "id": "x"}, HTTP_ACCEPT="text/event-stream")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "code": 401,
        "msg": "Authentication credentials were not provided.",
        "data": None,
    }
    assert not PlatformAccount.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"id": "x"}, "type"),
        ({"type": "", "id": "x"}, "type"),
        ({"type": "0", "id": "x"}, "type"),
        ({"type": "5", "id": "x"}, "type"),
        ({"type": "6", "id": "x"}, "type"),
        ({"type": "douyin", "id": "x"}, "type"),
        ({"type": "3"}, "id"),
        ({"type": "3", "id": "   "}, "id"),
        ({"type": "3", "id": "x" * 101}, "id"),
        ({"type": "3", "id": "a\x00b"}, "id"),
    ],
)
def test_a_bad_type_or_id_is_400_naming_the_field(api, query, field):
    response = api.get("/login", query, HTTP_ACCEPT="text/event-stream")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == 400
    assert body["msg"].startswith(f"{field}: ")
    assert body["data"] == {"field": field}
    assert not PlatformAccount.objects.exists()


@pytest.mark.django_db
def test_another_sites_page_cannot_use_the_session_for_a_stream(user):
    client = Client(enforce_csrf_checks=True)  # as a browser is: Django's test client is not
    client.force_login(user)

    refused = [
        client.get("/login", {"type": 3, "id": "x"}, HTTP_ACCEPT="text/event-stream", **fetch_site)
        # Another site; another port or subdomain of this one; a client that says nothing.
        for fetch_site in (
            {"HTTP_SEC_FETCH_SITE": "cross-site"},
            {"HTTP_SEC_FETCH_SITE": "same-site"},
            {},
        )
    ]
    allowed = client.get(
        "/login",
        {"type": 3, "id": "x"},
        HTTP_ACCEPT="text/event-stream",
        HTTP_SEC_FETCH_SITE="same-origin",
    )

    assert [answer.status_code for answer in refused] == [403] * 3
    assert all(answer.json()["code"] == 403 for answer in refused)
    assert allowed.status_code == 200
    assert allowed["Content-Type"] == "text/event-stream"
    # Its body is not read here, so that login never starts.
    assert not PlatformAccount.objects.exists()


def test_a_platform_hiccup_while_waiting_is_asked_again(
    live_server, login_settings, platform, browser_cookie
):
    stream = open_stream(live_server, 3, "alice_dy", Cookie=browser_cookie)
    try:
        messages = stream.messages()
        read_qr_code(messages)
        platform.control(fail_next=3)  # the next three looks at the platform get a 503
        wait_for(lambda: platform.switches.state()["fail_next"] == 0, timeout=5)
        answer(platform, "confirm", account_name="alice_dy")

        assert next(messages) == "200"
    finally:
        stream.close()
    assert PlatformAccount.objects.get().login_status == LoginStatus.VALID


def test_an_unexpected_failure_of_the_flow_still_tells_the_page_500():
    def failing_flow():
        yield QrCode(PNG_DATA_URL + "AAAA")
        raise RuntimeError("a bug")

    messages = list(sse_messages(failing_flow(), linger=0))

    assert messages == [
        b": login started\n\n",
        b"data: " + PNG_DATA_URL.encode() + b"AAAA\n\n",
        b"data: 500\n\n",
    ]


# --- under gunicorn, as run_service serves it --------------------------------------------------


@pytest.fixture
def gunicorn(transactional_db, platform, tmp_path):
    """gunicorn with one worker of one thread, on the test database and the sandbox platform:
    a login stream that kept its thread would keep every other request out."""
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("w+")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "taskcenter.test_settings",
        "DATABASE_URL": test_database_url(),
        "PUBLISHING_BASE_URL": platform.url,
        "PUBLISHING_TOKEN": "sandbox-token",
        "PUBLISHING_LOGIN_POLL_SECONDS": "0.2",
        "PUBLISHING_LOGIN_TIMEOUT_SECONDS": "60",
    }
    command = [sys.executable, "-m", "gunicorn", "taskcenter.wsgi"]
    command += ["--workers", "1", "--threads", "1", "--worker-class", "gthread"]
    with gunicorn_server(command, env, log, port, up_path="/getFiles") as base:
        yield base


@pytest.mark.slow
def test_under_gunicorn_a_closed_page_frees_the_only_thread_for_the_next_login(
    gunicorn, platform, user
):
    _, key = ApiToken.objects.issue(user)
    bearer = {"Authorization": f"Bearer {key}"}
    query = {"type": "3", "id": "alice_dy"}
    first = EventStream(gunicorn, "/login", query, headers=bearer)
    assert first.header("X-Accel-Buffering") == "no"
    read_qr_code(first.messages())
    first.close()
    login_area_of(platform).apply({"confirm_after_ms": 500})
    started = time.monotonic()

    second = EventStream(gunicorn, "/login", query, headers=bearer, timeout=30)
    try:
        messages = second.messages()
        read_qr_code(messages)
        assert next(messages) == "200"
    finally:
        second.close()

    assert time.monotonic() - started < 15  # far under the first login's 60 s deadline
    assert [login["status"] for login in platform_logins(platform)] == ["cancelled", "confirmed"]
    assert PlatformAccount.objects.get().owner == user


def test_two_logins_of_one_new_account_confirmed_together_make_one_account(
    live_server, login_settings, platform, browser_cookie, user
):
    streams = [open_stream(live_server, 3, "alice_dy", Cookie=browser_cookie) for _ in range(2)]
    try:
        readers = [stream.messages() for stream in streams]
        for messages in readers:
            read_qr_code(messages)
        for login in platform_logins(platform):
            answer(platform, "confirm", login_id=login["login_id"])

        assert [next(messages) for messages in readers] == ["200", "200"]
    finally:
        for stream in streams:
            stream.close()
    account = PlatformAccount.objects.get()
    assert (account.owner, account.account_name, account.login_status) == (
        user,
        "alice_dy",
        LoginStatus.VALID,
    )


# --- under ASGI, as run_service serves it now ------------------------------------------------


@pytest.mark.slow
def test_under_asgi_the_qr_code_arrives_before_the_login_ends(
    transactional_db, platform, user, tmp_path
):
    """Django would read a blocking stream whole before sending any of it under ASGI; the
    login stream sends its QR code at once and ``200`` when the platform confirms."""
    env = {
        "PUBLISHING_BASE_URL": platform.url,
        "PUBLISHING_TOKEN": "sandbox-token",
        "PUBLISHING_LOGIN_POLL_SECONDS": "0.2",
        "PUBLISHING_LOGIN_TIMEOUT_SECONDS": "60",
    }
    _, key = ApiToken.objects.issue(user)
    with asgi_server(tmp_path, env=env) as server:
        stream = EventStream(
            server,
            "/login",
            {"type": "3", "id": "alice_dy"},
            headers={"Authorization": f"Bearer {key}"},
        )
        try:
            messages = stream.messages()
            read_qr_code(messages)  # while the login still waits for a scan
            [login] = platform_logins(platform)
            answer(platform, "confirm", login_id=login["login_id"])
            assert next(messages) == "200"
        finally:
            stream.close()
    assert PlatformAccount.objects.get().owner == user
