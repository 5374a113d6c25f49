"""Wake-ups in one process: announcements, the two channels, and how long an idle worker sleeps.

The listeners here are the real ones (a LISTEN connection on PostgreSQL, a datagram socket on
SQLite) on the test database, started on threads of the test process; real worker processes
woken by them are in ``test_wakeup_process``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.utils import timezone

from taskcenter.execution import wakeup
from taskcenter.execution.wakeup import Announcement, Doorbell, Wakeups
from tests.support.processes import wait_for


class Heard:
    """What a listener delivered, and each time its channel opened or closed."""

    def __init__(self) -> None:
        self.announcements: list[Announcement] = []
        self.changes = 0
        self._lock = threading.Lock()

    def deliver(self, announcement: Announcement) -> None:
        with self._lock:
            self.announcements.append(announcement)

    def changed(self) -> None:
        with self._lock:
            self.changes += 1


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
def listener(transactional_db, heard):
    """The test database's own channel, listening on a thread until the test ends."""
    channel = wakeup.listener_for("default", heard.deliver, heard.changed)
    assert channel is not None
    channel.start()
    wait_for(lambda: channel.listening, timeout=15)
    yield channel
    channel.stop()


def announce_committed(queue: str = "default", run_after=None) -> None:
    with transaction.atomic():
        wakeup.announce(queue, run_after)


# --- announcements ---------------------------------------------------------------------------


def test_an_announcement_arrives_only_once_its_transaction_commits(listener, heard):
    with transaction.atomic():
        wakeup.announce("default")
        time.sleep(0.3)
        assert heard.announcements == []

    wait_for(lambda: heard.announcements, timeout=5)
    assert heard.announcements == [Announcement("default", None)]


def test_a_rolled_back_announcement_never_arrives(listener, heard):
    with transaction.atomic():
        wakeup.announce("rolled-back")
        transaction.set_rollback(True)
    announce_committed("committed")

    wait_for(lambda: heard.announcements, timeout=5)
    time.sleep(0.3)
    assert [a.queue for a in heard.announcements] == ["committed"]


def test_dispatching_a_task_announces_it_with_its_run_after(listener, heard, make_task):
    make_task("demo.noop", start=True)
    later = timezone.now() + timedelta(minutes=5)
    make_task("demo.noop", start=True, run_after=later)

    wait_for(lambda: len(heard.announcements) == 2, timeout=5)
    assert heard.announcements[0] == Announcement("default", None)
    assert heard.announcements[1].queue == "default"
    assert heard.announcements[1].due == pytest.approx(later.timestamp(), abs=1e-3)


def test_nothing_is_announced_with_wakeups_turned_off(listener, heard, settings, make_task):
    settings.TASKCENTER = {**settings.TASKCENTER, "WAKEUPS": False}
    make_task("demo.noop", start=True)
    settings.TASKCENTER = {**settings.TASKCENTER, "WAKEUPS": True}
    make_task("demo.noop", start=True, name="announced")

    wait_for(lambda: heard.announcements, timeout=5)
    time.sleep(0.3)
    assert len(heard.announcements) == 1


def test_malformed_announcements_are_ignored():
    assert wakeup.decode(b"not json") is None
    assert wakeup.decode('["default", "soon"]') is None
    assert wakeup.decode("[1]") is None
    assert wakeup.decode(b'["default", null]') == Announcement("default", None)
    assert wakeup.decode(wakeup.encode("q", None)) == Announcement("q", None)


# --- the channels when things go wrong ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_dropped_listener_connection_listens_again():
    if connection.vendor != "postgresql":
        pytest.skip("the LISTEN connection is PostgreSQL's")
    heard = Heard()
    channel = wakeup.listener_for("default", heard.deliver, heard.changed)
    assert isinstance(channel, wakeup.PostgresListener)
    channel.start()
    try:
        wait_for(lambda: channel.listening, timeout=15)
        first_pid = channel.connection.info.backend_pid
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [first_pid])

        # Down (the worker polls every --interval meanwhile), then up on a new connection.
        wait_for(lambda: heard.changes >= 3, timeout=15)
        wait_for(lambda: channel.listening, timeout=15)
        assert channel.connection.info.backend_pid != first_pid
        announce_committed()
        wait_for(lambda: heard.announcements, timeout=5)
    finally:
        channel.stop()


@pytest.mark.django_db(transaction=True)
def test_a_removed_worker_socket_is_noticed_and_bound_again():
    if connection.vendor != "sqlite":
        pytest.skip("the worker sockets are SQLite's channel")
    heard = Heard()
    channel = wakeup.listener_for("default", heard.deliver, heard.changed)
    assert isinstance(channel, wakeup.SocketListener)
    channel.start()
    try:
        wait_for(lambda: channel.listening, timeout=15)
        first = channel.path
        assert first is not None
        first.unlink()  # a cleaner of temporary files, say

        wait_for(lambda: channel.listening and channel.path not in (None, first), timeout=15)
        assert heard.changes >= 3  # up, down, up: the worker polled at each change
        announce_committed()
        wait_for(lambda: heard.announcements, timeout=5)
    finally:
        channel.stop()
    assert not list(channel.directory.glob("*.sock")), "a stopped listener removes its socket"


