"""Tally shards: concurrent writers of one key do not wait for each other, and every key stays
exact while they write, while the fold runs and while a check recounts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from taskcenter import lifecycle
from taskcenter.models import Task, TaskTally
from taskcenter.models.tally_fold import fold_tallies
from tests.support.lifecycle import WORKER, close_connection
from tests.taskcenter.models.test_tallies import assert_tallies_match_rows, task_tally

postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="SQLite has one writer at a time"
)
# Long enough for a loaded machine to run one small transaction, far too short to hide a wait
# for a transaction that stays open until the test ends.
LOCK_TIMEOUT = "3s"


class Background:
    """Run ``work`` in threads with their own connections; re-raise what they raised."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, work: Callable[[], object]) -> None:
        def run() -> None:
            try:
                work()
            except BaseException as error:  # reported by join()
                self.errors.append(error)
            finally:
                close_connection()

        thread = threading.Thread(target=run)
        self.threads.append(thread)
        thread.start()

    def join(self, timeout: float = 120) -> None:
        for thread in self.threads:
            thread.join(timeout=timeout)
        assert not any(thread.is_alive() for thread in self.threads), "a thread hung"
        if self.errors:
            raise AssertionError(f"{len(self.errors)} thread(s) failed") from self.errors[0]


def claim(task: Task) -> None:
    lifecycle.claim_attempt(task, worker_id=WORKER)


def complete(task: Task) -> None:
    execution = task.executions.get()
    lifecycle.complete_attempt(execution, result={})


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("prepare", "change"), [(None, claim), (claim, complete)], ids=["claim", "complete"]
)
def test_two_transactions_changing_tasks_of_one_key_do_not_wait_for_each_other(
    make_task, prepare, change
):
    # Same owner, kind and platform: with one tally row per key both would add to the same row,
    # and the second would wait for the first to commit.
    first, second = (make_task("demo.sleep", start=True) for _ in range(2))
    for task in (first, second):
        if prepare:
            prepare(task)
    holding, release = threading.Event(), threading.Event()

    def hold_open() -> None:
        with transaction.atomic():
            change(first)
            holding.set()
            release.wait(timeout=30)

    background = Background()
    background.start(hold_open)
    try:
        assert holding.wait(timeout=30)
        started = time.monotonic()
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            change(second)
        took = time.monotonic() - started
    finally:
        release.set()
        background.join()
    assert took < 2
    assert_tallies_match_rows()


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_fold_and_checks_keep_every_key_exact(make_task):
    # Four writers move tasks of the same two keys through claim, requeue and completion, while
    # a fold moves their shards into shard 0 and a check recounts the tables, again and again.
    per_writer, writers = 12, 4
    batches = [
        [
            make_task("demo.noop", start=True, max_attempts=5, platform=("a", "b")[n % 2])
            for n in range(per_writer)
        ]
        for _ in range(writers)
    ]
    done = threading.Event()
    folded, checks = [], []

    def write(tasks: list[Task]) -> None:
        for n, task in enumerate(tasks):
            task, execution = lifecycle.claim_attempt(task, worker_id=WORKER)
            if n % 3 == 0:
                lifecycle.fail_attempt(execution, error="again")  # back to QUEUED, due now
                task, execution = lifecycle.claim_attempt(task, worker_id=WORKER)
            lifecycle.complete_attempt(execution, result={})

    def fold() -> None:
        while not done.is_set():
            folded.append(fold_tallies(batch=3).moved)

    def check() -> None:
        while not done.is_set():
            call_command("rebuild_tallies", "--check", stdout=StringIO())  # raises on drift
            checks.append(1)

    helpers = Background()
    helpers.start(fold)
    helpers.start(check)
    background = Background()
    for tasks in batches:
        background.start(lambda tasks=tasks: write(tasks))
    try:
        background.join()
    finally:
        done.set()
        helpers.join()

    assert checks, "no check ran while the writers wrote"
    assert_tallies_match_rows()
    out = StringIO()
    call_command("rebuild_tallies", "--check", stdout=out)
    assert "0 tally rows differed" in out.getvalue()
    # With the writers gone every shard can be folded: one row per key, none of them zero.
    fold_tallies()
    assert_tallies_match_rows()
    rows = list(TaskTally.objects.values_list("shard", "n"))
    assert {shard for shard, _ in rows} == {0}
    assert all(n for _, n in rows)
    assert len(rows) == len(task_tally())


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_fold_leaves_a_shard_that_a_writer_holds_and_does_not_wait_for_it(make_task):
    first, second = (make_task("demo.noop") for _ in range(2))
    holding, release = threading.Event(), threading.Event()
    held = []

    def hold_open() -> None:
        lifecycle.start_task(first)  # committed to this connection's shard
        with transaction.atomic():
            lifecycle.cancel_task(second)  # the same shard again, held until released
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('taskcenter.tally_shard')")
                held.append(int(cursor.fetchone()[0]))
            holding.set()
            release.wait(timeout=30)

    background = Background()
    background.start(hold_open)
    try:
        assert holding.wait(timeout=30)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            report = fold_tallies()
    finally:
        release.set()
        background.join()

    assert report.busy == 1
    # Only the held shard's committed rows (PENDING -1, QUEUED +1) remain outside shard 0.
    assert set(TaskTally.objects.exclude(shard=0).values_list("shard", flat=True)) == set(held)
    assert_tallies_match_rows()
    fold_tallies()
    assert not TaskTally.objects.exclude(shard=0).exists()
    assert_tallies_match_rows()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_fold_command_vacuums_the_tallies_it_folded(make_task):
    def vacuums() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")
            cursor.execute(
                "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = %s",
                ["taskcenter_tasktally"],
            )
            return cursor.fetchone()[0]

    make_task("demo.noop")  # a row in this connection's shard
    before = vacuums()

    call_command("rebuild_tallies", "--fold", stdout=StringIO())

    assert vacuums() == before + 1
    assert not TaskTally.objects.exclude(shard=0).exists()
