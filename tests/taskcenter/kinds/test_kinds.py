"""The kinds registry, retry policies, and how the runner treats what handlers do."""

import random

import pytest
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from taskcenter import lifecycle
from taskcenter.errors import RetryableError, UnknownKind
from taskcenter.execution.runner import run_attempt
from taskcenter.kinds import RetryPolicy, all_kinds, get_kind, task_kind
from taskcenter.models import ExecutionStatus, Status, Task


@task_kind("test.returns_object", max_attempts=1)
def returns_object(task, ctx):
    return object()


@task_kind("test.raises_bug", max_attempts=2)
def raises_bug(task, ctx):
    raise ValueError("bad row 7")


@task_kind("test.rate_limited", max_attempts=5, permanent=(KeyError,))
def rate_limited(task, ctx):
    if task.parameters.get("missing"):
        raise KeyError("no such account")
    raise RetryableError("429 Too Many Requests", retry_after=30)


class NameParams(serializers.Serializer):
    name = serializers.CharField(max_length=10)
    count = serializers.IntegerField(min_value=1, default=5)


@task_kind("test.params", params=NameParams)
def with_params(task, ctx):
    return task.parameters


def run(task: Task) -> Task:
    run_attempt(task.pk, worker_id="test")
    task.refresh_from_db()
    return task


def test_builtin_kinds_are_registered():
    assert {"demo.noop", "demo.countdown", "http.request"} <= set(all_kinds())
    assert get_kind("demo.countdown").description.startswith("Count down")


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(UnknownKind, match=r"Unknown task type 'nope'\. Known types: .*demo\.noop"):
        get_kind("nope")


def test_registering_another_handler_under_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        task_kind("demo.noop")(lambda task, ctx: None)


def test_parameters_get_defaults_and_errors_name_the_field():
    kind = get_kind("test.params")
    assert kind.validate_parameters({"name": "x"}) == {"name": "x", "count": 5}
    with pytest.raises(ValidationError) as raised:
        kind.validate_parameters({"name": "x" * 11, "count": 0})
    assert set(raised.value.detail["parameters"]) == {"name", "count"}
    with pytest.raises(ValidationError, match="JSON object"):
        kind.validate_parameters(["not", "a", "dict"])


def test_backoff_grows_exponentially_is_capped_and_jittered():
    policy = RetryPolicy(base_delay=1.0, factor=2.0, max_delay=10.0, jitter=0.5)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (9, 10.0)]:
        delays = [policy.delay_for(attempt, rng=rng) for _ in range(200)]
        assert min(delays) >= ceiling / 2
        assert max(delays) <= ceiling
        assert len(set(delays)) > 100  # jittered, so retries of many tasks do not stampede


def test_no_jitter_gives_exact_delays():
    policy = RetryPolicy(base_delay=3.0, factor=3.0, max_delay=100.0, jitter=0.0)
    assert [policy.delay_for(n) for n in (1, 2, 3, 4, 5)] == [3.0, 9.0, 27.0, 81.0, 100.0]


def test_handler_returning_non_json_fails_permanently(make_task):
    task = run(make_task("test.returns_object", start=True))

    assert task.status == Status.FAILED
    assert "not JSON" in task.error_message


def test_unexpected_exception_is_retried_and_keeps_its_type_in_the_message(make_task):
    task = run(make_task("test.raises_bug", start=True))

    assert task.status == Status.QUEUED
    assert task.error_message == "ValueError: bad row 7"
    execution = task.executions.get()
    assert execution.status == ExecutionStatus.FAILED
    assert "Traceback" in execution.traceback


def test_retry_after_from_the_platform_overrides_the_backoff(make_task):
    task = run(make_task("test.rate_limited", start=True))

    assert task.status == Status.QUEUED
    assert task.events.get(verb="requeued").data["retry_in"] == 30


def test_errors_declared_permanent_by_the_kind_are_not_retried(make_task):
    task = run(make_task("test.rate_limited", {"missing": True}, start=True))

    assert task.status == Status.FAILED
    assert task.events.get(verb="failed").data["permanent"] is True


def test_kind_removed_after_creation_fails_the_attempt_permanently(make_task):
    task = make_task("demo.noop", start=True)
    Task.objects.filter(pk=task.pk).update(task_type="gone.kind")

    task = run(task)

    assert task.status == Status.FAILED
    assert "Unknown task type 'gone.kind'" in task.error_message


def test_job_for_a_task_that_is_no_longer_queued_is_skipped(make_task):
    task = make_task("demo.noop", start=True)
    lifecycle.cancel_task(task.pk, actor="test")

    assert run_attempt(task.pk, worker_id="test") == "skipped"
    assert not task.executions.exists()


@pytest.mark.django_db
def test_job_for_a_deleted_task_is_skipped():
    assert run_attempt(987_654, worker_id="test") == "skipped"
