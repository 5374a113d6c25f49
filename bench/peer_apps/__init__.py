"""The peers ``bench/peers.py`` measures Task Center against: a Celery app, RQ jobs and a
procrastinate app, each with the same two tasks (``noop`` and a 100 ms ``sleep``), and the
driver that runs their workers (``drive.py``).

These modules run in the peers' own virtual environment (``var/bench-peers-venv``, made by
``bench/peers.py``), never in Task Center's: none of these libraries is one of its dependencies.

Every task body writes one line, ``<number> <started> <finished>`` (epoch seconds), to the file
named in ``PEERS_RECORD``: the time a task started and finished, taken by the task itself, which
none of the peers keeps on its own without a result backend.
"""

import os
import time

_opened: tuple[int, int] | None = None  # (pid, fd): a forked child opens its own


def record(number: int, started: float) -> None:
    """Append this task's line: one ``write`` on an ``O_APPEND`` descriptor, so lines from
    several processes and threads never interleave."""
    global _opened
    if _opened is None or _opened[0] != os.getpid():
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        _opened = (os.getpid(), os.open(os.environ["PEERS_RECORD"], flags, 0o644))
    os.write(_opened[1], f"{number} {started:.6f} {time.time():.6f}\n".encode())


def sleep(number: int) -> None:
    started = time.time()
    time.sleep(0.1)
    record(number, started)


def noop(number: int) -> None:
    record(number, time.time())
