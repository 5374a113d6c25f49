"""API clients authenticated with real Bearer tokens, as each dialect's clients send them."""

from __future__ import annotations

from rest_framework.test import APIClient

from taskcenter.models.tokens import ApiToken


def token_client(user) -> APIClient:
    """A client sending a Bearer token freshly issued to ``user``."""
    client = APIClient()
    _, key = ApiToken.objects.issue(user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.user = user
    return client


def new_api_client(user) -> APIClient:
    """A client sending what new-api's task center clients send: the Bearer token and the
    caller's id in New-Api-User (the other dialects ignore the header)."""
    client = token_client(user)
    client.credentials(
        HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"],
        HTTP_NEW_API_USER=str(user.pk),
    )
    return client
