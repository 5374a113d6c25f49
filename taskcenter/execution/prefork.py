"""Several worker processes from one start: ``run_worker --processes N``.

Starting a worker costs about a second of CPU (Django, the admin, the API and the kinds
imported), and N workers started apart pay it N times; on a small machine they also come up far
apart, since the first to run takes CPU from the others' start. Like Celery's prefork pool and
gunicorn, the parent pays it once and forks N children, each a whole worker of its own (its
worker id, database connection, wake-up channel, heartbeat and reaper). The parent runs no
attempt and holds no connection. It passes SIGINT and SIGTERM on to the children (which finish
their running attempts, and exit at once on a second one), starts a new child in the place of
one that died unless told otherwise, and exits when the last child has, with the worst exit
code among them.

The children are in a process group of their own, so a Ctrl-C at a terminal reaches them once
(from the parent), not twice (a second signal means "exit now"). A child whose parent is gone
(SIGKILLed) stops itself as if told to: nothing would otherwise stop it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable

from django.db import connections

logger = logging.getLogger("taskcenter.execution.worker")

# A child that died is replaced after this long, so one that dies at once does not spin.
REPLACE_DELAY = 1.0
# How often a child looks whether its parent is still there.
ORPHAN_CHECK_SECONDS = 1.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_processes(count: int, child: Callable[[int], int], *, replace_dead: bool = True) -> int:
    """Run ``child(index)`` in ``count`` forked processes; returns the worst exit code.

    ``child`` returns its exit code. A child that exits with 0 is done; one that fails or is
    killed is started again (same index) while ``replace_dead`` and the parent is not stopping.
    """
    # A connection must not be shared by two processes: each child opens its own.
    connections.close_all()
    parent = os.getpid()
    children: dict[int, int] = {}  # pid -> index
    group: list[int] = []  # the children's process group (the first child's pid)
    stopping = threading.Event()
    worst = 0

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            _become_child(parent, group[0] if group else 0, child, index)
        if not group:
            group.append(pid)
        # Also here, against the race with the child's own setpgid (either one may run first).
        with contextlib.suppress(OSError):
            os.setpgid(pid, group[0])
        children[pid] = index
        if stopping.is_set():  # a signal came while forking: this one must hear it too
            _tell(pid, signal.SIGTERM)

    def pass_on(signum: int, frame: object) -> None:
        stopping.set()
        for pid in list(children):
            _tell(pid, signum)

    previous = {sig: signal.signal(sig, pass_on) for sig in STOP_SIGNALS}
    try:
        for index in range(count):
            spawn(index)
        logger.info("Started %d worker processes: %s", count, ", ".join(map(str, children)))
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in children:
                continue
            index = children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if code == 0:
                continue
            if replace_dead and not stopping.is_set():
                logger.warning(
                    "Worker process %d exited with %s; starting another in %gs",
                    pid,
                    _describe(code),
                    REPLACE_DELAY,
                )
                stopping.wait(REPLACE_DELAY)
                if not stopping.is_set():
                    spawn(index)
                    continue
            worst = max(worst, code if code > 0 else 128 - code)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return worst


def _become_child(parent: int, group: int, child: Callable[[int], int], index: int) -> None:
    """In the forked child: run ``child`` and leave, never returning into the parent's code."""
    code = 1
    try:
        # Until the worker installs its own handlers, a stop signal simply ends this process.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        try:
            os.setpgid(0, group or os.getpid())
        except OSError:  # the group ended with its last child: start another
            os.setpgid(0, 0)
        random.seed()  # the parent's state, copied, would give every child the same reaper turns
        threading.Thread(
            target=_stop_when_orphaned, args=(parent,), name="taskcenter-parent-watch", daemon=True
        ).start()
        code = child(index)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        logger.exception("Worker process %d crashed", os.getpid())
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _stop_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    logger.warning("Worker process %d lost its parent; stopping", os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)


def _tell(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _describe(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"
