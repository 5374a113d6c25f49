"""Swagger UI (/api/docs/) and ReDoc (/api/redoc/) work without internet access: their pages
load only the project's own static files (drf-spectacular-sidecar), which the service serves.
"""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, patient

DOC_PAGES = ["/api/docs/", "/api/redoc/"]
# ReDoc's bundle always asks for its vendor's logo in the sidebar footer and hides the image
# when that fails: decoration, not content, so the one request allowed to fail offline.
REDOC_FOOTER_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


class _Links(HTMLParser):
    """Every src/href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def linked_urls(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Path:
    """STATIC_ROOT after collectstatic, once for the module (it copies thousands of files)."""
    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root


@pytest.fixture
def collected_static(settings, static_root, db) -> Client:
    """A client of the service as ``run_service`` serves it: collectstatic, then whitenoise
    serving STATIC_ROOT (DEBUG off, no staticfiles finders). The database is for the rate
    limits: the docs views count their anonymous clients in the shared database cache."""
    settings.STATIC_ROOT = static_root
    return Client()  # a new handler: whitenoise reads STATIC_ROOT when it is built


@pytest.mark.parametrize("page", DOC_PAGES)
def test_docs_page_loads_only_local_static_files_and_they_are_served(collected_static, page):
    response = collected_static.get(page)

    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}", html), "an external URL"
    assets = [url for url in linked_urls(html) if urlsplit(url).path.endswith((".js", ".css"))]
    assert assets
    for url in assets:
        assert url.startswith("/static/drf_spectacular_sidecar/"), url
        asset = collected_static.get(url)
        assert asset.status_code == 200, url
        assert len(b"".join(asset.streaming_content)) > 10_000, url


@pytest.mark.slow
@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is missing")
def test_swagger_ui_and_redoc_render_the_operations_with_no_internet(live_server):
    sync_api = pytest.importorskip("playwright.sync_api")
    server = urlsplit(live_server.url).netloc
    outside: list[str] = []

    def only_the_service(route) -> None:
        # Anything not addressed to the service is what a machine without internet would lose.
        if urlsplit(route.request.url).netloc == server:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.route("**/*", only_the_service)
            expect = patient(page, sync_api)

            page.goto(f"{live_server.url}/api/docs/")
            operations = page.locator(".opblock-summary-path")
            expect(operations.first).to_be_visible()
            paths = set(operations.all_text_contents())
            assert "/api/v1/tasks" in {p.replace("\u200b", "") for p in paths}

            page.goto(f"{live_server.url}/api/redoc/")
            expect(page.locator("h1").first).to_have_text(re.compile("Task Center API"))
            expect(page.get_by_text("/api/v1/tasks", exact=False).first).to_be_attached()
        finally:
            browser.close()

    assert set(outside) <= {REDOC_FOOTER_LOGO}
