"""The handler's context: progress, checkpoints, the results sink and poll-again, all fenced."""

from __future__ import annotations

import pytest
from django.utils import timezone

from scraping.models import ScrapeResult
from taskcenter import lifecycle
from taskcenter.errors import (
    AttemptInterrupted,
    LeaseLost,
    PollAgain,
    TaskCancelled,
    TaskStopped,
)
from taskcenter.kinds import context as context_module
from taskcenter.kinds import get_kind
from taskcenter.kinds.context import AttemptContext
from taskcenter.models import EventVerb, ExecutionStatus, Status, Task, TaskEvent, TaskExecution
from tests.support.lifecycle import LEASE, later

pytestmark = pytest.mark.django_db


def open_context(task: Task, worker_id: str = "w") -> AttemptContext:
    task, execution = lifecycle.claim_attempt(task, worker_id=worker_id, lease=LEASE)
    return AttemptContext(
        task=task,
        execution=execution,
        kind=get_kind(task.task_type),
        worker_id=worker_id,
        lease=LEASE,
    )


@pytest.fixture
def ctx(make_task) -> AttemptContext:
    return open_context(make_task("demo.items", start=True, max_attempts=3))


def items(*keys: str | None, data_type: str = "item") -> list[dict]:
    return [
        {"key": key, "data_type": data_type, "data": {"k": key}, "metadata": {"page": 1}}
        for key in keys
    ]


def stored_keys(task_id: int) -> list[str | None]:
    return list(ScrapeResult.objects.filter(task_id=task_id).values_list("item_key", flat=True))


def execution_of(ctx: AttemptContext) -> TaskExecution:
    return TaskExecution.objects.get(pk=ctx.execution.pk)


# --- progress --------------------------------------------------------------------------------


def test_progress_persists_percent_and_message_and_renews_the_lease(ctx):
    TaskExecution.objects.filter(pk=ctx.execution.pk).update(lease_expires_at=timezone.now())

    ctx.progress(42.7, "page 3 of 7", force=True)

    task = Task.objects.get(pk=ctx.task.pk)
    assert (task.progress, task.progress_message) == (42, "page 3 of 7")
    execution = execution_of(ctx)
    assert (execution.lease_expires_at - timezone.now()).total_seconds() > LEASE - 5
    assert execution.heartbeat_at is not None


def test_progress_is_throttled_unless_forced_or_complete(ctx):
    ctx.progress(10, "first", force=True)
    ctx.progress(20, "too soon")
    assert Task.objects.get(pk=ctx.task.pk).progress == 10

    ctx.progress(30, "forced", force=True)
    assert Task.objects.get(pk=ctx.task.pk).progress_message == "forced"

    ctx.progress(100, "done")
    task = Task.objects.get(pk=ctx.task.pk)
    assert (task.progress, task.progress_message) == (100, "done")


def test_progress_writes_again_once_the_interval_has_passed(ctx, monkeypatch):
    ctx.progress(10, "first", force=True)
    monkeypatch.setattr(context_module, "PROGRESS_MIN_INTERVAL", 0.0)

    ctx.progress(20, "next")

    assert Task.objects.get(pk=ctx.task.pk).progress == 20


def test_progress_is_clamped_and_its_message_truncated(ctx):
    ctx.progress(250, "x" * 400, force=True)
    task = Task.objects.get(pk=ctx.task.pk)
    assert (task.progress, len(task.progress_message)) == (100, 255)

    ctx.progress(-5, force=True)
    assert Task.objects.get(pk=ctx.task.pk).progress == 0


@pytest.mark.parametrize(
    ("interrupt", "raised"),
    [(lifecycle.stop_task, TaskStopped), (lifecycle.cancel_task, TaskCancelled)],
    ids=["stop", "cancel"],
)
def test_progress_after_stop_or_cancel_raises_and_writes_nothing(ctx, interrupt, raised):
    ctx.progress(5, "before", force=True)
    interrupt(ctx.task)

    with pytest.raises(raised):
        ctx.progress(50, "after", force=True)

    task = Task.objects.get(pk=ctx.task.pk)
    assert (task.progress, task.progress_message) == (5, "before")


# --- checkpoint ------------------------------------------------------------------------------


