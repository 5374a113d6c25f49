"""The OpenAPI schema tells the truth: schemathesis with every check against a live server.

Every operation of ``/api/schema/`` is called with generated requests, as a user who owns tasks
in several states (so lists, details and executions answer real rows). The run is bounded in
examples and seeded, so it takes the same requests every time; ``schemathesis.toml`` beside it
names the few (operation, check) pairs that a schema cannot express, each with its reason.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from taskcenter import lifecycle
from taskcenter.models import EventVerb, Status, Task, TaskExecution
from taskcenter.models.tokens import ApiToken

pytestmark = [
    pytest.mark.slow,
    # The schema and the answers it describes do not depend on the database (the fuzz test
    # covers database-specific input on both), and the run takes minutes: it runs once, in the
    # SQLite suite, so that CI's two suites stay inside its time limit.
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="runs once, in the SQLite suite (takes minutes)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("schemathesis") is None, reason="schemathesis is not installed"
    ),
]

CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 20240115
EXAMPLES = 6


def _tasks_in_every_state(user) -> None:
    """Tasks whose responses carry every field: pending, completed and failed (with a
    traceback, which only staff may read), an integration row and a data sync; and quota
    enough that every priced kind the run submits can be paid for."""
    call_command("grant_quota", user.get_username(), "10000000", stdout=StringIO())
    lifecycle.create_task(owner=user, actor=user, task_type="demo.noop", name="pending")
    done = lifecycle.create_task(owner=user, task_type="demo.noop", start=True, integration_id=7)
    _, execution = lifecycle.claim_attempt(done, worker_id="schema-test")
    lifecycle.complete_attempt(execution, result={"ok": True}, worker_id="schema-test")
    failed = lifecycle.create_task(owner=user, task_type="demo.noop", start=True)
    _, execution = lifecycle.claim_attempt(failed, worker_id="schema-test")
    lifecycle.fail_attempt(
        execution, error="boom", traceback="Traceback: boom", worker_id="schema-test"
    )
    lifecycle.create_task(
        owner=user, task_type="sync.full_sync", parameters={"data_source_id": "crm"}, start=False
    )


# A few minutes alone; with the PostgreSQL suite running beside it (CI) twice as long.
@pytest.mark.timeout(960)
def test_every_operation_conforms_to_the_schema_under_all_checks(live_server, user):
    _tasks_in_every_state(user)
    assert TaskExecution.objects.filter(task__owner=user, status="FAILED").exclude(traceback="")
    _, key = ApiToken.objects.issue(user)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONFIG),
            "run",
            f"{live_server.url}/api/schema/",
            "--header",
            f"Authorization: Bearer {key}",
            # The generation dialect also wants the caller's id (new-api's New-Api-User).
            "--header",
            f"New-Api-User: {user.pk}",
            "--seed",
            str(SEED),
            "--generation-deterministic",
            "--max-examples",
            str(EXAMPLES),
            # One worker: two threads trip a CPython 3.11 bug (SystemError in ast.parse) inside
            # hypothesis when it describes a strategy.
            "--workers",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    summary = result.stdout.splitlines()[-1]
    assert "failure" not in summary
    assert "error" not in summary
    # Whatever the run created, changed or deleted, every task left has a known status and
    # its audit trail from creation on.
    tasks = Task.objects.filter(owner=user)
    assert tasks.exists()
    assert set(tasks.values_list("status", flat=True)) <= set(Status.values)
    assert not tasks.exclude(events__verb=EventVerb.CREATED).exists()
