"""The data sync service's curl examples in docs/api/data-sync.md, pasted into a shell against a
live server."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from taskcenter.models import Status, Task
from taskcenter.models.tokens import ApiToken
from tests.support.processes import ROOT

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
PAGE = ROOT / "docs" / "api" / "data-sync.md"


def documented_block(section: str) -> str:
    """The first shell block under the page's heading ``section``."""
    text = PAGE.read_text().split(f"\n## {section}\n", 1)[1]
    return text.split("```sh\n", 1)[1].split("```", 1)[0]


def json_documents(output: str) -> list[dict]:
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(output):
        document, at = decoder.raw_decode(output, at)
        documents.append(document)
        while at < len(output) and output[at].isspace():
            at += 1
    return documents


def run(script: str) -> list[dict]:
    done = subprocess.run(
        ["bash", "-euc", script], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return json_documents(done.stdout)


def test_the_data_sync_services_three_examples_work_pasted_with_a_token(live_server, user):
    token = ApiToken.objects.issue(user)[1]
    create, listing, cancel = [
        line_group
        for line_group in documented_block("The service's examples").split("\ncurl")
        if not line_group.startswith("TOKEN=")
    ]
    prefix = f"TOKEN={token}\n"

    def paste(command: str) -> str:
        return prefix + "curl -s" + command.replace("http://localhost:8080", live_server.url)

    created = run(paste(create))[0]
    task_id = created["data"]["id"]
    pk = int(task_id.removeprefix("task_"))
    listed = run(paste(listing))[0]
    cancelled = run(paste(cancel.replace("task_123", task_id)))[0]

    assert created["success"] is True
    assert created["data"]["parameters"] == {"batch_size": 1000, "timeout": 300.0}
    assert listed["data"]["pagination"]["size"] == 10
    assert listed["data"]["tasks"] == []  # nothing is running: no worker in this test
    assert cancelled["data"]["status"] == "cancelled"
    assert Task.objects.get(pk=pk).status == Status.CANCELLED