def test_checkpoint_passes_while_the_attempt_owns_the_task(ctx):
    ctx.checkpoint()
    ctx.sleep(0.01, step=0.005)


def test_checkpoint_after_stop_raises_task_stopped(ctx):
    lifecycle.stop_task(ctx.task)

    with pytest.raises(TaskStopped):
        ctx.checkpoint()
    with pytest.raises(TaskStopped):
        ctx.sleep(5)


def test_checkpoint_after_cancel_raises_task_cancelled(ctx):
    lifecycle.cancel_task(ctx.task)

    with pytest.raises(TaskCancelled):
        ctx.checkpoint()


def test_checkpoint_after_the_reaper_took_the_lease_raises_lease_lost(ctx):
    lifecycle.reap_lost_attempts(now=later())

    with pytest.raises(LeaseLost):
        ctx.checkpoint()


def test_checkpoint_of_a_stale_attempt_raises_lease_lost_while_a_new_one_runs(ctx):
    lifecycle.reap_lost_attempts(now=later())
    newer = open_context(ctx.task, worker_id="w2")

    with pytest.raises(LeaseLost):
        ctx.checkpoint()
    newer.checkpoint()


def test_checkpoint_after_stop_and_restart_raises_lease_lost(ctx):
    lifecycle.start_task(lifecycle.stop_task(ctx.task))

    with pytest.raises(LeaseLost):
        ctx.checkpoint()


def test_interruptions_share_a_base_class_the_runner_catches(ctx):
    lifecycle.cancel_task(ctx.task)

    with pytest.raises(AttemptInterrupted) as raised:
        ctx.checkpoint()
    assert raised.value.reason == "cancelled"


def test_stale_attempt_cannot_overwrite_the_progress_of_the_new_one(ctx):
    lifecycle.reap_lost_attempts(now=later())
    newer = open_context(ctx.task, worker_id="w2")
    newer.progress(60, "new attempt", force=True)

    with pytest.raises(LeaseLost):
        ctx.progress(99, "old attempt", force=True)

    task = Task.objects.get(pk=ctx.task.pk)
    assert (task.progress, task.progress_message) == (60, "new attempt")


# --- save_results ----------------------------------------------------------------------------


def test_save_results_writes_rows_and_counts_them_on_the_execution(ctx):
    written = ctx.save_results(items("a", "b", "c", data_type="tweet"))

    assert written == 3
    rows = list(ScrapeResult.objects.filter(task_id=ctx.task.pk))
    assert [r.item_key for r in rows] == ["a", "b", "c"]
    assert {r.data_type for r in rows} == {"tweet"}
    assert rows[0].data == {"k": "a"}
    assert rows[0].metadata == {"page": 1}
    assert {r.execution_id for r in rows} == {ctx.execution.pk}
    assert execution_of(ctx).result_count == 3
    assert ctx.result_count == 3


def test_save_results_skips_keys_already_stored_in_earlier_calls_and_batches(ctx):
    assert ctx.save_results(items("a", "b")) == 2
    assert ctx.save_results(items("b", "c", "c", "d", "a"), batch_size=2) == 2

    assert stored_keys(ctx.task.pk) == ["a", "b", "c", "d"]
    assert execution_of(ctx).result_count == 4


def test_save_results_keeps_every_row_without_a_key(ctx):
    written = ctx.save_results([*items(None, None, "", "k"), {"data": {"bare": True}}])

    assert written == 5
    assert stored_keys(ctx.task.pk) == [None, None, None, "k", None]


def test_save_results_of_a_later_attempt_skips_keys_an_earlier_attempt_stored(ctx):
    ctx.save_results(items("a", "b"))
    lifecycle.fail_attempt(ctx.execution, error="network")
    Task.objects.filter(pk=ctx.task.pk).update(run_after=None)  # skip the back-off
    second = open_context(ctx.task, worker_id="w2")

    assert second.save_results(items("a", "b", "c")) == 1

    assert stored_keys(ctx.task.pk) == ["a", "b", "c"]
    assert execution_of(second).result_count == 1
    assert execution_of(ctx).result_count == 2


def test_save_results_accepts_a_generator(ctx):
    written = ctx.save_results(({"key": f"n{n}", "data": {"n": n}} for n in range(7)), batch_size=3)

    assert written == 7
    assert execution_of(ctx).result_count == 7


