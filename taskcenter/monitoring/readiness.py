"""Readiness: can this process serve? The database answers, the engine answers, and every
migration this code ships has been applied.

Each check returns None when it passes or a short reason when it does not; the reason names
the failure's type, never a connection string (probes' answers end up in logs).
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from taskcenter.execution import dispatch
from taskcenter.lib.db_outage import DATABASE_ERRORS

# A probe must answer within its own timeout (Kubernetes' default is 1 s); a Redis that
# swallows packets must not hold it longer than this.
ENGINE_TIMEOUT_SECONDS = 0.5


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().rstrip(":")[:200]


def check_database() -> str | None:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DATABASE_ERRORS as exc:
        connections[DEFAULT_DB_ALIAS].close()  # the next probe reconnects
        return _failure(exc)
    return None


def check_engine() -> str | None:
    """The task engine: Redis with the RQ engine; the database engine is the database itself."""
    if not dispatch.uses_rq_engine():
        return None
    import django_rq
    from redis import Redis
    from redis.exceptions import RedisError

    # The engine's own server and credentials, on a client of its own with short timeouts:
    # the engine's pool waits as long as the operating system lets it.
    pool = django_rq.get_connection("default").connection_pool
    kwargs = {
        **pool.connection_kwargs,
        "socket_connect_timeout": ENGINE_TIMEOUT_SECONDS,
        "socket_timeout": ENGINE_TIMEOUT_SECONDS,
    }
    client = Redis(connection_pool=type(pool)(connection_class=pool.connection_class, **kwargs))
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        return _failure(exc)
    finally:
        client.close()
    return None


def check_migrations() -> str | None:
    try:
        connection = connections[DEFAULT_DB_ALIAS]
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DATABASE_ERRORS as exc:
        return _failure(exc)
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
        more = f" and {len(plan) - 5} more" if len(plan) > 5 else ""
        return f"{len(plan)} migration(s) not applied: {names}{more}"
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "database": check_database,
    "engine": check_engine,
    "migrations": check_migrations,
}


def readiness() -> dict[str, str]:
    """Every check's result, "ok" or its reason; the database's failure skips the migrations'."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        if name == "migrations" and results.get("database") != "ok":
            results[name] = "skipped: the database is unreachable"
            continue
        results[name] = check() or "ok"
    return results
