"""``http.request`` performs real HTTP against a local server, bounded and SSRF-guarded."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from taskcenter.errors import PermanentError
from taskcenter.execution.runner import run_attempt
from taskcenter.kinds import get_kind
from taskcenter.kinds.builtin.http import check_destination
from taskcenter.models import ExecutionStatus, Status
from tests.support.http_server import TestHTTPServer


@pytest.fixture
def server():
    with TestHTTPServer() as running:
        yield running


@pytest.fixture
def allow_private(settings):
    settings.TASKCENTER = {**settings.TASKCENTER, "HTTP_ALLOW_PRIVATE_ADDRESSES": True}


def run_request(make_task, **parameters):
    task = make_task("http.request", parameters, start=True)
    run_attempt(task.pk, worker_id="test")
    task.refresh_from_db()
    return task


@pytest.mark.usefixtures("allow_private")
class TestRequests:
    def test_get_records_status_headers_and_body(self, make_task, server):
        task = run_request(make_task, url=f"{server.url}/ok")

        assert task.status == Status.COMPLETED
        assert task.result["status_code"] == 200
        assert task.result["headers"]["X-Test"] == "yes"
        assert task.result["body"] == '{"hello": "world"}'
        assert task.result["body_truncated"] is False
        assert task.executions.get().status == ExecutionStatus.COMPLETED

    def test_body_is_cut_at_the_configured_limit(self, make_task, server, settings):
        settings.TASKCENTER = {**settings.TASKCENTER, "HTTP_MAX_BODY_BYTES": 1000}

        task = run_request(make_task, url=f"{server.url}/big?bytes=50000")

        assert task.result["body_bytes"] == 1000
        assert task.result["body_truncated"] is True

    def test_post_sends_json_and_headers(self, make_task, server):
        task = run_request(
            make_task,
            url=f"{server.url}/echo",
            method="POST",
            json={"a": 1},
            headers={"X-Api-Key": "k"},
        )

        echoed = json.loads(task.result["body"])
        assert echoed["method"] == "POST"
        assert echoed["body"] == '{"a": 1}'
        assert echoed["headers"]["X-Api-Key"] == "k"

    def test_redirects_are_followed_to_the_final_url(self, make_task, server):
        task = run_request(make_task, url=f"{server.url}/redirect?to=/ok")

        assert task.result["url"] == f"{server.url}/ok"
        assert task.result["status_code"] == 200

    def test_client_error_fails_permanently(self, make_task, server):
        task = run_request(make_task, url=f"{server.url}/status/404")

        assert task.status == Status.FAILED
        assert "HTTP 404" in task.error_message
        assert task.executions.count() == 1

    def test_server_error_is_retried_after_retry_after(self, make_task, server):
        before = timezone.now()
        task = run_request(make_task, url=f"{server.url}/status/503?retry_after=7")

        assert task.status == Status.QUEUED
        assert "HTTP 503" in task.error_message
        assert task.run_after >= before + timedelta(seconds=7)
        assert task.events.get(verb="requeued").data["retry_in"] == 7

    def test_timeout_is_retryable(self, make_task, server):
        task = run_request(make_task, url=f"{server.url}/slow?s=2", timeout=0.3)

        assert task.status == Status.QUEUED
        assert task.error_message.startswith("Timed out after 0.3 s")

    def test_status_can_be_recorded_instead_of_failing(self, make_task, server):
        task = run_request(make_task, url=f"{server.url}/status/500", fail_on_status=False)

        assert task.status == Status.COMPLETED
        assert task.result["status_code"] == 500


def test_loopback_target_is_refused_without_a_request(make_task, server):
    task = run_request(make_task, url=f"{server.url}/ok")

    assert task.status == Status.FAILED
    assert "loopback" in task.error_message
    assert "TASKCENTER_HTTP_ALLOW_PRIVATE" in task.error_message
    assert server.hits == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://localhost:8000/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://192.168.0.10/", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
    ],
)
def test_internal_destinations_are_refused(url, reason):
    with pytest.raises(PermanentError, match=reason):
        check_destination(url)


def test_public_destination_passes_the_guard_and_is_the_address_pinned():
    # A literal address: getaddrinfo answers it without DNS, and nothing connects.
    target, address = check_destination("http://93.184.216.34:8080/")

    assert (target.host, target.port, address) == ("93.184.216.34", 8080, "93.184.216.34")


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"url": "ftp://example.com/file"}, "url"),
        ({"url": "not a url"}, "url"),
        ({}, "url"),
        ({"url": "http://example.com", "timeout": 100_000}, "timeout"),
        ({"url": "http://example.com", "method": "BREW"}, "method"),
        ({"url": "http://example.com", "body": "x", "json": {"a": 1}}, "json"),
    ],
)
def test_bad_parameters_name_the_field(parameters, field):
    with pytest.raises(ValidationError) as raised:
        get_kind("http.request").validate_parameters(parameters)
    assert field in raised.value.detail["parameters"]
