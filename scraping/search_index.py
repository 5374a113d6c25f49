"""A substring index over result data, so search does not read every row (SQLite).

Search terms match JSON values by case-insensitive substring, which no B-tree index serves: at a
million rows every search read the whole table, twice (count and page), about a second each on
SQLite. An FTS5 table with the trigram tokenizer indexes every three-character slice of each
row's JSON text; ``LIKE '%value%'`` on it finds the candidate rows from the index, and the exact
key-by-key conditions then run on those candidates only (``scraping.api.views``).

It is an external-content table over ``scraping_scraperesult`` (it stores only the index, not a
second copy of the data), kept current by three triggers. SQLite rebuilds a table to alter it
(dropping its triggers), so ``ensure_search_index`` runs after every ``migrate`` and puts back
whatever is missing, rebuilding the index from the rows when it does.

PostgreSQL and SQLite builds without FTS5 have no index; search then reads the rows as before.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

TABLE = "scraping_scraperesult"
INDEX = "scraping_scraperesult_fts"
# Whether a connection's database has the index, remembered on the connection object (Django
# keeps one per thread and alias); the attribute is ours, so Django's types do not know it.
_CACHED = "_scrape_search_index"
# The index finds rows containing at least one three-character slice of the pattern; shorter
# values cannot use it.
MIN_LENGTH = 3

# Plain literals: the names are constants, and nothing user-given is ever part of this SQL.
CREATE_INDEX = (
    "CREATE VIRTUAL TABLE scraping_scraperesult_fts USING fts5(data, "
    "content='scraping_scraperesult', content_rowid='id', tokenize='trigram', detail='none')"
)
TRIGGERS = {
    "scraping_scraperesult_fts_insert": (
        "CREATE TRIGGER scraping_scraperesult_fts_insert AFTER INSERT ON scraping_scraperesult "
        "BEGIN INSERT INTO scraping_scraperesult_fts(rowid, data) VALUES (new.id, new.data); END"
    ),
    "scraping_scraperesult_fts_delete": (
        "CREATE TRIGGER scraping_scraperesult_fts_delete AFTER DELETE ON scraping_scraperesult "
        "BEGIN INSERT INTO scraping_scraperesult_fts(scraping_scraperesult_fts, rowid, data) "
        "VALUES ('delete', old.id, old.data); END"
    ),
    "scraping_scraperesult_fts_update": (
        "CREATE TRIGGER scraping_scraperesult_fts_update AFTER UPDATE OF id, data "
        "ON scraping_scraperesult BEGIN "
        "INSERT INTO scraping_scraperesult_fts(scraping_scraperesult_fts, rowid, data) "
        "VALUES ('delete', old.id, old.data); "
        "INSERT INTO scraping_scraperesult_fts(rowid, data) VALUES (new.id, new.data); END"
    ),
}
REBUILD = "INSERT INTO scraping_scraperesult_fts(scraping_scraperesult_fts) VALUES ('rebuild')"


def candidates_sql(patterns: int) -> str:
    """The ids of rows whose JSON text is LIKE each of ``patterns`` placeholders. One query for
    all terms: the index intersects the terms' trigrams before it reads any row to confirm."""
    conditions = " AND ".join(["data LIKE %s"] * patterns)  # placeholders only
    return "SELECT rowid FROM scraping_scraperesult_fts WHERE " + conditions  # noqa: S608


def _existing(connection: BaseDatabaseWrapper, kind: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = %s AND name LIKE %s",
            [kind, f"{INDEX}%"],
        )
        return {name for (name,) in cursor.fetchall()}


def ensure_search_index(connection: BaseDatabaseWrapper) -> bool:
    """Create the index and its triggers where missing (rebuilding it then); True when the
    database has the index afterwards. A no-op off SQLite."""
    if connection.vendor != "sqlite":
        return False
    if TABLE not in connection.introspection.table_names():
        return False  # migrating backwards, or scraping not migrated yet
    tables = _existing(connection, "table")
    triggers = _existing(connection, "trigger")
    if INDEX in tables and set(TRIGGERS) <= triggers:
        setattr(connection, _CACHED, True)
        return True
    setattr(connection, _CACHED, False)
    try:
        with connection.cursor() as cursor:
            if INDEX not in tables:
                cursor.execute(CREATE_INDEX)
            for name, sql in TRIGGERS.items():
                if name not in triggers:
                    cursor.execute(sql)
            cursor.execute(REBUILD)
    except DatabaseError as exc:  # e.g. "no such module: fts5" in a minimal SQLite build
        logger.warning("Result search runs without an index: %s", exc)
        return False
    setattr(connection, _CACHED, True)
    return True


def drop_search_index(connection: BaseDatabaseWrapper) -> None:
    """Remove the index and its triggers (the reverse migration)."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for name in TRIGGERS:
            cursor.execute("DROP TRIGGER IF EXISTS " + connection.ops.quote_name(name))
        cursor.execute("DROP TABLE IF EXISTS scraping_scraperesult_fts")
    setattr(connection, _CACHED, False)


def has_search_index(connection: BaseDatabaseWrapper) -> bool:
    """Whether searches on this database can use the index."""
    if connection.vendor != "sqlite":
        return False
    # Cached per connection: the answer changes only through migrate.
    known = getattr(connection, _CACHED, None)
    if known is None:
        known = INDEX in _existing(connection, "table")
        setattr(connection, _CACHED, known)
    return known
