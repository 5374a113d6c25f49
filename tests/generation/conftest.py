"""Fixtures of the new-api task center tests: alice, bob and an administrator as new-api's
clients authenticate (Bearer token and ``New-Api-User``), and a server time zone in which it is
now afternoon."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from quota import ledger as quota
from tests.support.clients import new_api_client


@pytest.fixture
def alice(user) -> APIClient:
    quota.grant(user.pk, 1000)
    return new_api_client(user)


@pytest.fixture
def bob(other_user) -> APIClient:
    quota.grant(other_user.pk, 1000)
    return new_api_client(other_user)


@pytest.fixture
def admin(staff_user) -> APIClient:
    return new_api_client(staff_user)


@pytest.fixture
def afternoon(settings) -> str:
    """Set ``TIME_ZONE`` to a whole-hour zone in which it is now 14:xx, so that every test run
    has hours of today behind it and none of the day's buckets lies in the future by surprise.
    Returns the zone's name."""
    offset = (14 - datetime.now(UTC).hour + 12) % 24 - 12  # hours east of UTC, -12..11
    # POSIX signs: Etc/GMT-3 is three hours east of UTC.
    zone = f"Etc/GMT{-offset:+d}" if offset else "UTC"
    settings.TIME_ZONE = zone
    return zone
