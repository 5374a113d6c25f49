"""Fixtures of the lifecycle tests."""

from __future__ import annotations

import contextlib

import pytest

from quota import ledger as quota
from taskcenter.execution import wakeup


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    """The engine dispatches a transition registers on commit (``execute=True`` runs them).

    On SQLite a dispatch registers a callback of its own, the wake-up of idle workers
    (``wakeup.announce``); it is run with the rest but not counted as a dispatch.
    """

    @contextlib.contextmanager
    def dispatches(**kwargs):
        dispatched: list = []
        with django_capture_on_commit_callbacks(**kwargs) as callbacks:
            yield dispatched
        dispatched.extend(c for c in callbacks if c.__module__ != wakeup.__name__)

    return dispatches


@pytest.fixture
def funded(user):
    """Tasks cost quota; their owner can pay for every one, so only the quota tests meet a
    limit."""
    quota.grant(user.pk, 1_000_000, note="tests")
