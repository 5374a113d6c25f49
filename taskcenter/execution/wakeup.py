"""Wake-ups: an idle worker starts a new job within milliseconds of its commit, without polling
the database every few milliseconds to find it.

Whatever makes an engine job ready (``dispatch.enqueue_attempt``: new tasks, retries, poll
continuations, tasks the reaper requeued; a worker handing a job back) **announces** it, and
the announcement reaches every worker of that database only once the job's transaction has
committed:

- **PostgreSQL**: ``NOTIFY taskcenter_jobs`` on the connection that wrote the job (the server
  delivers a notification when its transaction commits, never before, and drops it on a
  rollback); each worker ``LISTEN``\\ s on a connection of its own, held by a thread that
  reconnects with back-off when the link breaks;
- **SQLite** (one machine by nature): a datagram, sent from ``transaction.on_commit``, to every
  worker's Unix socket in a directory next to the database file.

An announcement is a hint, never the only way to a job. A worker still polls: every
``--interval`` while its channel is down (as it did before wake-ups), every
``--safety-interval`` (much longer) while the channel works, and at once whenever the channel
(re)connects, since whatever was announced meanwhile never arrived. A lost announcement delays
its job to the next poll; it cannot lose it. Announcements carry the job's ``run_after``, and a
poll that finds nothing asks the database for the earliest waiting ``run_after`` (once the job it
knew of came due, and every ``--safety-interval``), so an idle worker sleeps exactly until the
next job it knows of comes due.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import secrets
import selectors
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connections, transaction

from taskcenter.lifecycle.hooks import Clause

logger = logging.getLogger("taskcenter.execution.worker")

CHANNEL = "taskcenter_jobs"
# The PostgreSQL listener checks its link this often (a query) when nothing arrives.
HEALTH_CHECK_SECONDS = 10.0
# Back-off between attempts to get a broken channel back.
RECONNECT_FIRST_DELAY = 0.5
RECONNECT_MAX_DELAY = 30.0
# How long a listener blocks before it looks at whether it should stop.
LISTEN_TICK_SECONDS = 1.0
# Unix socket paths are limited to 108 bytes (104 on macOS); keep room for the file name.
MAX_SOCKET_DIR_LENGTH = 80


def enabled() -> bool:
    return bool(settings.TASKCENTER["WAKEUPS"])


# --- announcements ----------------------------------------------------------------------------


class Announcement(NamedTuple):
    """A job became ready in ``queue`` ("" for any queue), due at ``due`` (epoch; None: now)."""

    queue: str
    due: float | None


def encode(queue: str, run_after: datetime | None) -> str:
    return json.dumps([queue, run_after.timestamp() if run_after else None])


def decode(payload: str | bytes) -> Announcement | None:
    """The announcement in ``payload``, or None for anything malformed (it is ignored)."""
    try:
        queue, due = json.loads(payload)
        return Announcement(str(queue), None if due is None else float(due))
    except (TypeError, ValueError):
        return None


def announce(queue: str, run_after: datetime | None = None, *, using: str = "default") -> None:
    """Tell the workers of database ``using`` that a job is ready, once this transaction commits.

    Call it on the connection (``using``) that wrote the job; outside a transaction it goes now.
    A wake-up that does not arrive leaves the job to the workers' next poll.
    """
    if not enabled():
        return
    connection = connections[using]
    if connection.vendor == "postgresql":
        # Transactional: the server holds it until this transaction commits. Errors propagate:
        # swallowing one inside a transaction would leave that transaction unusable.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, encode(queue, run_after)])
    elif connection.vendor == "sqlite":
        directory = socket_directory(connection.settings_dict["NAME"])
        if directory is not None:
            payload = encode(queue, run_after).encode()

            def ring_workers() -> None:  # a function, not a lambda: Django logs its name
                ring_sockets(directory, payload)

            transaction.on_commit(ring_workers, using=using)


def announcement_clause(queue: str, run_after: datetime | None, *, after: str) -> Clause:
    """``announce`` as a clause of a one-statement submission (PostgreSQL), read so that it runs:
    it notifies once the clause ``after`` has written its row. Check ``enabled()`` first."""
    return Clause(
        "wakeup",
        f"SELECT pg_notify(%s, %s) FROM {after}",  # noqa: S608 (a clause's name)
        (CHANNEL, encode(queue, run_after)),
        read=True,
    )


# --- the SQLite channel: datagrams to the workers' sockets ------------------------------------


@functools.lru_cache(maxsize=16)
def socket_directory(database_name: object) -> Path | None:
    """Where the workers of this SQLite file keep their sockets (None: an in-memory database).

    Next to the database file, whose directory every process that writes the file can write
    to; a path too long for a socket name falls back to a directory in the temporary directory,
    named after the file, so every process finds the same one. Remembered per name: resolving
    the path is a few system calls, a tenth of a ``create_task``.
    """
    name = str(database_name or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    path = Path(name).resolve()
    beside = path.with_name(f"{path.name}.wakeups")
    if len(str(beside)) <= MAX_SOCKET_DIR_LENGTH:
        return beside
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"taskcenter-wakeups-{digest}"


_sender: socket.socket | None = None
_sender_lock = threading.Lock()


def _sending_socket() -> socket.socket:
    global _sender
    with _sender_lock:
        if _sender is None:
            _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            _sender.setblocking(False)
        return _sender


def ring_sockets(directory: Path, payload: bytes) -> int:
    """Send ``payload`` to every worker socket in ``directory``; returns how many took it.

    A socket nobody holds any more (its worker was killed) refuses the datagram and is removed.
    A worker whose queue of datagrams is full has wake-ups pending already, so it is skipped.
    """
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0  # no worker has ever listened here
    sender = _sending_socket()
    sent = 0
    for entry in entries:
        if not entry.name.endswith(".sock"):
            continue
        try:
            sender.sendto(payload, entry.path)
            sent += 1
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
        except OSError:  # full (BlockingIOError), or not ours to write to (PermissionError)
            continue
    return sent


# --- the worker's side ------------------------------------------------------------------------


class Doorbell:
    """Wakes the worker's loop: rung by listeners, finished attempts and signal handlers.

    A socket pair rather than a ``threading.Event``: ringing takes no lock, so a signal handler
    may ring it whatever the interrupted code holds.
    """

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._reader, selectors.EVENT_READ)

    def ring(self) -> None:
        with contextlib.suppress(OSError):  # full (rung already) or closed (stopping)
            self._writer.send(b"\0")

    def wait(self, timeout: float | None) -> bool:
        """Sleep until rung or ``timeout`` passes; True if rung. Clears the bell."""
        rung = bool(self._selector.select(None if timeout is None else max(timeout, 0.0)))
        if rung:
            with contextlib.suppress(BlockingIOError):
                while self._reader.recv(4096):
                    pass
        return rung

    def close(self) -> None:
        self._selector.close()
        self._reader.close()
        self._writer.close()


Deliver = Callable[[Announcement], None]


class Listener(threading.Thread):
    """Keeps a channel open on a thread and hands what arrives to ``deliver``.

    ``listening`` says whether the channel is open now; ``on_change`` is called whenever it
    opens or closes, so the worker polls at once and picks its poll interval again.
    """

    kind = "channel"

    def __init__(self, deliver: Deliver, on_change: Callable[[], None]) -> None:
        super().__init__(name=f"taskcenter-{self.kind}-wakeups", daemon=True)
        self.deliver = deliver
        self.on_change = on_change
        self.listening = False
        self.stopped = threading.Event()

    def run(self) -> None:
        delay = RECONNECT_FIRST_DELAY
        while not self.stopped.is_set():
            try:
                self.open()
                self._set_listening(True)
                delay = RECONNECT_FIRST_DELAY
                self.listen()
            except Exception as exc:
                if self.stopped.is_set():
                    break
                logger.warning(
                    "Wake-up channel (%s) down: %s; polling every --interval until it is "
                    "back (next try in %gs)",
                    self.kind,
                    exc,
                    delay,
                )
            finally:
                self._set_listening(False)
                self.close()
            if self.stopped.wait(delay):
                break
            delay = min(delay * 2, RECONNECT_MAX_DELAY)

    def _set_listening(self, listening: bool) -> None:
        if self.listening != listening:
            self.listening = listening
            if listening:
                logger.info("Wake-up channel (%s) listening", self.kind)
            self.on_change()

    def stop(self, timeout: float = 2.0) -> None:
        self.stopped.set()
        self.interrupt()
        if self.is_alive() and self is not threading.current_thread():
            self.join(timeout)

    # The channel's own parts.
    def open(self) -> None:
        raise NotImplementedError

    def listen(self) -> None:
        """Deliver announcements until the channel breaks (raise) or ``stopped`` is set."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def interrupt(self) -> None:
        """Make ``listen`` notice ``stopped`` sooner than its next tick, if the channel can."""


