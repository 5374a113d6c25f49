"""Generation kinds in real worker processes against the sandbox's AI-generation area.

Submit once, poll with poll-again and back-off without holding a worker, store the platform's
status and "45%" progress, and end in SUCCESS, FAILURE (refunded) or a deadline (refunded).
"""

from __future__ import annotations

import signal

import pytest

from generation.providers import HttpProvider
from generation.task_kinds import run_ref
from quota import ledger as quota
from quota.models import LedgerKind, QuotaLedgerEntry
from taskcenter.models import (
    EventVerb,
    ExecutionStatus,
    Status,
    Task,
    TaskEvent,
)
from tests.support.clients import new_api_client
from tests.support.processes import wait_for

pytestmark = pytest.mark.slow

SONG_PRICE = 10


@pytest.fixture
def worker_env(platform) -> dict[str, str]:
    return {
        "GENERATION_BASE_URL": platform.url,
        "GENERATION_TOKEN": "sandbox-token",
        "GENERATION_POLL_INITIAL_SECONDS": "0.1",
        "GENERATION_POLL_MAX_SECONDS": "0.2",
    }


@pytest.fixture
def client(user):
    quota.grant(user.pk, 100)
    return new_api_client(user)


def submit(client, prompt: str, action: str = "song") -> int:
    response = client.post("/api/task/submit", {"action": action, "prompt": prompt}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["data"]["id"]


def status_of(task_id: int) -> str:
    return Task.objects.values_list("status", flat=True).get(pk=task_id)


def finished(task_id: int) -> Task | None:
    task = Task.objects.get(pk=task_id)
    return task if task.is_finished else None


def api_posts(platform) -> list[dict]:
    return [r for r in platform.requests if r["method"] == "POST"]


def test_a_song_is_submitted_once_polled_with_progress_and_completes(
    start_worker, platform, worker_env, client, user
):
    task_id = submit(client, "a song about the sea")
    start_worker("--concurrency", "2", env=worker_env)
    seen: set[tuple[str, str]] = set()

    def done() -> bool:
        (item,) = client.get("/api/task/self").json()["data"]["items"]
        seen.add((item["status"], item["progress"]))
        return item["status"] == "SUCCESS"

    wait_for(done, timeout=30, every=0.02)

    task = Task.objects.get(pk=task_id)
    assert task.status == Status.COMPLETED
    assert task.external_id.startswith("gen-")
    assert (task.remote_status, task.progress) == ("SUCCESS", 100)
    assert [clip["audio_url"].endswith(".mp3") for clip in task.result["clips"]] == [True, True]
    assert ("IN_PROGRESS", "30%") in seen or ("IN_PROGRESS", "60%") in seen
    assert len(api_posts(platform)) == 1, "submitted exactly once"
    polls = [r for r in platform.requests if r["method"] == "GET"]
    assert len(polls) == 6  # SUBMITTED, QUEUED, 30%, 60%, 90%, SUCCESS
    # One attempt, released between polls: every poll after the first resumed a WAITING execution.
    (execution,) = task.executions.all()
    assert execution.status == ExecutionStatus.COMPLETED
    waits = TaskEvent.objects.filter(task_id=task_id, verb=EventVerb.WAITING).count()
    assert waits == 6
    (item,) = client.get("/api/task/self").json()["data"]["items"]
    assert (item["task_id"], item["progress"], item["data"]) == (
        task.external_id,
        "100%",
        task.result["clips"],
    ), "new-api's data of a Suno song: the list of its clips"
    assert item["properties"]["input"] == "a song about the sea"
    assert item["properties"]["remote_status"] == "SUCCESS"
    assert quota.balance_of(user.pk) == 100 - SONG_PRICE, "a success keeps its charge"


def test_a_platform_failure_fails_the_task_once_and_refunds_it(
    start_worker, platform, worker_env, client, user
):
    task_id = submit(client, "forbidden [fail]")
    start_worker(env=worker_env)

    task = wait_for(lambda: finished(task_id), timeout=30)

    assert task.status == Status.FAILED
    assert "Prompt rejected by moderation" in task.error_message
    assert task.remote_status == "FAILURE"
    assert task.executions.count() == 1, "the platform's FAILURE is not retried"
    assert len(api_posts(platform)) == 1
    assert quota.balance_of(user.pk) == 100
    refund = QuotaLedgerEntry.objects.get(task_id=task_id, kind=LedgerKind.REFUND)
    assert refund.amount == SONG_PRICE
    (item,) = client.get("/api/task/self", {"status": "FAILURE"}).json()["data"]["items"]
    assert "moderation" in item["fail_reason"]


def test_a_job_that_never_finishes_fails_at_the_deadline_and_is_refunded(
    start_worker, platform, worker_env, client, user
):
    task_id = submit(client, "endless [never]")
    start_worker(env={**worker_env, "GENERATION_DEADLINE_SECONDS": "1.5"})

    task = wait_for(lambda: finished(task_id), timeout=30)

    assert task.status == Status.FAILED
    assert "did not finish job" in task.error_message
    assert "within 1.5 s" in task.error_message
    # Where the job stood depends on how fast the worker started; it never got further.
    assert task.remote_status in {"SUBMITTED", "QUEUED", "IN_PROGRESS"}
    # Counted from the platform's acceptance, not from our queue: it ran at least that long.
    (accepted,) = api_posts(platform)
    assert task.finished_at.timestamp() - accepted["at"] >= 1.5
    assert quota.balance_of(user.pk) == 100
    assert QuotaLedgerEntry.objects.filter(task_id=task_id, kind=LedgerKind.REFUND).count() == 1


def test_waiting_on_the_platform_does_not_hold_the_only_worker_slot(
    start_worker, platform, worker_env, client, user, make_task
):
    slow = submit(client, "slow [never]")
    start_worker("--concurrency", "1", env={**worker_env, "GENERATION_POLL_MAX_SECONDS": "0.5"})
    wait_for(lambda: Task.objects.filter(pk=slow, remote_status="IN_PROGRESS").exists(), timeout=20)

    quick = [make_task("demo.noop", start=True) for _ in range(3)]

    wait_for(
        lambda: (
            Task.objects.filter(pk__in=[t.pk for t in quick], status=Status.COMPLETED).count() == 3
        ),
        timeout=20,
    )
    assert status_of(slow) == Status.RUNNING, "still being polled meanwhile"
    cancel = new_api_client(user)
    response = cancel.post(f"/api/v1/tasks/{slow}/cancel")
    assert response.status_code == 200
    (item,) = client.get(
        "/api/task/self", {"task_id": Task.objects.get(pk=slow).external_id}
    ).json()["data"]["items"]
    assert item["status"] == "FAILURE"
    assert quota.balance_of(user.pk) == 100


def test_a_worker_killed_mid_job_is_replaced_without_a_second_submission(
    start_worker, platform, worker_env, client
):
    task_id = submit(client, "survive a crash")
    # Short leases and reaper passes: whichever moment the kill lands in (a poll running, or
    # the wait between polls), the job is picked up again within seconds.
    env = {
        **worker_env,
        "GENERATION_POLL_INITIAL_SECONDS": "1.0",
        "GENERATION_POLL_MAX_SECONDS": "1.0",
        "TASKCENTER_LEASE_SECONDS": "2",
    }
    first = start_worker("--reap-interval", "0.5", env=env)
    wait_for(lambda: Task.objects.filter(pk=task_id).exclude(external_id="").exists(), timeout=20)
    first.signal(signal.SIGKILL)
    first.kill()

    start_worker("--reap-interval", "0.5", env={**env, "GENERATION_POLL_MAX_SECONDS": "0.2"})
    task = wait_for(lambda: finished(task_id), timeout=40)

    assert task.status == Status.COMPLETED
    assert len(api_posts(platform)) == 1, "the kept external_id is polled, never resubmitted"


def test_a_submission_lost_before_its_id_was_saved_gets_the_same_job_back(
    start_worker, platform, worker_env, client, settings
):
    task_id = submit(client, "answer lost in transit")
    task = Task.objects.get(pk=task_id)
    # What a worker that died right after the platform's answer leaves behind: a job on the
    # platform, no external_id here.
    settings.GENERATION = {**settings.GENERATION, "BASE_URL": platform.url}
    lost_id = HttpProvider().submit("suno", "song", task.parameters, client_ref=run_ref(task))

    start_worker(env=worker_env)
    task = wait_for(lambda: finished(task_id), timeout=30)

    assert task.status == Status.COMPLETED
    assert task.external_id == lost_id
    assert [r["status"] for r in api_posts(platform)] == [201, 200], "the second one deduplicated"
