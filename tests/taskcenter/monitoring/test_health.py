"""``/healthz`` and ``/readyz``: open to every caller, never redirected, and ``/readyz`` says
which dependency is missing."""

from __future__ import annotations

import os
import socket

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the with block ends


def test_healthz_answers_without_touching_the_database():
    # No database fixture: pytest-django fails any query this test makes.
    response = Client(REMOTE_ADDR="10.9.8.7").get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_probes_are_not_redirected_refused_by_host_or_asked_to_log_in(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["taskcenter.example"]
    settings.APPEND_SLASH = True
    client = Client(REMOTE_ADDR="10.9.8.7", HTTP_HOST="10.0.0.12:8000")  # a pod's IP
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz/").status_code == 200
    assert "set-cookie" not in client.get("/healthz").headers


@pytest.mark.django_db
def test_readyz_is_200_with_every_check_ok():
    response = Client(REMOTE_ADDR="10.9.8.7").get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "engine": "ok", "migrations": "ok"},
    }


@pytest.mark.django_db
def test_readyz_is_not_throttled():
    client = Client(REMOTE_ADDR="10.9.8.7")
    assert {client.get("/readyz").status_code for _ in range(30)} == {200}


@pytest.mark.django_db
def test_readyz_is_503_naming_the_migrations_when_one_is_not_applied():
    recorder = MigrationRecorder(connection)
    last = (
        recorder.migration_qs.filter(app="taskcenter")
        .order_by("-name")
        .values_list("name", flat=True)
    )[0]
    recorder.record_unapplied("taskcenter", last)  # rolled back with the test's transaction

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["migrations"]
    assert body["checks"]["database"] == "ok"
    assert f"taskcenter.{last}" in body["checks"]["migrations"]


@pytest.mark.django_db
def test_readyz_is_503_naming_the_engine_when_redis_is_unreachable(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    settings.RQ_QUEUES = {
        "default": {"URL": f"redis://127.0.0.1:{closed_port()}/0", "DEFAULT_TIMEOUT": -1}
    }

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["engine"]
    assert body["checks"]["engine"].startswith("ConnectionError")


@pytest.mark.django_db
@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL")
def test_readyz_pings_redis_when_the_rq_engine_is_configured(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    settings.RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": -1}}

    response = Client().get("/readyz")

    assert response.status_code == 200, response.content
    assert response.json()["checks"]["engine"] == "ok"


def test_probes_and_metrics_are_not_in_the_openapi_schema(db, staff_api):
    schema = staff_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = " ".join(schema["paths"])
    for endpoint in ("/healthz", "/readyz", "/metrics"):
        assert endpoint not in paths


def test_probes_take_only_get_and_head():
    assert Client().post("/healthz").status_code == 405
    assert Client().head("/healthz").status_code == 200
