"""The RQ engine's queues: every enqueue of a process shares one Redis connection pool."""

from __future__ import annotations

import django_rq

from taskcenter.settings import rq_queue


def test_enqueues_share_one_connection_pool_instead_of_connecting_each_time(settings):
    settings.RQ_QUEUES = {"default": rq_queue("redis://worker:s3cret@cache.example:6380/7")}

    first = django_rq.get_queue("default").connection
    second = django_rq.get_queue("default").connection

    assert first is not second  # django-rq builds a client per call...
    assert first.connection_pool is second.connection_pool  # ...on the one pool
    kwargs = first.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache.example", 6380, 7)
    assert (kwargs["username"], kwargs["password"]) == ("worker", "s3cret")


def test_its_own_tools_get_the_same_server_from_the_plain_settings():
    config = rq_queue("rediss://cache.example/2")
    assert (config["HOST"], config["PORT"], config["DB"], config["SSL"]) == (
        "cache.example",
        6379,
        2,
        True,
    )
    assert rq_queue("unix:///run/redis.sock?db=1") == {
        "URL": "unix:///run/redis.sock?db=1",
        "DEFAULT_TIMEOUT": -1,
    }
