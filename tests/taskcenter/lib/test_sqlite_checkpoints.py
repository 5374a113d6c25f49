"""The workers' checkpointer starts SQLite's log over while commits and reads never stop, which
the commits' own checkpoints cannot; and the settings leave the commits without checkpoints."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from taskcenter.lib.sqlite_engine.checkpoints import Checkpointer, checkpointing

PAGES_PER_COMMIT = 2  # a short row in a table with one index: two leaf pages, or more
PAUSE = 0.0005


def open_database(path: Path) -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    return raw


def steady_load(path: Path, until: threading.Event) -> list[int]:
    """Commit a row every half millisecond while a reader reads as often, until ``until``;
    return the log's length (in pages) seen after each commit, by the writer itself.

    Both keep a transaction open most of the time, as a worker and a client submitting tasks
    back to back do, so the log is never quiet long enough to start over by itself."""
    setup = open_database(path)
    setup.execute("CREATE TABLE IF NOT EXISTS item (id INTEGER PRIMARY KEY, body TEXT)")
    setup.execute("CREATE INDEX IF NOT EXISTS item_body ON item (body)")
    setup.close()

    def read() -> None:
        reader = open_database(path)
        while not until.is_set():
            reader.execute("SELECT count(*) FROM item").fetchone()
            time.sleep(PAUSE)
        reader.close()

    reading = threading.Thread(target=read)
    reading.start()
    writer = open_database(path)
    # The settings leave the commits a checkpoint only past a long log: never, in this test.
    writer.execute("PRAGMA wal_autocheckpoint=0")
    lengths: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while not until.is_set() and time.monotonic() < deadline:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("INSERT INTO item (body) VALUES (?)", [f"item {len(lengths)}"])
            writer.execute("COMMIT")
            lengths.append(_log_pages(path))
            time.sleep(PAUSE)
    finally:
        until.set()
        reading.join()
        writer.close()
    return lengths


def _log_pages(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size // 4120 if wal.exists() else 0  # a frame: 24 + 4096 bytes


def test_without_a_checkpointer_the_log_of_a_steady_load_only_grows(tmp_path):
    path = tmp_path / "db.sqlite3"
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    lengths = steady_load(path, stop)
    assert len(lengths) > 50
    assert lengths == sorted(lengths)  # never started over
    assert lengths[-1] >= len(lengths) * PAGES_PER_COMMIT


def test_the_checkpointer_starts_the_log_over_under_a_steady_load(tmp_path):
    path = tmp_path / "db.sqlite3"
    open_database(path).close()
    stop = threading.Event()
    checkpointer = Checkpointer(str(path), interval=0.01, restart_pages=40).start()
    threading.Timer(2.0, stop.set).start()
    try:
        lengths = steady_load(path, stop)
    finally:
        checkpointer.stop()
    assert checkpointer.restarts >= 3, (checkpointer.passes, len(lengths))
    # The log started over while the writer and the reader went on: the file (which keeps its
    # size when the log starts over) stopped growing long before the commits did.
    assert len(lengths) > 100
    assert lengths[-1] < len(lengths) * PAGES_PER_COMMIT / 4, (lengths[-1], len(lengths))
    assert not checkpointer._thread.is_alive()


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's log")
def test_connections_leave_checkpoints_to_the_workers_and_keep_a_safety_net():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone()[0] == 10_000
        cursor.execute("PRAGMA journal_size_limit")
        assert cursor.fetchone()[0] == 64 * 1024 * 1024


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's temporary files")
def test_connections_keep_temporary_storage_in_memory():
    # On disk, every task INSERT created and unlinked a file in /var/tmp (its statement journal).
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA temp_store")
        assert cursor.fetchone()[0] == 2  # MEMORY


@pytest.mark.django_db
def test_checkpointing_runs_a_checkpointer_only_for_a_sqlite_file():
    with checkpointing() as checkpointer:
        if connection.vendor != "sqlite":
            assert checkpointer is None
            return
        assert checkpointer is not None
        assert checkpointer.path == str(connection.settings_dict["NAME"])
        deadline = time.monotonic() + 10
        while checkpointer.passes == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert checkpointer.passes > 0
    assert not checkpointer._thread.is_alive()
