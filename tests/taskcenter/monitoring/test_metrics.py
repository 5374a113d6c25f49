"""``/metrics``: what it says equals the database, requests are counted by route, and only
allowed addresses or the bearer token may read it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Count
from django.test import Client
from django.utils import timezone

from taskcenter import lifecycle
from taskcenter.execution import runner, worker_registry
from taskcenter.models import ExecutionStatus, Status, Task, TaskExecution, WorkerEngine
from tests.support.lifecycle import WORKER, later, task_in
from tests.support.metrics import samples, series, value

pytestmark = pytest.mark.django_db


def scrape(client: Client | None = None, **extra: str) -> dict[tuple[str, frozenset], float]:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def test_task_counts_by_status_and_kind_equal_the_tasks_table(make_task):
    for status in (Status.PENDING, Status.QUEUED, Status.CANCELLED, Status.STOPPED):
        task_in(status, make_task)
    task_in(Status.QUEUED, make_task)
    for status in (Status.COMPLETED, Status.FAILED, Status.RUNNING):
        task_in(status, make_task, task_type="noop")
    task_in(Status.PENDING, make_task, task_type="noop")

    scraped = scrape()

    in_table = {
        (row["status"], row["task_type"]): row["n"]
        for row in Task.objects.values("status", "task_type").annotate(n=Count("id"))
    }
    assert len(in_table) == 8
    reported = {
        (dict(labels)["status"], dict(labels)["kind"]): n
        for labels, n in series(scraped, "taskcenter_tasks").items()
        if n
    }
    assert reported == in_table
    # Every status of a kind is a series, zeros included, so none vanishes when it empties.
    assert value(scraped, "taskcenter_tasks", status="CANCELLED", kind="noop") == 0
    assert len(series(scraped, "taskcenter_tasks")) == 2 * len(Status.values)
    assert value(scraped, "taskcenter_metrics_database_up") == 1


def test_queue_depth_counts_due_queued_tasks_and_ages_the_longest_waiting(make_task):
    now = timezone.now()
    waiting = [task_in(Status.QUEUED, make_task) for _ in range(3)]
    # Queued ten minutes ago; and one whose back-off has not run out, which is not due yet.
    Task.objects.filter(pk=waiting[0].pk).update(updated_at=now - timedelta(minutes=10))
    Task.objects.filter(pk=waiting[1].pk).update(run_after=now + timedelta(hours=1))
    task_in(Status.QUEUED, make_task, task_type="noop")
    task_in(Status.PENDING, make_task, task_type="noop")
    scheduled = task_in(Status.QUEUED, make_task, task_type="demo.flaky")
    Task.objects.filter(pk=scheduled.pk).update(run_after=now + timedelta(minutes=5))

    scraped = scrape()

    assert value(scraped, "taskcenter_queue_depth", kind="demo.noop") == 2
    assert value(scraped, "taskcenter_queue_depth", kind="noop") == 1
    age = value(scraped, "taskcenter_queue_oldest_age_seconds", kind="demo.noop")
    assert 600 <= age < 600 + 60
    assert value(scraped, "taskcenter_queue_oldest_age_seconds", kind="noop") < 60
    # A kind with nothing due reports 0 rather than dropping out.
    flaky = frozenset({("kind", "demo.flaky")})
    assert series(scraped, "taskcenter_queue_depth")[flaky] == 0
    assert series(scraped, "taskcenter_queue_oldest_age_seconds")[flaky] == 0
    # The tasks gauge still counts the scheduled one: depth is what workers could take now.
    assert value(scraped, "taskcenter_tasks", status="QUEUED", kind="demo.noop") == 3


def test_lost_attempts_count_the_executions_the_reaper_found_lost(make_task):
    for _ in range(2):
        task = task_in(Status.QUEUED, make_task)
        lifecycle.claim_attempt(task.pk, worker_id=WORKER)
    lifecycle.reap_lost_attempts(now=later())

    scraped = scrape()

    assert TaskExecution.objects.filter(status=ExecutionStatus.LOST).count() == 2
    assert value(scraped, "taskcenter_lost_attempts") == 2


def test_workers_alive_are_the_registrys_beating_rows():
    assert value(scrape(), "taskcenter_workers_alive") == 0
    registration = worker_registry.register(
        name="metrics-test", engine=WorkerEngine.DATABASE, queues=("default",), concurrency=2
    )
    try:
        assert value(scrape(), "taskcenter_workers_alive") == 1
    finally:
        registration.stop()
    assert value(scrape(), "taskcenter_workers_alive") == 0


def test_an_attempt_run_here_is_observed_by_kind_and_outcome(make_task):
    before = scrape()
    completed = task_in(Status.QUEUED, make_task)
    failed = task_in(
        Status.QUEUED, make_task, task_type="demo.flaky", parameters={"permanent": True}
    )

    assert runner.run_attempt(completed.pk, worker_id=WORKER) == "completed"
    assert runner.run_attempt(failed.pk, worker_id=WORKER) == "failed"

    after = scrape()
    name = "taskcenter_attempt_duration_seconds_count"
    for kind, outcome in (("demo.noop", "completed"), ("demo.flaky", "failed")):
        labels = {"kind": kind, "outcome": outcome}
        assert value(after, name, **labels) == value(before, name, **labels) + 1
        assert value(
            after, "taskcenter_attempt_duration_seconds_bucket", le="+Inf", **labels
        ) == value(after, name, **labels)


def test_a_request_is_counted_under_its_route_pattern_not_its_path(api, make_task):
    task = make_task()
    name = "taskcenter_http_requests_total"
    labels = {"method": "GET", "route": "/api/v1/tasks/<pk>", "status": "200"}
    before = scrape()

    assert api.get(f"/api/v1/tasks/{task.pk}").status_code == 200
    assert api.get("/no/such/page/12345").status_code == 404

    after = scrape()
    assert value(after, name, **labels) == value(before, name, **labels) + 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, name, **unmatched) == value(before, name, **unmatched) + 1
    assert not any("12345" in dict(labels)["route"] for labels in series(after, name))
    latency = "taskcenter_http_request_duration_seconds_count"
    route = {"method": "GET", "route": labels["route"]}
    assert value(after, latency, **route) == value(before, latency, **route) + 1


def test_methods_outside_the_standard_ones_share_one_label():
    Client().generic("BREW", "/api/v1/tasks")
    scraped = scrape()
    methods = {
        dict(labels)["method"] for labels in series(scraped, "taskcenter_http_requests_total")
    }
    assert "BREW" not in methods
    assert "other" in methods


# --- who may read it ---------------------------------------------------------------------------


def test_loopback_reads_the_metrics_by_default_over_ipv4_and_ipv6():
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert Client(REMOTE_ADDR=address).get("/metrics").status_code == 200


def test_other_addresses_are_refused_when_no_token_is_configured(settings):
    settings.TASKCENTER_METRICS_TOKEN = ""
    response = Client(REMOTE_ADDR="10.1.2.3").get("/metrics")
    assert response.status_code == 403
    assert b"taskcenter_" not in response.content


def test_a_network_on_the_allow_list_reads_them(settings):
    settings.TASKCENTER_METRICS_ALLOW = ["10.0.0.0/8", "fd00::/8"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="fd00::7").get("/metrics").status_code == 200
    # The list replaces the default: loopback is no longer in it.
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="11.0.0.1").get("/metrics").status_code == 403


def test_a_forwarded_header_does_not_make_an_address_allowed(settings):
    client = Client(REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert client.get("/metrics").status_code == 403


def test_the_bearer_token_lets_any_address_in_and_a_wrong_one_is_401(settings):
    settings.TASKCENTER_METRICS_TOKEN = "s3cret-scrape-token"
    outside = Client(REMOTE_ADDR="10.1.2.3")

    missing = outside.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert (
        outside.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-scrape-token").status_code == 401
    )
    # A token that is presented must be right, even from an allowed address.
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401

    scraped = scrape(outside, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert value(scraped, "taskcenter_metrics_database_up") == 1


def test_an_empty_allow_list_leaves_the_token_as_the_only_way_in(settings):
    settings.TASKCENTER_METRICS_ALLOW = []
    settings.TASKCENTER_METRICS_TOKEN = "t0ken"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken").status_code == 200


def test_prometheus_may_call_the_server_by_an_address_outside_allowed_hosts(settings):
    settings.ALLOWED_HOSTS = ["taskcenter.example"]
    settings.SECURE_SSL_REDIRECT = True
    response = Client(HTTP_HOST="10.0.0.12:8000").get("/metrics")
    assert response.status_code == 200
    assert value(samples(response.content.decode()), "taskcenter_metrics_database_up") == 1