class PostgresListener(Listener):
    """``LISTEN taskcenter_jobs`` on a connection of its own (never one of Django's)."""

    kind = "postgresql"
    APPLICATION_NAME = "taskcenter-wakeups"

    def __init__(self, params: dict[str, Any], deliver: Deliver, on_change: Callable[[], None]):
        super().__init__(deliver, on_change)
        self.params = {
            **params,
            "autocommit": True,
            "application_name": self.APPLICATION_NAME,
        }
        # A link that dies without a word (a lost machine, a firewall) is noticed by the
        # health check below; keepalives make that check fail in seconds, not minutes.
        for key, value in (
            ("connect_timeout", 10),
            ("keepalives", 1),
            ("keepalives_idle", 10),
            ("keepalives_interval", 5),
            ("keepalives_count", 3),
        ):
            self.params.setdefault(key, value)
        self.connection: Any = None

    def open(self) -> None:
        import psycopg

        self.connection = psycopg.connect(**self.params)
        self.connection.execute(f"LISTEN {CHANNEL}")

    def listen(self) -> None:
        checked = time.monotonic()
        while not self.stopped.is_set():
            for note in self.connection.notifies(timeout=LISTEN_TICK_SECONDS):
                announcement = decode(note.payload)
                if announcement is not None:
                    self.deliver(announcement)
            if time.monotonic() - checked >= HEALTH_CHECK_SECONDS:
                self.connection.execute("SELECT 1")  # raises on a dead link
                checked = time.monotonic()

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()
            self.connection = None


