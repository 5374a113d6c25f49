"""Fixtures of the new-api task center tests: alice, bob and an administrator as new-api's
clients authenticate (Bearer token and ``New-Api-User``)."""

from __future__ import annotations

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
