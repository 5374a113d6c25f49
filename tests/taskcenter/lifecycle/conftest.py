"""Fixtures of the lifecycle tests."""

from __future__ import annotations

import pytest

from quota import ledger as quota


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    """The on-commit callbacks a transition registers (``execute=True`` runs them)."""
    return django_capture_on_commit_callbacks


@pytest.fixture
def funded(user):
    """Tasks cost quota; their owner can pay for every one, so only the quota tests meet a
    limit."""
    quota.grant(user.pk, 1_000_000, note="tests")
