"""The SQLite backend takes the write lock as soon as the holder lets go, not after SQLite's
busy-handler sleeps, and still gives up with Django's OperationalError after its timeout."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from django.db import OperationalError, connection, connections, transaction

from taskcenter.lib.sqlite_engine import base

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="the write lock is SQLite's (one writer)"
    ),
]


def hold_write_lock(seconds: float, held: threading.Event) -> None:
    """Hold the database's write lock from another connection (another thread) for a while."""
    other = base.DatabaseWrapper(connection.settings_dict, alias="holder")
    try:
        other.ensure_connection()
        other.connection.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        other.connection.execute("COMMIT")
    finally:
        other.close()


def timed_write() -> float:
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE taskcenter_task SET id = id WHERE id = 0")
    return time.monotonic() - started


def test_a_writer_gets_the_lock_soon_after_its_holder_lets_go():
    assert isinstance(connections["default"], base.DatabaseWrapper)
    waits = []
    for _ in range(5):
        held = threading.Event()
        holder = threading.Thread(target=hold_write_lock, args=(0.0185, held))
        holder.start()
        assert held.wait(5)
        waits.append(timed_write())
        holder.join()
    # SQLite's own busy handler sleeps 1, 2, 5, 10 then 15 ms: it tries again at 1, 3, 8, 18
    # and 33 ms, so an 18.5 ms hold cost it 33 ms. A slow machine can make any one wait long;
    # the quickest of five shows the mechanism.
    assert 0.015 <= min(waits) < 0.028, waits


def test_a_writer_gives_up_after_the_timeout_with_djangos_error():
    connection.close()
    options = connection.settings_dict["OPTIONS"]
    connection.settings_dict["OPTIONS"] = {**options, "timeout": 0.2}
    try:
        held = threading.Event()
        holder = threading.Thread(target=hold_write_lock, args=(1.0, held))
        holder.start()
        assert held.wait(5)
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            timed_write()
        assert 0.2 <= time.monotonic() - started < 0.8
        holder.join()
        # The connection keeps its busy timeout for writes outside a transaction.
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone() == (200,)
    finally:
        connection.close()
        connection.settings_dict["OPTIONS"] = options


def kept_wrapper(tmp_path, pool_size: int = 2) -> base.DatabaseWrapper:
    settings = {
        **connection.settings_dict,
        "NAME": str(tmp_path / "kept.sqlite3"),
        "OPTIONS": {**connection.settings_dict["OPTIONS"], "pool_size": pool_size},
    }
    return base.DatabaseWrapper(settings, alias="kept")


def test_a_closed_connection_is_kept_and_taken_by_the_next_thread(tmp_path):
    first = kept_wrapper(tmp_path)
    first.ensure_connection()
    raw = first.connection
    first.close()
    assert first.connection is None

    taken = []

    def next_request() -> None:
        again = kept_wrapper(tmp_path)
        again.ensure_connection()
        with again.cursor() as cursor:  # still works, from another thread
            cursor.execute("SELECT 1")
            taken.append((again.connection, cursor.fetchone()))
        again.close()

    worker = threading.Thread(target=next_request)
    worker.start()
    worker.join()
    assert taken == [(raw, (1,))]
    assert base.close_kept_connections() >= 1


def test_a_connection_closed_inside_a_transaction_is_not_kept(tmp_path):
    wrapper = kept_wrapper(tmp_path)
    wrapper.ensure_connection()
    raw = wrapper.connection
    raw.execute("BEGIN IMMEDIATE")
    wrapper.close()

    again = kept_wrapper(tmp_path)
    again.ensure_connection()
    assert again.connection is not raw
    with again.cursor() as cursor:  # and the lock went with it
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute("COMMIT")
    again.close()
    base.close_kept_connections()


def test_no_more_than_pool_size_are_kept(tmp_path):
    wrappers = [kept_wrapper(tmp_path, pool_size=2) for _ in range(3)]
    for wrapper in wrappers:
        wrapper.ensure_connection()
    raws = [wrapper.connection for wrapper in wrappers]
    for wrapper in wrappers:
        wrapper.close()
    assert base.close_kept_connections() == 2
    with pytest.raises(sqlite3.ProgrammingError):  # the third was closed, not kept
        raws[2].execute("SELECT 1")


@pytest.mark.parametrize(
    "query",
    [
        "SELECT %s, %s",
        "SELECT '100%%', %s",  # a literal percent sign, doubled for the driver's format
        "SELECT %s || '%%s'",  # "%%s" is a percent sign and an s, not a placeholder
        "SELECT 1",
    ],
)
def test_a_statement_is_converted_as_djangos_cursor_converts_it(query):
    with connection.cursor() as cursor:
        ours = cursor.cursor
        assert isinstance(ours, base.CursorWrapper)
        djangos = base.base.SQLiteCursorWrapper.convert_query(ours, query)
        assert ours.convert_query(query) == ours.convert_query(query) == djangos
        assert ours.convert_query("SELECT %(a)s", param_names=["a"]) == "SELECT :a"


def test_a_converted_statement_runs_with_its_values_each_time():
    with connection.cursor() as cursor:
        for value in ("first", "second"):
            cursor.execute("SELECT %s, '100%%', %s || '%%s'", [value, value])
            assert cursor.fetchone() == (value, "100%", f"{value}%s")
        cursor.execute("SELECT %(name)s", {"name": "named"})
        assert cursor.fetchone() == ("named",)
