"""Everything the service writes under its var directory is its own user's alone: files 0600,
directories 0700, the SQLite database's -wal and -shm files included."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT

# Writes what a running service writes (a user, a token, encrypted credentials, an uploaded
# video), then lists every path under the var directory with its mode while the database
# connection is still open, so SQLite's -wal and -shm files are there to be seen.
WRITER = """
import json, os, stat
from pathlib import Path
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from publishing.media import store_upload
from publishing.models import PlatformAccount
from taskcenter.models.tokens import ApiToken

owner = get_user_model().objects.create_user("owner", password="owner-pass-123")
ApiToken.objects.issue(owner)
PlatformAccount.objects.create(owner=owner, platform_type=3, account_name="a",
                               credentials={"cookie": "secret"})
video = b"\\x00\\x00\\x00\\x18ftypmp42\\x00\\x00\\x00\\x00mp42isom" + b"x" * 64
store_upload(owner, SimpleUploadedFile("clip.mp4", video, content_type="video/mp4"))
root = Path(settings.VAR_DIR)
modes = {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}
modes["."] = stat.S_IMODE(root.stat().st_mode)
print("MODES", json.dumps(modes))
"""


def manage(var_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.pop("SECRET_KEY", None)
    env.pop("TASKCENTER_CREDENTIALS_KEYS", None)
    env.update(DJANGO_SETTINGS_MODULE="taskcenter.settings", TASKCENTER_VAR_DIR=str(var_dir))
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def modes_under(root: Path) -> dict[str, int]:
    modes = {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}
    modes["."] = stat.S_IMODE(root.stat().st_mode)
    return modes


@pytest.mark.slow
def test_the_database_its_wal_keys_and_uploads_are_private(tmp_path):
    var_dir = tmp_path / "var"
    var_dir.mkdir(mode=0o755)
    var_dir.chmod(0o755)  # as an older version, or a careless operator, left it

    manage(var_dir, "migrate", "--noinput", "--verbosity", "0")
    manage(var_dir, "ensure_admin")
    written = manage(var_dir, "shell", "-c", WRITER)

    while_open = json.loads(written.stdout.split("MODES", 1)[1])
    after = modes_under(var_dir)
    for modes in (while_open, after):
        for name, mode in modes.items():
            is_dir = name == "." or (var_dir / name).is_dir()
            assert mode == (0o700 if is_dir else 0o600), f"{name}: {oct(mode)}"
    assert {
        "taskcenter.sqlite3",
        "taskcenter.sqlite3-wal",
        "taskcenter.sqlite3-shm",
        "secret_key",
        "credentials_key",
        "admin_password",
        "videos",
    } <= set(while_open)
    assert any(name.startswith("videos/") and name.endswith("clip.mp4") for name in after)
