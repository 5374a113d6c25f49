"""An operator repairs failed tasks in a real browser: log in, filter, bulk-retry, see them queued.

Runs Debian's chromium through Playwright against pytest-django's live server, which serves the
admin's static files through the staticfiles handler, so the page is styled as in production.
"""

from __future__ import annotations

import os

import pytest

from taskcenter import lifecycle
from taskcenter.models import Status, Task
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, patient

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


def failed_task(make_task) -> Task:
    task = make_task("demo.flaky", {"permanent": True}, start=True)
    _, execution = lifecycle.claim_attempt(task.pk, worker_id="w")
    return lifecycle.fail_attempt(execution, error="Account suspended", permanent=True)


def test_operator_filters_failed_tasks_and_retries_them_from_the_browser(
    transactional_db, live_server, staff_user, make_task, tmp_path
):
    failed = [failed_task(make_task) for _ in range(3)]
    pending = make_task("demo.noop")
    queued = make_task("demo.noop", start=True)
    others = {task.pk: task.status for task in [pending, queued]}

    # No ORM call happens while Playwright's event loop runs in this thread (Django would
    # refuse it as async-unsafe); the live server answers from its own thread.
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            expect = patient(page, sync_api)

            page.goto(f"{live_server.url}/admin/")
            page.fill("#id_username", staff_user.username)
            page.fill("#id_password", "operator-pass-123")
            page.click("#login-form [type=submit]")
            expect(page.locator("#user-tools")).to_contain_text(staff_user.username)

            page.click('#content-main a[href$="/admin/taskcenter/task/"]')
            expect(page.locator("#result_list tbody tr")).to_have_count(5)

            status_filter = page.locator('#changelist-filter details[data-filter-title="status"]')
            expect(status_filter.locator("summary")).to_have_text("By status")
            status_filter.get_by_role("link", name="Failed", exact=True).click()
            rows = page.locator("#result_list tbody tr")
            expect(rows).to_have_count(3)
            expect(rows.locator("input.action-select")).to_have_count(3)
            shown = {
                int(v)
                for v in rows.locator("input.action-select").evaluate_all(
                    "boxes => boxes.map(box => box.value)"
                )
            }
            assert shown == {task.pk for task in failed}
            page.screenshot(path=tmp_path / "admin-failed-filter.png", full_page=True)

            page.check("#action-toggle")
            page.select_option("select[name=action]", label="Retry selected tasks")
            page.click("#changelist-form button[name=index]")
            expect(page.locator("ul.messagelist li.success")).to_have_text("Retried: 3 task(s).")
            expect(page.locator("ul.messagelist li.warning")).to_have_count(0)

            # Unstyled pages would still pass every check above: the admin CSS must load.
            header_colour = page.evaluate(
                "getComputedStyle(document.getElementById('header')).backgroundColor"
            )
            assert header_colour not in ("", "rgba(0, 0, 0, 0)", "transparent")
            page.screenshot(path=tmp_path / "admin-after-retry.png", full_page=True)
        finally:
            browser.close()

    for task in failed:
        task.refresh_from_db()
        assert task.status == Status.QUEUED
        assert task.events.get(verb="retried").actor_user == staff_user
    assert dict(Task.objects.filter(pk__in=others).values_list("pk", "status")) == others
