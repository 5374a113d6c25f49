"""Demo kinds: show the lifecycle in the admin and drive tests and benchmarks.

Known only while ``TASKCENTER_DEMO_KINDS`` is on (``make run`` and the tests turn it on; it is
off unless DEBUG): they let any user keep a worker slot or an account busy for minutes.
"""

import time
from functools import partial

from rest_framework import serializers

from taskcenter.errors import PermanentError, RetryableError
from taskcenter.kinds import RetryPolicy, task_kind

demo_kind = partial(task_kind, demo=True)
# An account's rest after a demo.account task: enough to watch it, too short to matter.
MAX_DEMO_COOLDOWN = 600


@demo_kind("demo.noop", max_attempts=1)
def noop(task, ctx):
    """Do nothing and succeed at once (measures the engine's own overhead)."""
    return {"ok": True}


class SleepParams(serializers.Serializer):
    ms = serializers.IntegerField(min_value=0, max_value=600_000, default=100)


@demo_kind("demo.sleep", params=SleepParams, max_attempts=1)
def sleep(task, ctx):
    """Wait ``ms`` milliseconds without touching the database, like a handler waiting on I/O."""
    time.sleep(task.parameters["ms"] / 1000)
    return {"slept_ms": task.parameters["ms"]}


class AccountParams(serializers.Serializer):
    ms = serializers.IntegerField(min_value=0, max_value=600_000, default=100)
    cooldown = serializers.FloatField(min_value=0, max_value=MAX_DEMO_COOLDOWN, default=0)


@demo_kind("demo.account", params=AccountParams, max_attempts=1)
def use_account(task, ctx):
    """Hold the task's ``account_id`` for ``ms`` milliseconds, then rest it for ``cooldown`` s.

    Shows (and tests) that one account serves one task at a time across workers.
    """
    ctx.hold_account(task.account_id, cooldown=task.parameters["cooldown"], wait=0.5)
    held_from = time.time()
    time.sleep(task.parameters["ms"] / 1000)
    return {"account_id": task.account_id, "held_from": held_from, "held_to": time.time()}


class CountdownParams(serializers.Serializer):
    seconds = serializers.IntegerField(min_value=1, max_value=86_400, default=10)
    interval = serializers.FloatField(
        min_value=0.05, max_value=60, default=1.0, help_text="Seconds per tick."
    )


@demo_kind("demo.countdown", params=CountdownParams, max_attempts=1)
def countdown(task, ctx):
    """Count down, reporting progress each tick and stopping at the first tick after a stop."""
    total = task.parameters["seconds"]
    interval = task.parameters.get("interval", 1.0)
    ticks = max(1, round(total / interval))
    for tick in range(ticks):
        remaining = (ticks - tick) * interval
        ctx.progress(100 * tick / ticks, f"{remaining:g} s left", force=True)
        time.sleep(interval)
    ctx.progress(100, "done", force=True)
    return {"counted_seconds": total}


class FlakyParams(serializers.Serializer):
    fail_times = serializers.IntegerField(
        min_value=0, max_value=100, default=1, help_text="Attempts that fail before one succeeds."
    )
    permanent = serializers.BooleanField(default=False, help_text="Fail with a permanent error.")
    message = serializers.CharField(max_length=200, default="Simulated platform outage")


@demo_kind(
    "demo.flaky",
    params=FlakyParams,
    max_attempts=3,
    backoff=RetryPolicy(base_delay=0.5, factor=2.0, max_delay=5.0, jitter=0.5),
)
def flaky(task, ctx):
    """Fail the first ``fail_times`` attempts, then succeed: retries and back-off on show."""
    params = task.parameters
    if params["permanent"]:
        raise PermanentError(params["message"])
    if ctx.attempt <= params["fail_times"]:
        raise RetryableError(f"{params['message']} (attempt {ctx.attempt})")
    return {"succeeded_on_attempt": ctx.attempt}


class ItemsParams(serializers.Serializer):
    count = serializers.IntegerField(min_value=0, max_value=1_000_000, default=100)
    page_size = serializers.IntegerField(min_value=1, max_value=5_000, default=50)
    page_delay = serializers.FloatField(min_value=0, max_value=60, default=0.0)


@demo_kind("demo.items", params=ItemsParams, max_attempts=3)
def items(task, ctx):
    """Produce ``count`` numbered result rows page by page; a re-run skips rows already stored."""
    count, page_size = task.parameters["count"], task.parameters["page_size"]
    for start in range(0, count, page_size):
        ctx.checkpoint()
        page = range(start, min(start + page_size, count))
        ctx.save_results(
            {"key": f"item-{n}", "data_type": "item", "data": {"n": n, "text": f"item {n}"}}
            for n in page
        )
        ctx.progress(100 * page.stop / count, f"{page.stop}/{count} items")
        if task.parameters["page_delay"]:
            time.sleep(task.parameters["page_delay"])
    return {"items": count}


class PollParams(serializers.Serializer):
    polls = serializers.IntegerField(min_value=1, max_value=1_000, default=3)
    interval = serializers.FloatField(min_value=0, max_value=3_600, default=1.0)


@demo_kind("demo.poll", params=PollParams, max_attempts=1)
def poll(task, ctx):
    """Wait on an imaginary remote job: ask to be called again ``polls`` times, then succeed.

    Between polls no worker is held; the wait is counted from this attempt's own events.
    """
    done = task.events.filter(verb="waiting", execution=ctx.execution).count()
    if done < task.parameters["polls"]:
        ctx.progress(100 * done / task.parameters["polls"], f"poll {done + 1}", force=True)
        ctx.poll_again(task.parameters["interval"], f"remote job busy (poll {done + 1})")
    return {"polls": done}
