"""The login stream's example in docs/api/social-auto-upload.md, pasted into a shell against a
live server and the sandbox platform."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from publishing.models import LoginStatus, PlatformAccount
from taskcenter.models.tokens import ApiToken
from tests.support.processes import ROOT

pytestmark = [
    pytest.mark.slow,  # the stream stays open five seconds after "200", as the page wants
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]
PAGE = ROOT / "docs" / "api" / "social-auto-upload.md"


def documented_block(section: str) -> str:
    """The first shell block under the page's heading ``section``."""
    text = PAGE.read_text().split(f"\n## {section}\n", 1)[1]
    return text.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_login_streams_example_works_pasted(
    live_server, login_settings, platform, user, tmp_path
):
    script = documented_block("Adding an account: the login stream")
    token_line = "TOKEN=$(.venv/bin/python manage.py issue_token admin)\n"
    assert script.startswith(token_line)
    script = f"TOKEN={ApiToken.objects.issue(user)[1]}\n" + script.removeprefix(token_line)
    script = script.replace("TC=http://127.0.0.1:8000", f"TC={live_server.url}")
    script = script.replace("SANDBOX=http://127.0.0.1:8900", f"SANDBOX={platform.url}")

    done = subprocess.run(
        ["bash", "-euc", script], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr
    stream = (tmp_path / "login.txt").read_text().splitlines()
    assert stream[0] == ": login started"
    assert stream[2].startswith("data: data:image/png;base64,iVBORw0KGgo")
    assert ": waiting" in stream
    assert "data: 200" in stream
    assert '"my-douyin"' in done.stdout  # /getAccounts lists it
    account = PlatformAccount.objects.get(owner=user, account_name="my-douyin")
    assert account.platform_type == 3
    assert account.login_status == LoginStatus.VALID
