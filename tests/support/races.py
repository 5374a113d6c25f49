"""Racing calls against each other, each in a thread with its own database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection

from taskcenter.errors import InvalidTransition
from tests.support.lifecycle import close_connection

# How many times each race runs.
ROUNDS = 20


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def race(
    *calls: Callable[[], Any], expected: tuple[type[BaseException], ...] = ()
) -> list[Outcome]:
    """Run each call in its own thread and connection, all released at once."""
    barrier = threading.Barrier(len(calls))
    outcomes = [Outcome() for _ in calls]

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            outcomes[index].value = call()
        except BaseException as exc:  # reported below, with the thread's own traceback
            outcomes[index].error = exc
        finally:
            close_connection()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    for outcome in outcomes:
        if outcome.error is not None and not isinstance(
            outcome.error, (InvalidTransition, *expected)
        ):
            raise AssertionError(f"racer failed: {outcome.error!r}") from outcome.error
    return outcomes
