"""API test fixtures: clients authenticated with real Bearer tokens. Import into test modules."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from taskcenter.models.tokens import ApiToken


def token_client(user) -> APIClient:
    client = APIClient()
    _, key = ApiToken.objects.issue(user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.user = user
    return client


@pytest.fixture
def api(user) -> APIClient:
    """``alice``'s client."""
    return token_client(user)


@pytest.fixture
def other_api(other_user) -> APIClient:
    """``bob``'s client."""
    return token_client(other_user)


@pytest.fixture
def staff_api(staff_user) -> APIClient:
    return token_client(staff_user)


@pytest.fixture
def anon_api(db) -> APIClient:
    return APIClient()