def test_a_channel_that_cannot_open_leaves_the_worker_polling(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    heard = Heard()
    channels = [
        wakeup.SocketListener(blocked / "sockets", heard.deliver, heard.changed),
        # Nothing listens on port 1: the connection is refused.
        wakeup.PostgresListener(
            {"host": "127.0.0.1", "port": 1, "dbname": "x"}, heard.deliver, heard.changed
        ),
    ]
    for channel in channels:
        channel.start()
    try:
        time.sleep(1.0)
        assert [channel.listening for channel in channels] == [False, False]
        assert all(channel.is_alive() for channel in channels), "they keep trying"
        assert heard.changes == 0
    finally:
        for channel in channels:
            channel.stop()

    wakeups = Wakeups(
        using="default", queue_names=("default",), interval=0.05, safety_interval=5, enabled=False
    )
    wakeups.listener = channels[0]
    assert wakeups.timeout() == 0.05


def test_datagrams_skip_dead_workers_and_remove_their_sockets(tmp_path):
    live = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    live.bind(str(tmp_path / "1-live.sock"))
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(tmp_path / "2-dead.sock"))
    dead.close()  # its worker was killed: the file stays, nobody reads it
    (tmp_path / "notes.txt").write_text("not a socket")
    try:
        assert wakeup.ring_sockets(tmp_path, b'["default", null]') == 1
        assert live.recv(100) == b'["default", null]'
        assert sorted(p.name for p in tmp_path.iterdir()) == ["1-live.sock", "notes.txt"]
        assert wakeup.ring_sockets(tmp_path / "missing", b"x") == 0
    finally:
        live.close()


def test_the_socket_directory_sits_next_to_the_database_file():
    database = "/srv/taskcenter/var/taskcenter.sqlite3"
    assert wakeup.socket_directory(database) == Path(f"{database}.wakeups")
    assert wakeup.socket_directory(":memory:") is None
    assert wakeup.socket_directory("file:memorydb?mode=memory&cache=shared") is None

    # Too long for a socket's name (108 bytes at most): a directory named after the file.
    deep = Path("/srv", *["nested-directory-name"] * 6, "taskcenter.sqlite3")
    fallback = wakeup.socket_directory(str(deep))
    assert fallback is not None
    assert fallback == wakeup.socket_directory(str(deep)), "every process finds the same one"
    assert len(str(fallback / f"{os.getpid()}-0123abcd.sock")) < 104


# --- how long an idle worker sleeps -----------------------------------------------------------


class StubListener:
    listening = True


def sleeper(**kwargs) -> Wakeups:
    defaults = {"using": "default", "queue_names": ("default",), "interval": 0.02}
    return Wakeups(**{**defaults, "safety_interval": 5.0, **kwargs})


def test_an_idle_worker_polls_often_without_a_channel_and_rarely_with_one():
    wakeups = sleeper(enabled=False)
    assert wakeups.listener is None
    assert wakeups.timeout() == 0.02
    wakeups.listener = StubListener()  # type: ignore[assignment]
    assert wakeups.timeout() == 5.0


def test_an_idle_worker_sleeps_until_the_next_job_comes_due():
    wakeups = sleeper(enabled=False)
    wakeups.listener = StubListener()  # type: ignore[assignment]
    wakeups.note_due(time.time() + 2.0)
    wakeups.note_due(time.time() + 3.0)  # later than the one it knows: no change
    assert 1.9 < wakeups.timeout() <= 2.0
    wakeups.note_due(time.time() + 0.5)
    assert 0.4 < wakeups.timeout() <= 0.5


def test_once_a_due_job_came_the_next_poll_asks_the_database_for_the_next_one():
    wakeups = sleeper(enabled=False)
    wakeups.listener = StubListener()  # type: ignore[assignment]
    wakeups.checked_due(None)
    assert not wakeups.wants_due_check()
    wakeups.note_due(time.time() + 0.05)
    time.sleep(0.06)

    assert wakeups.timeout() == 0.0  # poll now
    assert wakeups.wants_due_check()
    wakeups.checked_due(time.time() + 1.0)
    assert not wakeups.wants_due_check()
    assert 0.9 < wakeups.timeout() <= 1.0


def test_announcements_for_other_queues_do_not_wake_the_worker():
    wakeups = sleeper(enabled=False, queue_names=("mail",))
    wakeups._hear(Announcement("reports", None))
    assert not wakeups.wait(0)
    wakeups._hear(Announcement("mail", time.time() + 60))
    assert wakeups.wait(0)
    assert wakeups.timeout() == 0.02  # no channel: polls anyway sooner than the job is due
    wakeups._hear(Announcement("", None))  # a job handed back, any queue
    assert wakeups.wait(0)
    wakeups.close()


def test_the_doorbell_wakes_a_sleeper_and_clears_itself():
    bell = Doorbell()
    try:
        assert not bell.wait(0.01)
        for _ in range(100_000):  # more rings than the socket holds: never blocks
            bell.ring()
        assert bell.wait(0)
        assert not bell.wait(0), "one wait clears every ring before it"

        threading.Timer(0.1, bell.ring).start()
        started = time.monotonic()
        assert bell.wait(10)
        assert time.monotonic() - started < 5
    finally:
        bell.close()
    bell.ring()  # after close: a late signal handler must not raise


def test_socket_listener_path_is_in_the_sqlite_socket_directory(settings, tmp_path):
    name = tmp_path / "db.sqlite3"
    directory = wakeup.socket_directory(str(name))
    assert directory is not None
    channel = wakeup.SocketListener(directory, Heard().deliver, lambda: None)
    channel.start()
    try:
        wait_for(lambda: channel.listening, timeout=5)
        assert channel.path is not None
        assert channel.path.parent == Path(directory)
        assert wakeup.ring_sockets(directory, b'["default", null]') == 1
    finally:
        channel.stop()
