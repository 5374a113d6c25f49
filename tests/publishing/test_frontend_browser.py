"""A person opens social-auto-upload's frontend served by Task Center, in a real browser: the
login page first, then the page's API calls on the session, CSRF through axios's header.

The real frontend is not fetched in CI; a stand-in of the same shape (tests/support/frontend.py)
makes the same kinds of requests. Its event stream opens ``/``, a plain GET that needs the
session, because the account login stream (``GET /login``) is not on this branch: the test reads
the stream request's status and cookie, which is what the login stream will depend on. Point the
stand-in's ``data-stream`` at ``/login?type=3&id=...`` once that endpoint exists (it must answer
an EventSource's ``Accept: text/event-stream``; DRF's content negotiation answers that 406).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from publishing.models import PlatformAccount
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, patient
from tests.support.frontend import STANDIN_BUNDLE, serve_standin

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason=f"{CHROMIUM} is missing (.ci/run installs Debian's chromium package)",
    ),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is missing (it is in requirements-dev.txt)"
)


def is_stream(response) -> bool:
    return response.request.resource_type == "eventsource"


def test_person_logs_in_and_the_served_frontend_calls_the_api_on_the_session(
    transactional_db, live_server, user, settings, tmp_path
):
    serve_standin(settings, tmp_path)
    served: dict[str, tuple[int, str]] = {}

    def record(response) -> None:
        path = urlsplit(response.url).path
        served[path] = (response.status, response.headers.get("cache-control", ""))

    # No ORM call while Playwright's event loop runs in this thread; the live server answers
    # from its own thread.
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("response", record)
            expect = patient(page, sync_api)

            # No session: the frontend's address leads to the login page, and back after it.
            page.goto(f"{live_server.url}/")
            assert urlsplit(page.url).path == "/api/auth/login/"
            page.fill("#id_username", "alice")
            page.fill("#id_password", "alice-pass-123")
            page.click("#submit-id-submit")
            page.wait_for_url(f"{live_server.url}/")

            # The page's first call (a GET through the axios-like client) carried the session.
            accounts = page.locator("#accounts")
            expect(accounts).to_have_attribute("data-status", "200")
            assert '"code":200' in accounts.text_content()
            assert served[f"/assets/{STANDIN_BUNDLE}"][0] == 200
            assert "immutable" in served[f"/assets/{STANDIN_BUNDLE}"][1]
            assert "no-store" in served["/"][1]

            # A POST with the XSRF-TOKEN cookie copied into X-XSRF-TOKEN passes CSRF ...
            page.click("#post-with-token")
            expect(page.locator("#post-with-token-result")).to_have_attribute("data-status", "200")
            # ... and so does one without the header (the upload widget sends none): the
            # browser itself says it comes from this origin (Sec-Fetch-Site: same-origin) ...
            with page.expect_request(lambda request: request.method == "POST") as untokened:
                page.click("#post-without-token")
            expect(page.locator("#post-without-token-result")).to_have_attribute(
                "data-status", "200"
            )
            assert untokened.value.all_headers().get("sec-fetch-site") == "same-origin"
            assert "x-xsrf-token" not in untokened.value.all_headers()

            # ... while a page of another site posting a form to it with her browser is refused.
            port = urlsplit(live_server.url).port
            elsewhere = f"http://127.0.0.1:{port}"  # localhost is another site to a browser
            attacker = browser.new_page()
            attacker.goto(f"{elsewhere}/api/auth/login/")
            with attacker.expect_response(lambda r: r.request.method == "POST") as planted:
                attacker.evaluate(
                    """(target) => {
                        const form = document.createElement("form");
                        form.method = "POST";
                        form.action = target;
                        for (const [name, value] of [["type", "3"], ["userName", "planted"]]) {
                            const input = document.createElement("input");
                            input.name = name;
                            input.value = value;
                            form.appendChild(input);
                        }
                        document.body.appendChild(form);
                        form.submit();
                    }""",
                    f"{live_server.url}/addAccount",
                )
            assert planted.value.status in (401, 403)

            # An EventSource cannot send headers: only the session cookie authenticates it.
            with page.expect_response(is_stream) as stream:
                page.click("#open-stream")
            assert stream.value.status == 200
            assert "sessionid=" in stream.value.request.all_headers().get("cookie", "")

            # The same stream from a browser without a session is sent to the login page.
            anonymous = browser.new_page()
            anonymous.goto(f"{live_server.url}/api/auth/login/")
            with anonymous.expect_response(is_stream) as refused_stream:
                anonymous.evaluate("() => { new EventSource('/'); }")
            assert refused_stream.value.status == 302
            assert refused_stream.value.headers["location"].startswith("/api/auth/login/")
        finally:
            browser.close()

    names = set(PlatformAccount.objects.filter(owner=user).values_list("account_name", flat=True))
    assert names == {"with-header", "without-header"}
