"""Tally shards: concurrent writers of one key do not wait for each other."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from taskcenter import lifecycle
from taskcenter.models import Task
from tests.support.lifecycle import WORKER, close_connection
from tests.taskcenter.models.test_tallies import assert_tallies_match_rows

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
