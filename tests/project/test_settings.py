"""Production settings: `check --deploy` with TASKCENTER_HTTPS, CORS safety, throttles on."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.support.processes import ROOT

INHERITED_SETTINGS = {"DJANGO_SETTINGS_MODULE", "SILENCED_SYSTEM_CHECKS", "TASKCENTER_DEMO_KINDS"}


def manage(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {
        # The caller's own settings (its silenced checks, its demo kinds) must not leak in.
        **{k: v for k, v in os.environ.items() if k not in INHERITED_SETTINGS},
        "DJANGO_SETTINGS_MODULE": "taskcenter.settings",
        "TASKCENTER_VAR_DIR": str(tmp_path),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        **env,
    }
    full_env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# A production configuration: every provider points at a real platform, not the sandbox.
REAL_PLATFORMS = {
    f"{area}_{key}": value
    for area in ("SCRAPING", "PUBLISHING", "GENERATION")
    for key, value in (("BASE_URL", f"https://{area.lower()}.example.net"), ("TOKEN", "live-1"))
} | {"SYNC_SOURCE_BASE_URL": "https://sync.example.net", "SYNC_SOURCE_TOKEN": "live-1"}


@pytest.mark.slow
def test_check_deploy_passes_with_https_on(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        tmp_path=tmp_path,
        TASKCENTER_HTTPS="true",
        **REAL_PLATFORMS,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_providers_left_on_the_sandbox_with_debug_off_are_warned_about(tmp_path):
    env = REAL_PLATFORMS | {"PUBLISHING_BASE_URL": "http://127.0.0.1:8900"}
    env["SYNC_SOURCE_TOKEN"] = "sandbox-token"
    deploy = ("check", "--deploy", "--fail-level", "WARNING")
    result = manage(*deploy, tmp_path=tmp_path, TASKCENTER_HTTPS="true", **env)
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert "(taskcenter.W001) PUBLISHING['BASE_URL'] is 'http://127.0.0.1:8900'" in out
    assert "(taskcenter.W002) SYNCING['TOKEN']" in out
    assert "SCRAPING" not in out
    assert "GENERATION" not in out
    # The same settings with DEBUG on (a developer's machine) say nothing.
    quiet = manage(*deploy, tmp_path=tmp_path, TASKCENTER_HTTPS="true", DEBUG="true", **env)
    assert "taskcenter.W00" not in quiet.stdout + quiet.stderr
    # Everyday commands (make run's, a developer's) do not run deployment checks.
    everyday = manage("check", "--fail-level", "WARNING", tmp_path=tmp_path, **env)
    assert everyday.returncode == 0, everyday.stdout + everyday.stderr


@pytest.mark.slow
def test_plain_http_default_does_not_redirect(tmp_path):
    # `make run` serves http://localhost: without TASKCENTER_HTTPS nothing forces HTTPS.
    result = manage("diffsettings", "--all", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SECURE_SSL_REDIRECT = False" in result.stdout
    assert "SESSION_COOKIE_SECURE = False" in result.stdout


def test_cors_credentials_with_allow_all_is_refused(tmp_path):
    result = manage(
        "check", tmp_path=tmp_path, CORS_ALLOW_ALL_ORIGINS="true", CORS_ALLOW_CREDENTIALS="true"
    )
    assert result.returncode != 0
    assert "CORS_ALLOW_CREDENTIALS" in result.stderr


def test_throttles_are_on_by_default():
    classes = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]
    assert "rest_framework.throttling.UserRateThrottle" in classes
    assert "rest_framework.throttling.AnonRateThrottle" in classes


@pytest.mark.slow
@pytest.mark.parametrize("name", ["anon", "user", "failed_auth"])
def test_throttle_rates_come_from_the_environment(tmp_path, name):
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings;"
        f"print(settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['{name}'])",
        tmp_path=tmp_path,
        **{f"THROTTLE_{name.upper()}_RATE": "7/hour"},
    )
    assert result.stdout.strip().endswith("7/hour"), result.stdout + result.stderr