class SocketListener(Listener):
    """A datagram socket of this worker's own in the database's socket directory."""

    kind = "sqlite"

    def __init__(self, directory: Path, deliver: Deliver, on_change: Callable[[], None]):
        super().__init__(deliver, on_change)
        self.directory = directory
        self.path: Path | None = None
        self.socket: socket.socket | None = None

    def open(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = self.directory / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(self.path))
        self.socket.settimeout(LISTEN_TICK_SECONDS)

    def listen(self) -> None:
        sock, path = self.socket, self.path
        if sock is None or path is None:
            raise OSError("the socket is not open")
        while not self.stopped.is_set():
            try:
                payload = sock.recv(4096)
            except TimeoutError:
                # Nothing arrived: is our socket still where senders look for it (a cleaner
                # of temporary files may have removed it)?
                if not path.exists():
                    raise OSError(f"socket {path} was removed") from None
                continue
            announcement = decode(payload)
            if announcement is not None:
                self.deliver(announcement)

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.path = None

    def interrupt(self) -> None:
        path = self.path
        if path is not None:
            with contextlib.suppress(OSError):
                _sending_socket().sendto(b"", str(path))


def listener_for(using: str, deliver: Deliver, on_change: Callable[[], None]) -> Listener | None:
    """The wake-up channel of database ``using``, or None where it has none."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        return PostgresListener(connection.get_connection_params(), deliver, on_change)
    if connection.vendor == "sqlite":
        directory = socket_directory(connection.settings_dict["NAME"])
        if directory is not None:
            return SocketListener(directory, deliver, on_change)
    return None


class Wakeups:
    """What the worker's loop sleeps on: its doorbell, its channel and the next due job.

    ``timeout(poll)`` is how long an idle loop may sleep; ``wait`` sleeps that long unless a
    job is announced, an attempt ends or the worker is asked to stop.
    """

    def __init__(
        self,
        *,
        using: str,
        queue_names: tuple[str, ...],
        interval: float,
        safety_interval: float,
        enabled: bool = True,
    ) -> None:
        self.queue_names = frozenset(queue_names)
        self.interval = interval
        self.safety_interval = safety_interval
        self.doorbell = Doorbell()
        self.listener = listener_for(using, self._hear, self.doorbell.ring) if enabled else None
        self._lock = threading.Lock()
        self._due: float | None = None
        self._due_checked_at = float("-inf")

    @property
    def listening(self) -> bool:
        return self.listener is not None and self.listener.listening

    def start(self) -> None:
        if self.listener is not None:
            self.listener.start()

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.stop()
        self.doorbell.ring()

    def close(self) -> None:
        self.stop()
        self.doorbell.close()

    def ring(self) -> None:
        self.doorbell.ring()

    def wait(self, timeout: float | None) -> bool:
        return self.doorbell.wait(timeout)

    def _hear(self, announcement: Announcement) -> None:
        if announcement.queue and announcement.queue not in self.queue_names:
            return
        if announcement.due is not None:
            self.note_due(announcement.due)
        self.doorbell.ring()  # even for a later job: the loop sleeps again, until that one

    # -- jobs that come due later ------------------------------------------------------------

    def note_due(self, due: float | None) -> None:
        """A job comes due at ``due`` (epoch seconds): sleep no longer than that."""
        with self._lock:
            if due is not None and due > time.time() and (self._due is None or due < self._due):
                self._due = due

    def wants_due_check(self) -> bool:
        """Whether an idle poll should ask the database for the earliest due job: once the job
        it knew of came due, and at least every ``safety_interval``."""
        with self._lock:
            return time.monotonic() - self._due_checked_at >= self.safety_interval

    def checked_due(self, due: float | None) -> None:
        """What the database said is the earliest due job (None: there is none)."""
        with self._lock:
            self._due_checked_at = time.monotonic()
        self.note_due(due)

    def timeout(self) -> float:
        """How long an idle worker sleeps: to its next poll, or until the next job comes due."""
        poll = self.safety_interval if self.listening else self.interval
        with self._lock:
            if self._due is None:
                return poll
            left = self._due - time.time()
            if left > 0:
                return min(poll, left)
            # Due now: poll once, and let that poll ask the database which job is next.
            self._due = None
            self._due_checked_at = float("-inf")
            return 0.0
