"""Remote generation kinds (new-api's task center): a song or lyrics made by a Suno-like platform.

A task of these kinds costs quota (``GENERATION["PRICES"]``), charged when it is created and
refunded once if it ends FAILED or CANCELLED. Its handler never waits on the platform while
holding a worker:

1. submit the job once, keep the platform's id in ``Task.external_id`` and poll again;
2. each later call reads the job's state, stores it (``remote_status``, progress "45%") and
   asks to be called again after a growing delay (1 s, 1 s, 2 s, 4 s ... capped), until the job
   succeeds (the task completes with the job's data), fails (FAILED, refunded) or outlives
   ``DEADLINE_SECONDS`` from submission (FAILED with a clear reason, refunded).

Submission is idempotent across a lost worker: a task that already has an ``external_id`` for
this run is only polled, and the job is submitted with a ``client_ref`` unique to the run, so a
worker that died between the platform's answer and saving the id gets the same job back. A
retry of a FAILED task is a new run: its ``submitted_at`` (and so its ``client_ref``) is new.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from taskcenter.errors import PermanentError
from taskcenter.kinds import RetryPolicy, task_kind
from taskcenter.models import Task

from .providers import FAILURE, SUCCESS, get_provider

if TYPE_CHECKING:
    from taskcenter.kinds.context import AttemptContext

PLATFORM = "suno"
# Network trouble passes; the platform's own FAILURE is permanent and is not retried.
BACKOFF = RetryPolicy(base_delay=2.0, factor=2.0, max_delay=60.0)


class SongParams(serializers.Serializer):
    prompt = serializers.CharField(
        max_length=3000, trim_whitespace=True, help_text="What the song is about (1-3000 chars)."
    )
    title = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    tags = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Style tags, e.g. 'lofi, chill'.",
    )
    make_instrumental = serializers.BooleanField(required=False, default=False)


class LyricsParams(serializers.Serializer):
    prompt = serializers.CharField(
        max_length=3000, trim_whitespace=True, help_text="What the lyrics are about."
    )


def run_ref(task: Task) -> str:
    """The ``client_ref`` of this run of the task: same across lost workers, new per retry."""
    submitted = task.submitted_at or task.created_at
    return f"taskcenter-{task.pk}-{int(submitted.timestamp() * 1000)}"


def next_delay(elapsed: float, remaining: float) -> float:
    """Back-off without state: wait as long as the job has run so far, within the bounds.

    Polls then land at about 1, 2, 4, 8 ... seconds after submission, capped at
    ``POLL_MAX_SECONDS``, and never far past the deadline.
    """
    config = settings.GENERATION
    delay = min(max(float(config["POLL_INITIAL_SECONDS"]), elapsed), config["POLL_MAX_SECONDS"])
    return max(min(delay, remaining + 0.05), 0.05)


def generate(task: Task, ctx: AttemptContext, *, action: str) -> dict:
    """Submit once, then poll the platform with poll-again until the job is over."""
    config = settings.GENERATION
    provider = get_provider()
    ref = run_ref(task)
    remote_id, _ = ctx.remote_job()
    job = provider.fetch(remote_id) if remote_id else None
    if job is not None and job.client_ref and job.client_ref != ref:
        job = None  # the job of an earlier run (this is a retry): this run needs its own

    if job is None:
        ctx.checkpoint()  # not cancelled meanwhile: do not start paid work for nobody
        remote_id = provider.submit(PLATFORM, action, task.parameters, client_ref=ref)
        ctx.remember_remote_job(remote_id, "SUBMITTED")
        ctx.progress(0, f"submitted to {PLATFORM} as {remote_id}", force=True)
        ctx.poll_again(float(config["POLL_INITIAL_SECONDS"]), "submitted")

    ctx.remember_remote_job(job.remote_id, job.status)
    if job.status == SUCCESS:
        ctx.progress(100, f"{job.status} {job.progress}", force=True)
        return job.data
    if job.status == FAILURE:
        raise PermanentError(
            f"{PLATFORM} failed job {job.remote_id}: {job.fail_reason or 'no reason'}"
        )

    # The deadline runs from the platform's own submission time: time spent in our queue or
    # waiting for a worker is not the platform's delay.
    deadline = float(config["DEADLINE_SECONDS"])
    submitted = job.submitted_at or task.submitted_at or task.created_at
    elapsed = (timezone.now() - submitted).total_seconds()
    if elapsed >= deadline:
        raise PermanentError(
            f"{PLATFORM} did not finish job {job.remote_id} within {deadline:g} s "
            f"(last status {job.status} {job.progress})"
        )
    message = f"{job.status} {job.progress}"
    ctx.progress(job.percent, message, force=True)
    ctx.poll_again(next_delay(elapsed, deadline - elapsed), message)
    raise AssertionError("poll_again returns only by raising")  # pragma: no cover


def price(action: str) -> int:
    return int(settings.GENERATION["PRICES"][action])


@task_kind(
    "suno.song",
    params=SongParams,
    max_attempts=3,
    backoff=BACKOFF,
    platform=PLATFORM,
    action="song",
    quota=price("song"),
)
def song(task: Task, ctx: AttemptContext) -> dict:
    """Generate a song on the Suno-like platform (new-api's action "song")."""
    return generate(task, ctx, action="song")


@task_kind(
    "suno.lyrics",
    params=LyricsParams,
    max_attempts=3,
    backoff=BACKOFF,
    platform=PLATFORM,
    action="lyrics",
    quota=price("lyrics"),
)
def lyrics(task: Task, ctx: AttemptContext) -> dict:
    """Write song lyrics on the Suno-like platform (new-api's action "lyrics")."""
    return generate(task, ctx, action="lyrics")


GENERATION_KINDS = ("suno.song", "suno.lyrics")
