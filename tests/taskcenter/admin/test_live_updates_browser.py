"""The console updates in place: a real worker runs a task while chromium shows its page, the
task list and the dashboard, served as ``run_service`` serves them (gunicorn, uvicorn, ASGI);
the progress bar, the status badge and the counts change without a reload.
"""

from __future__ import annotations

import os
import re

import pytest

from taskcenter.models import Status, Task
from tests.support.asgi_server import asgi_server
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


def test_task_page_list_and_dashboard_follow_a_running_task_without_reloading(
    transactional_db, staff_user, make_task, start_worker, tmp_path
):
    task = make_task(
        "demo.countdown", {"seconds": 4, "interval": 1.0}, start=True, owner=staff_user
    )
    assert (task.status, task.progress) == (Status.QUEUED, 0)

    # No ORM call happens while Playwright's event loop runs in this thread (Django would
    # refuse it as async-unsafe): the worker and the server are processes of their own.
    with (
        asgi_server(tmp_path, static=True) as server,
        sync_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            expect = patient(page, sync_api)
            page.goto(f"{server}/admin/")
            page.fill("#id_username", staff_user.username)
            page.fill("#id_password", "operator-pass-123")
            page.click("#login-form [type=submit]")
            expect(page.locator("#user-tools")).to_contain_text(staff_user.username)

            pages = {}
            for name, path in [
                ("task", f"/admin/taskcenter/task/{task.pk}/change/"),
                ("list", "/admin/taskcenter/task/"),
                ("dashboard", "/admin/taskcenter/task/dashboard/"),
            ]:
                opened = page if name == "task" else context.new_page()
                patient(opened, sync_api)
                opened.goto(f"{server}{path}")
                # A mark that a reload would wipe out.
                opened.evaluate("window.notReloaded = true")
                pages[name] = opened
            for opened in pages.values():
                expect(opened.locator("html[data-live=open]")).to_have_count(1)
            completed = pages["dashboard"].locator('[data-status-count="COMPLETED"]')
            expect(completed).to_have_text("0")
            bar = pages["task"].locator(f'[data-task-progress="{task.pk}"] [data-progress-bar]')
            expect(bar).to_have_text("0%")

            start_worker("--concurrency", "1")

            # Progress the worker reports on its way (25%, 50%, 75%), then the end.
            expect(bar).to_have_text(re.compile(r"^(25|50|75)%$"))
            pages["task"].screenshot(path=tmp_path / "task-progress.png", full_page=True)
            for name in ("task", "list"):
                opened = pages[name]
                expect(opened.locator(f'[data-task-status="{task.pk}"]')).to_have_text("Completed")
                expect(
                    opened.locator(f'[data-task-progress="{task.pk}"] [data-progress-bar]')
                ).to_have_text("100%")
            expect(completed).to_have_text("1")
            for opened in pages.values():
                assert opened.evaluate("window.notReloaded") is True
        finally:
            browser.close()

    assert Task.objects.get(pk=task.pk).status == Status.COMPLETED
