"""The database cache the rate limits live in without Redis: ``set`` is one statement.

What it must keep of Django's cache: what was set is read back, a second set replaces it, an
expired key reads as missing, the table stays near ``MAX_ENTRIES``, and a set inside a caller's
transaction goes or stays with it. What it changes: one upsert per ``set`` (plus a count of the
table once in ``CULL_CHECK_EVERY``), and on PostgreSQL an UNLOGGED table.
"""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from taskcenter.lib.database_cache import CULL_CHECK_EVERY, DatabaseCache

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = "taskcenter_cache"


def fresh_cache(**options) -> DatabaseCache:
    cache = DatabaseCache(TABLE, {"OPTIONS": options, "KEY_PREFIX": "test-database-cache"})
    cache.clear()
    return cache


def rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {TABLE}")  # noqa: S608 - a fixed name
        return cursor.fetchone()[0]


def test_the_settings_cache_is_this_one():
    assert type(caches["default"]) is DatabaseCache


def test_a_set_value_reads_back_and_a_second_set_replaces_it():
    cache = fresh_cache()
    history = [1764644000.25, 1764643999.5]
    cache.set("throttle_user_1", history, 60)
    assert cache.get("throttle_user_1") == history
    cache.set("throttle_user_1", [*history, 3.0], 60)
    assert cache.get("throttle_user_1") == [*history, 3.0]
    assert rows() == 1


def test_a_key_set_to_expire_now_reads_as_missing_and_none_never_expires():
    cache = fresh_cache()
    cache.set("gone", "x", 0)
    assert cache.get("gone", "missing") == "missing"
    cache.set("kept", "y", None)
    assert cache.get("kept") == "y"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT expires FROM {TABLE} WHERE cache_key LIKE %s",  # noqa: S608 - a fixed name
            ["%:kept"],
        )
        (expires,) = cursor.fetchone()
    assert str(expires).startswith("9999-12-31")


def sets_until_counted(cache: DatabaseCache) -> None:
    """Set keys until one set counts the table (the count is the process's, shared by tests)."""
    for number in range(CULL_CHECK_EVERY):
        with CaptureQueriesContext(connection) as queries:
            cache.set(f"until-{number}", number, 60)
        if any(query["sql"].startswith("SELECT COUNT(*)") for query in queries.captured_queries):
            return
    raise AssertionError(f"no count in {CULL_CHECK_EVERY} sets")


def test_a_set_is_one_statement_and_the_table_is_counted_once_in_a_hundred():
    cache = fresh_cache()
    sets_until_counted(cache)
    with CaptureQueriesContext(connection) as queries:
        for number in range(CULL_CHECK_EVERY):
            cache.set(f"key-{number}", number, 60)
    statements = [query["sql"] for query in queries.captured_queries]
    writes = [sql for sql in statements if sql.startswith("INSERT")]
    counts = [sql for sql in statements if sql.startswith("SELECT COUNT(*)")]
    assert len(writes) == CULL_CHECK_EVERY
    assert len(counts) == 1
    # The hundredth set after the last count counts again, before its write.
    assert [sql for sql in statements if sql in counts or sql in writes][-2] == counts[0]
    if connection.vendor == "postgresql":  # the statement commits itself: no BEGIN, no COMMIT
        assert len(statements) == CULL_CHECK_EVERY + 1
    assert cache.get("key-99") == 99


def test_every_cache_object_of_a_process_shares_the_count_of_sets():
    """Django makes a cache object per thread (under ASGI, per request): a count kept by each
    would count the table at every request's first set."""
    sets_until_counted(fresh_cache())
    with CaptureQueriesContext(connection) as queries:
        for number in range(CULL_CHECK_EVERY - 1):
            fresh_cache().set(f"key-{number}", number, 60)
    assert not any(q["sql"].startswith("SELECT COUNT(*)") for q in queries.captured_queries)


def test_the_table_is_culled_when_a_count_finds_it_past_max_entries():
    # CULL_FREQUENCY 0: a cull empties the table (Django's rule), so the bound is exact.
    cache = fresh_cache(MAX_ENTRIES=10, CULL_FREQUENCY=0)
    for number in range(3 * CULL_CHECK_EVERY):
        cache.set(f"key-{number}", number, 60)
    # Counted once in every hundred sets, so emptied at most 99 sets before the last one.
    assert rows() <= CULL_CHECK_EVERY
    assert cache.get(f"key-{3 * CULL_CHECK_EVERY - 1}") == 3 * CULL_CHECK_EVERY - 1


def test_a_set_inside_a_transaction_is_rolled_back_with_it():
    cache = fresh_cache()
    cache.set("kept", "before", 60)

    def fails_after_setting() -> None:
        with transaction.atomic():
            cache.set("kept", "inside", 60)
            cache.set("new", "inside", 60)
            assert cache.get("kept") == "inside"
            raise RuntimeError("the caller's transaction fails")

    with pytest.raises(RuntimeError):
        fails_after_setting()
    assert cache.get("kept") == "before"
    assert cache.get("new") is None


def test_on_postgresql_the_table_is_unlogged():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's table persistence")
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = %s", [TABLE])
        assert cursor.fetchone() == ("u",)
