"""PUT /api/sync/tasks/{id} against a worker's claim and another PUT, on real connections."""

from __future__ import annotations

import time

import pytest

from taskcenter import lifecycle
from taskcenter.models import EventVerb, Status, Task, TaskEvent
from tests.support.clients import token_client
from tests.support.races import race

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 15


def queued_sync(user) -> Task:
    return lifecycle.create_task(
        owner=user,
        task_type="sync.full_sync",
        parameters={"data_source_id": "ds_race", "batch_size": 100, "timeout": 60},
        start=True,
        data_source_id="ds_race",
    )


def test_config_update_and_worker_claim_race_to_one_consistent_outcome(user):
    client = token_client(user)
    outcomes = {200: 0, 409: 0}
    for round_ in range(ROUNDS):
        task = queued_sync(user)
        # A request takes longer than a claim; holding the claim back a little more each round
        # lets the edit win some rounds and lose others.
        delay = (round_ % 5) * 0.005

        def claim_later(task=task, delay=delay):
            time.sleep(delay)
            return lifecycle.claim_attempt(task.pk, worker_id="w")

        put, claim = race(
            lambda task=task: client.put(
                f"/api/sync/tasks/task_{task.pk}", {"config": {"batch_size": 777}}, format="json"
            ),
            claim_later,
        )

        assert claim.ok, claim.error  # an edit never blocks the claim
        claimed, _ = claim.value
        response = put.value
        outcomes[response.status_code] += 1
        row = Task.objects.get(pk=task.pk)
        assert row.status == Status.RUNNING
        updates = TaskEvent.objects.filter(task=task, verb=EventVerb.UPDATED).count()
        if response.status_code == 200:
            # The edit came first, so the attempt runs with it.
            assert claimed.parameters["batch_size"] == 777
            assert updates == 1
        else:
            assert response.status_code == 409
            assert response.json()["error"]["status"] == "running"
            assert claimed.parameters["batch_size"] == 100
            assert updates == 0
        assert row.parameters == claimed.parameters
    assert sum(outcomes.values()) == ROUNDS


def test_an_edit_made_before_the_claim_is_what_the_attempt_runs_with(user):
    client = token_client(user)
    task = queued_sync(user)

    response = client.put(
        f"/api/sync/tasks/task_{task.pk}", {"config": {"batch_size": 9}}, format="json"
    )
    claimed, _ = lifecycle.claim_attempt(task.pk, worker_id="w")

    assert response.status_code == 200
    assert claimed.parameters["batch_size"] == 9


def test_two_concurrent_config_updates_keep_both_changes(user):
    client = token_client(user)
    for _ in range(ROUNDS):
        task = queued_sync(user)
        url = f"/api/sync/tasks/task_{task.pk}"
        first, second = race(
            lambda url=url: client.put(url, {"config": {"batch_size": 5}}, format="json"),
            lambda url=url: client.put(url, {"config": {"timeout": 9}}, format="json"),
        )

        assert first.value.status_code == second.value.status_code == 200
        parameters = Task.objects.get(pk=task.pk).parameters
        assert parameters["batch_size"] == 5
        assert parameters["timeout"] == 9
        assert TaskEvent.objects.filter(task=task, verb=EventVerb.UPDATED).count() == 2
