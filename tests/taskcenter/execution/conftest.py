"""Fixtures of the RQ engine's tests: a Redis the tests may flush (``TEST_REDIS_URL``)."""

from __future__ import annotations

import os

import pytest

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


@pytest.fixture
def redis():
    from redis import Redis

    connection = Redis.from_url(REDIS_URL)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture
def rq_engine(settings, redis):
    """This process dispatches to RQ; ``start`` runs a worker process on RQ."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    settings.RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": -1}}
    return redis


@pytest.fixture
def start_rq_worker(start_worker):
    def start(*args: str, env: dict[str, str] | None = None):
        return start_worker(
            *args, env={"TASKS_BACKEND": "rq", "REDIS_URL": REDIS_URL, **(env or {})}
        )

    return start
