"""Platform credentials are encrypted at rest: the column holds a Fernet token, the model reads
the JSON back, keys rotate with rotate_credentials, and a wrong or malformed key says so."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from publishing.models import PlatformAccount
from taskcenter.lib.encryption import UndecryptableSecret
from tests.support.migrations import migrated_back_to
from tests.support.processes import ROOT

SECRET = {"cookie": "sessionid=very-secret-cookie", "user_agent": "UA"}


def raw_credentials(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM publishing_platformaccount WHERE id = %s", [pk])
        return cursor.fetchone()[0]


@pytest.fixture
def account(user) -> PlatformAccount:
    return PlatformAccount.objects.create(
        owner=user, platform_type=3, account_name="alice_dy", credentials=SECRET
    )


@pytest.mark.django_db
def test_the_column_holds_ciphertext_and_the_model_reads_the_json_back(account, settings):
    raw = raw_credentials(account.pk)

    assert "very-secret-cookie" not in raw
    assert "cookie" not in raw
    assert json.loads(Fernet(settings.CREDENTIALS_KEYS[0]).decrypt(raw.encode())) == SECRET
    assert PlatformAccount.objects.get(pk=account.pk).credentials == SECRET


@pytest.mark.django_db
def test_rotation_re_encrypts_with_the_new_key_so_the_old_one_can_go(account, settings):
    old = settings.CREDENTIALS_KEYS[0]
    new = Fernet.generate_key().decode()

    with override_settings(CREDENTIALS_KEYS=[new, old]):
        out = io.StringIO()
        call_command("rotate_credentials", stdout=out)
    assert "publishing.PlatformAccount.credentials: 1 re-encrypted" in out.getvalue()

    raw = raw_credentials(account.pk)
    assert json.loads(Fernet(new).decrypt(raw.encode())) == SECRET
    with override_settings(CREDENTIALS_KEYS=[new]):
        assert PlatformAccount.objects.get(pk=account.pk).credentials == SECRET
    with override_settings(CREDENTIALS_KEYS=[old]), pytest.raises(UndecryptableSecret):
        PlatformAccount.objects.get(pk=account.pk)


@pytest.mark.django_db
def test_a_wrong_key_is_a_clear_error_naming_the_setting(account):
    other = Fernet.generate_key().decode()

    with override_settings(CREDENTIALS_KEYS=[other]):
        with pytest.raises(UndecryptableSecret, match="TASKCENTER_CREDENTIALS_KEYS"):
            PlatformAccount.objects.get(pk=account.pk)
        with pytest.raises(CommandError, match="cannot be decrypted"):
            call_command("rotate_credentials", stdout=io.StringIO())

    assert PlatformAccount.objects.get(pk=account.pk).credentials == SECRET  # nothing changed


@pytest.mark.slow
def test_a_malformed_key_fails_the_system_check_but_not_start_up(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="taskcenter.settings",
        TASKCENTER_VAR_DIR=str(tmp_path),
        TASKCENTER_CREDENTIALS_KEYS=f"{Fernet.generate_key().decode()},not-a-key",
    )

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    check = manage("check")
    shell = manage("shell", "-c", "print('imported fine')")

    assert check.returncode != 0
    assert "TASKCENTER_CREDENTIALS_KEYS: key 2 of 2 is not a Fernet key" in check.stderr
    assert "imported fine" in shell.stdout, shell.stderr


BEFORE = [("publishing", "0001_initial")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_rows_and_back(user, settings):
    with migrated_back_to(BEFORE) as steps:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO publishing_platformaccount (owner_id, platform_type, name,"
                " account_name, credentials, login_status, created_at)"
                " VALUES (%s, 3, '', 'old', %s, 1, %s)",
                [user.pk, json.dumps(SECRET), "2026-01-02 03:04:05+00:00"],
            )
            cursor.execute("SELECT id FROM publishing_platformaccount")
            pk = cursor.fetchone()[0]

        steps.forward()
        assert "very-secret-cookie" not in raw_credentials(pk)
        assert PlatformAccount.objects.get(pk=pk).credentials == SECRET

        steps.back()
        assert json.loads(raw_credentials(pk)) == SECRET
    assert PlatformAccount.objects.get(pk=pk).credentials == SECRET
