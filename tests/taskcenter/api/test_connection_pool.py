"""Under ASGI every request runs on a thread of its own; the web process's pool gives them the
same few PostgreSQL sessions instead of a new one each (a burst of 1,000 event streams once ran
the server out of connections, bench/live.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection

from taskcenter.models.tokens import ApiToken
from tests.support.asgi_server import asgi_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's pool (SQLite's: lib tests)"
    ),
]


def sessions_opened() -> int:
    """Sessions ever opened on this database (PostgreSQL counts them as they start)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_concurrent_requests_share_the_pools_few_sessions(transactional_db, tmp_path, user):
    _, key = ApiToken.objects.issue(user)
    headers = {"Authorization": f"Bearer {key}"}
    with asgi_server(tmp_path, env={"DB_POOL_MAX_SIZE": "2"}) as base:
        before = sessions_opened()

        def list_tasks(_index: int) -> int:
            return requests.get(f"{base}/api/v1/tasks", headers=headers, timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(list_tasks, range(40)))
        connection.close()  # this test's own session is counted once it ends
        opened = sessions_opened() - before

    assert codes == [200] * 40
    # The pool's two, and this test's own reconnect; without a pool, one per request (40).
    assert opened <= 3, opened
