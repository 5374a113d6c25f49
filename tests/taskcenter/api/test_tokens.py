"""API tokens: a key is shown once, when issued; the database holds only its digest; the admin
shows it masked; keys issued before hashing keep working after the migration."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from taskcenter.models.tokens import ApiToken
from tests.support.migrations import migrated_back_to

TASKS = "/api/v1/tasks"


def issue(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip()


def status_with(key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client.get(TASKS).status_code


def raw_token_rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM taskcenter_apitoken")
        return cursor.fetchall()


@pytest.mark.django_db
def test_issue_token_prints_a_key_once_and_the_database_keeps_only_its_digest(user):
    key = issue("alice")

    assert len(key) == 40
    assert status_with(key) == 200
    token = ApiToken.objects.get(user=user)
    assert token.digest == hashlib.sha256(key.encode()).hexdigest()
    assert token.prefix == key[:4]
    # No column of the table holds the key, or anything longer than its first four characters.
    for row in raw_token_rows():
        assert not any(isinstance(value, str) and key[:5] in value for value in row)
    # Issuing again gives a second, different key (the first cannot be shown again).
    second = issue("alice")
    assert second != key
    assert status_with(key) == 200
    assert status_with(second) == 200
    assert ApiToken.objects.filter(user=user).count() == 2


@pytest.mark.django_db
def test_issue_token_reset_revokes_the_users_earlier_tokens(user, other_user):
    old = issue("alice")
    bobs = issue("bob")

    new = issue("alice", "--reset")

    assert status_with(old) == 401
    assert status_with(new) == 200
    assert status_with(bobs) == 200
    assert ApiToken.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_the_admin_shows_tokens_masked_and_cannot_add_or_edit_them(user, staff_user):
    key = issue("alice")
    token = ApiToken.objects.get(user=user)
    admin = Client()
    admin.force_login(staff_user)

    changelist = admin.get("/admin/taskcenter/apitoken/")
    detail = admin.get(f"/admin/taskcenter/apitoken/{token.pk}/change/")

    for page in (changelist, detail):
        assert page.status_code == 200
        assert f"{key[:4]}…" in page.content.decode()
        assert key not in page.content.decode()
        assert token.digest not in page.content.decode()
    assert admin.get("/admin/taskcenter/apitoken/add/").status_code == 403
    # Revoking is deleting, which the admin allows.
    admin.post(f"/admin/taskcenter/apitoken/{token.pk}/delete/", {"post": "yes"})
    assert not ApiToken.objects.exists()
    assert status_with(key) == 401


BEFORE = [("taskcenter", "0010_shared_cache_table")]


@pytest.mark.django_db(transaction=True)
def test_keys_issued_before_hashing_keep_working_and_leave_no_plain_copy(user):
    """Upgrading: DRF's authtoken table held keys in clear; the migration moves each over as
    its digest and drops that table."""
    plain = "0123456789abcdef0123456789abcdef01234567"
    with migrated_back_to(BEFORE) as steps:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
                "created timestamp with time zone NOT NULL, user_id integer NOT NULL)"
                if connection.vendor == "postgresql"
                else "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
                "created datetime NOT NULL, user_id integer NOT NULL)"
            )
            cursor.execute(
                "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, %s, %s)",
                [plain, "2026-01-02 03:04:05+00:00", user.pk],
            )

        steps.forward()

    assert "authtoken_token" not in connection.introspection.table_names()
    token = ApiToken.objects.get()
    assert (token.user, token.prefix) == (user, "0123")
    assert token.digest == hashlib.sha256(plain.encode()).hexdigest()
    assert status_with(plain) == 200
