"""A second stop signal makes a worker exit at once, however soon after the first it comes.

Python runs a signal's handler between two steps of whatever the main thread is doing, that
includes another handler: a second SIGTERM sent the moment the first one's message is out may
run in the middle of the first handler. It must find the worker already stopping; finding it
running, it would take itself for the first, and the worker would go on finishing its attempts
instead of exiting (seen in CI under load, a test's worker still running 5 s later).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from taskcenter.execution import rq_worker as rq_worker_module
from taskcenter.execution import worker as worker_module
from taskcenter.execution.worker import Worker

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


def _second_signal_during_first_message(monkeypatch, module, handler: Callable) -> None:
    """Make the first signal's message run the handler again, as a second signal would."""
    messages: list[str] = []

    def warning(message: str, *args: object) -> None:
        messages.append(message)
        if len(messages) == 1:
            handler(signal.SIGTERM, None)

    monkeypatch.setattr(module.logger, "warning", warning)


@pytest.mark.django_db
def test_the_database_worker_exits_on_a_second_signal_inside_the_first(monkeypatch):
    worker = Worker(worker_id="signals", wakeups=False)
    _second_signal_during_first_message(monkeypatch, worker_module, worker._on_signal)

    with pytest.raises(SystemExit) as exited:
        worker._on_signal(signal.SIGTERM, None)

    assert exited.value.code == 1


class _Exited(Exception):
    pass


@pytest.mark.skipif(not REDIS_URL, reason="needs TEST_REDIS_URL (a Redis the tests may flush)")
def test_the_rq_worker_exits_on_a_second_signal_inside_the_first(monkeypatch, rq_engine):
    worker = rq_worker_module.RQWorker(worker_id="signals")
    _second_signal_during_first_message(monkeypatch, rq_worker_module, worker._on_signal)

    def exit_now(code: int) -> None:
        raise _Exited(code)

    monkeypatch.setattr(os, "_exit", exit_now)
    with pytest.raises(_Exited) as exited:
        worker._on_signal(signal.SIGTERM, None)

    assert exited.value.args == (1,)