@pytest.mark.parametrize(
    ("interrupt", "raised"),
    [
        (lambda task: lifecycle.cancel_task(task), TaskCancelled),
        (lambda task: lifecycle.stop_task(task), TaskStopped),
        (lambda task: lifecycle.reap_lost_attempts(now=later()), LeaseLost),
    ],
    ids=["cancelled", "stopped", "lease-lost"],
)
def test_save_results_refuses_after_the_attempt_lost_the_task_and_writes_nothing(
    ctx, interrupt, raised
):
    ctx.save_results(items("a"))
    interrupt(ctx.task)

    with pytest.raises(raised):
        ctx.save_results(items("b", "c"))

    assert stored_keys(ctx.task.pk) == ["a"]
    assert execution_of(ctx).result_count == 1
    assert ctx.result_count == 1


# --- poll again ------------------------------------------------------------------------------


def test_poll_again_ends_the_attempt_with_the_requested_wait(ctx):
    with pytest.raises(PollAgain) as raised:
        ctx.poll_again(12, "remote job busy")

    assert (raised.value.seconds, raised.value.message) == (12.0, "remote job busy")


def test_poll_again_never_asks_for_a_negative_wait(ctx):
    with pytest.raises(PollAgain) as raised:
        ctx.poll_again(-3)

    assert raised.value.seconds == 0.0


def test_a_deferred_attempt_resumes_with_the_same_execution_and_its_count(ctx):
    ctx.save_results(items("a"))
    lifecycle.defer_attempt(ctx.execution, seconds=0, message="waiting on remote")
    assert execution_of(ctx).status == ExecutionStatus.WAITING
    with pytest.raises(LeaseLost):
        ctx.checkpoint()  # nobody holds a waiting attempt; a handler must not keep running

    task, execution = lifecycle.resume_attempt(ctx.execution, worker_id="w2", lease=LEASE)
    resumed = AttemptContext(
        task=task, execution=execution, kind=ctx.kind, worker_id="w2", lease=LEASE
    )

    resumed.checkpoint()
    assert resumed.result_count == 1
    assert resumed.save_results(items("a", "b")) == 1
    assert execution_of(resumed).result_count == 2
    assert Task.objects.get(pk=task.pk).status == Status.RUNNING


# --- progress events (what the event streams deliver) ------------------------------------------


def progress_events(ctx: AttemptContext) -> list[dict]:
    return [
        event.data
        for event in TaskEvent.objects.filter(task_id=ctx.task.pk, verb=EventVerb.PROGRESS)
    ]


def test_progress_writes_a_progress_event_with_percent_and_message(ctx):
    ctx.progress(42.7, "page 3 of 7", force=True)

    [event] = TaskEvent.objects.filter(task_id=ctx.task.pk, verb=EventVerb.PROGRESS)
    assert event.data == {"progress": 42, "message": "page 3 of 7"}
    assert (event.from_status, event.to_status) == (Status.RUNNING, Status.RUNNING)
    assert event.execution_id == ctx.execution.pk
    assert event.actor == "worker:w"


def test_a_hundred_forced_progress_reports_in_an_interval_write_one_event(ctx, monkeypatch):
    monkeypatch.setattr(context_module, "PROGRESS_EVENT_MIN_INTERVAL", 60.0)  # a slow machine
    for percent in range(1, 101):
        ctx.progress(percent, f"{percent}%", force=True)

    # Every report reaches the task's columns; events are kept to one per interval.
    assert Task.objects.get(pk=ctx.task.pk).progress == 100
    assert progress_events(ctx) == [{"progress": 1, "message": "1%"}]


def test_progress_event_again_once_its_interval_has_passed(ctx, monkeypatch):
    ctx.progress(10, "first", force=True)
    monkeypatch.setattr(context_module, "PROGRESS_EVENT_MIN_INTERVAL", 0.0)

    ctx.progress(20, "next", force=True)

    assert [data["progress"] for data in progress_events(ctx)] == [10, 20]


def test_progress_after_cancel_writes_no_event(ctx):
    lifecycle.cancel_task(ctx.task)

    with pytest.raises(TaskCancelled):
        ctx.progress(50, "after", force=True)

    assert progress_events(ctx) == []
