"""The admin's "log in by QR code" page: the same platform login as ``GET /login``, started by
an operator for an owner, followed over the same event stream."""

from __future__ import annotations

import html
import os
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from publishing import admin_login
from publishing.models import LoginStatus, PlatformAccount
from sandbox.login import area_of as login_area_of
from tests.publishing.test_credentials_encryption import raw_credentials
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.login import answer, read_qr_code
from tests.support.sse import EventStream, session_cookie

PAGE = "/admin/publishing/platformaccount/qr-login/"
CHANGELIST = "/admin/publishing/platformaccount/"


def stream_url(response) -> str:
    match = re.search(r'data-stream="([^"]+)"', response.content.decode())
    assert match, response.content.decode()[-2000:]
    return html.unescape(match.group(1))


def ask(client, owner: str, platform_type: int = 3, name: str = "alice_dy"):
    return client.post(PAGE, {"owner": owner, "platform_type": platform_type, "account_name": name})


@pytest.mark.django_db
def test_the_page_asks_for_owner_platform_and_name(admin_client):
    response = admin_client.get(PAGE)

    assert response.status_code == 200
    content = response.content.decode()
    for field in ("owner", "platform_type", "account_name"):
        assert f'name="{field}"' in content
    assert "Show the QR code" in content
    assert "data-stream" not in content


@pytest.mark.django_db
def test_the_account_list_links_to_the_page(admin_client):
    response = admin_client.get(CHANGELIST)

    assert f'href="{PAGE}"' in response.content.decode()


@pytest.mark.django_db
def test_people_who_are_not_staff_are_sent_to_the_admin_login(client, user):
    client.force_login(user)

    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_staff_without_the_right_to_add_or_change_accounts_are_refused(client, db):
    viewer = get_user_model().objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_platformaccount"))
    client.force_login(viewer)

    assert client.get(PAGE).status_code == 403
    assert ask(client, "viewer").status_code == 403


@pytest.mark.django_db
def test_an_unknown_owner_is_a_form_error_and_starts_nothing(admin_client):
    response = ask(admin_client, "nobody")

    assert response.status_code == 200
    assert "No user is called nobody." in response.content.decode()
    assert "data-stream" not in response.content.decode()


@pytest.mark.django_db
def test_a_valid_form_shows_the_page_that_follows_the_stream(admin_client, user):
    response = ask(admin_client, user.username)

    url = stream_url(response)
    assert url.startswith(f"{PAGE}stream/?t=")
    assert "Logging in alice_dy on Douyin for alice." in response.content.decode()
    assert "new EventSource(box.dataset.stream)" in response.content.decode()
    assert not PlatformAccount.objects.exists()


@pytest.mark.django_db
def test_a_tampered_or_stale_ticket_is_refused(admin_client, user, monkeypatch):
    url = stream_url(ask(admin_client, user.username))

    tampered = admin_client.get(url + "x")
    monkeypatch.setattr(admin_login, "TICKET_MAX_AGE_SECONDS", -1)
    stale = admin_client.get(url)

    assert tampered.status_code == 400
    assert stale.status_code == 400
    assert not PlatformAccount.objects.exists()


@pytest.mark.django_db
def test_the_action_opens_the_page_for_exactly_one_account(admin_client, user):
    accounts = [
        PlatformAccount.objects.create(owner=user, platform_type=1, account_name=name)
        for name in ("alice xhs", "alice two")
    ]

    one = admin_client.post(
        CHANGELIST, {"action": "log_in_again", "_selected_action": [accounts[0].pk]}
    )
    both = admin_client.post(
        CHANGELIST,
        {"action": "log_in_again", "_selected_action": [a.pk for a in accounts]},
        follow=True,
    )

    assert one.status_code == 302
    assert one["Location"] == f"{PAGE}?owner=alice&platform_type=1&account_name=alice+xhs"
    prefilled = admin_client.get(one["Location"]).content.decode()
    assert 'value="alice xhs"' in prefilled
    assert "Select exactly one account to log in again." in both.content.decode()


def test_the_operators_stream_logs_the_owners_account_in_again(
    live_server, login_settings, platform, admin_client, user, settings
):
    account = PlatformAccount.objects.create(
        owner=user,
        platform_type=3,
        account_name="alice_dy",
        credentials={"cookies": "old"},
        login_status=LoginStatus.EXPIRED,
    )
    url = urlsplit(stream_url(ask(admin_client, user.username)))
    stream = EventStream(
        live_server.url,
        url.path,
        {"t": parse_qs(url.query)["t"][0]},
        headers={"Cookie": session_cookie(admin_client, settings)},
    )
    try:
        assert stream.status == 200
        messages = stream.messages()
        read_qr_code(messages)
        answer(platform, "confirm", account_name="alice_dy")
        assert next(messages) == "200"
    finally:
        stream.close()

    account.refresh_from_db()
    assert PlatformAccount.objects.count() == 1
    assert account.owner == user
    assert account.login_status == LoginStatus.VALID
    assert account.credentials["cookies"][0]["name"] == "sessionid"
    assert account.credentials["cookies"][0]["value"] not in raw_credentials(account.pk)


@pytest.mark.slow
@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is missing")
def test_an_operator_adds_an_account_by_qr_code_in_the_browser(
    live_server, login_settings, platform, staff_user, user, tmp_path
):
    sync_api = pytest.importorskip("playwright.sync_api")
    login_area_of(platform).apply({"confirm_after_ms": 1500})

    # No ORM call while Playwright's event loop runs in this thread (Django would refuse it).
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            expect = sync_api.expect
            page.goto(f"{live_server.url}/admin/login/?next={CHANGELIST}")
            page.fill("#id_username", staff_user.username)
            page.fill("#id_password", "operator-pass-123")
            page.click("#login-form [type=submit]")
            page.get_by_role("link", name="Log in by QR code").click()
            page.fill("#id_owner", user.username)
            page.select_option("#id_platform_type", label="Kuaishou")
            page.fill("#id_account_name", "alice_ks")
            page.click("#qr-login-form [type=submit]")

            image = page.locator("#qr-login-image")
            expect(image).to_be_visible()
            assert image.evaluate("img => img.naturalWidth") > 100
            expect(page.locator("#qr-login-status")).to_contain_text("Scan this code")
            page.screenshot(path=tmp_path / "admin-qr-login.png")

            expect(page.locator("#qr-login")).to_have_attribute("data-outcome", "200")
            expect(page.locator("#qr-login-status")).to_contain_text("Logged in")
            expect(image).to_be_hidden()
        finally:
            browser.close()

    account = PlatformAccount.objects.get()
    assert (account.owner, account.platform_type, account.account_name) == (user, 4, "alice_ks")
    assert account.login_status == LoginStatus.VALID
