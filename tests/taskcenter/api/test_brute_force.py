"""Guessing is slowed down: wrong passwords lock a username out from an address (django-axes),
wrong bearer tokens from an address are answered 429 (the failed-token throttle)."""

from __future__ import annotations

import io

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from taskcenter.api.throttling import FailedTokenThrottle
from taskcenter.models import Task
from taskcenter.models.tokens import ApiToken

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "/admin/login/"
API_LOGIN = "/api/auth/login/"
TASKS = "/api/v1/tasks"
ATTACKER = "203.0.113.7"
NEIGHBOUR = "198.51.100.2"


def log_in(url: str, password: str, address: str = ATTACKER) -> int:
    """POST a login form as a browser from ``address``; the response status."""
    client = Client(REMOTE_ADDR=address)
    client.get(url)
    response = client.post(url, {"username": "operator", "password": password, "next": url})
    return response.status_code


@pytest.mark.parametrize("url", [ADMIN_LOGIN, API_LOGIN])
def test_wrong_passwords_lock_the_account_out_from_that_address_until_axes_reset(staff_user, url):
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 10  # the documented default

    answers = [log_in(url, "wrong") for _ in range(limit)]

    assert answers[: limit - 1] == [200] * (limit - 1)  # the form again, with an error
    assert answers[-1] == 429
    # Locked: the right password is refused too, from that address, for that username.
    assert log_in(url, "operator-pass-123") == 429
    attempt = AccessAttempt.objects.get(username="operator", ip_address=ATTACKER)
    assert attempt.failures_since_start >= limit
    # The owner, from another address, still gets in.
    assert log_in(url, "operator-pass-123", address=NEIGHBOUR) == 302

    out = io.StringIO()
    call_command("axes_reset", stdout=out)

    assert "attempts removed" in out.getvalue()
    assert not AccessAttempt.objects.exists()
    assert log_in(url, "operator-pass-123") == 302


def test_a_right_password_before_the_limit_starts_the_count_again(staff_user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(ADMIN_LOGIN, "wrong") == 200
    assert log_in(ADMIN_LOGIN, "operator-pass-123") == 302

    assert log_in(ADMIN_LOGIN, "wrong") == 200
    assert log_in(ADMIN_LOGIN, "operator-pass-123") == 302


@pytest.fixture
def five_failures_a_minute(monkeypatch):
    cache.clear()
    monkeypatch.setattr(FailedTokenThrottle, "THROTTLE_RATES", {"failed_auth": "5/min"})


def bearer(key: str, address: str) -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_wrong_tokens_from_one_address_are_answered_429_with_retry_after(
    user, other_user, five_failures_a_minute
):
    _, alice_key = ApiToken.objects.issue(user)
    _, bob_key = ApiToken.objects.issue(other_user)
    guesses = [bearer(f"{n:040x}", ATTACKER).get(TASKS) for n in range(7)]

    assert [r.status_code for r in guesses] == [401] * 5 + [429] * 2
    refused = guesses[-1]
    assert 0 < int(refused["Retry-After"]) <= 60
    assert "too many invalid tokens" in refused.json()["detail"].lower()
    # Past the limit nothing is looked up from that address, a right key included, and a
    # forged X-Forwarded-For does not make it another client.
    assert bearer(alice_key, ATTACKER).get(TASKS).status_code == 429
    forged = bearer(alice_key, ATTACKER).get(TASKS, HTTP_X_FORWARDED_FOR="10.1.2.3")
    assert forged.status_code == 429
    # Other clients are not affected: a good token works, a wrong one is a plain 401.
    assert bearer(bob_key, NEIGHBOUR).get(TASKS).status_code == 200
    assert bearer("f" * 40, NEIGHBOUR).get(TASKS).status_code == 401
    assert Task.objects.count() == 0
    assert ApiToken.objects.count() == 2


def test_good_tokens_are_not_counted_as_failures(user, five_failures_a_minute):
    _, key = ApiToken.objects.issue(user)

    answers = [bearer(key, ATTACKER).get(TASKS).status_code for _ in range(8)]

    assert answers == [200] * 8


def test_the_new_api_dialect_refuses_guessers_in_its_own_envelope(user, five_failures_a_minute):
    for n in range(5):
        response = bearer(f"{n:040x}", ATTACKER).get("/api/task/self", HTTP_NEW_API_USER="1")
        assert response.status_code == 401

    response = bearer("0" * 40, ATTACKER).get("/api/task/self", HTTP_NEW_API_USER="1")

    assert response.status_code == 429
    assert response.json()["success"] is False
    assert int(response["Retry-After"]) > 0
