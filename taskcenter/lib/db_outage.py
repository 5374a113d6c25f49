"""Riding out a database that went away: a server restart, a failover, a dropped link.

Django turns such failures into ``OperationalError`` (the server is unreachable or hung up) or
``InterfaceError`` (the connection object is already closed). Both leave this thread's
connection unusable until it is closed; the next query then opens a fresh one. Other database
errors (integrity, data, programming) are bugs or bad input, never retried here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import connection
from django.db.utils import DatabaseError, InterfaceError, OperationalError

logger = logging.getLogger(__name__)

T = TypeVar("T")

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
# Any database error: InterfaceError is no DatabaseError, so it is named too.
DATABASE_ERRORS: tuple[type[Exception], ...] = (DatabaseError, *DATABASE_UNAVAILABLE)
# What a web client is told to wait before trying again (Retry-After, seconds).
RETRY_AFTER_SECONDS = 5


def drop_broken_connection() -> None:
    """Close this thread's connection so the next query reconnects.

    Inside an atomic block the connection cannot be swapped (the transaction is lost anyway);
    Django closes it when the outermost block exits, so leave it to that.
    """
    if not connection.in_atomic_block:
        connection.close()


def retry_while_unavailable(
    write: Callable[[], T],
    *,
    what: str,
    patience: float,
    first_delay: float = 0.25,
    max_delay: float = 5.0,
) -> T:
    """Call ``write`` until the database answers, for up to ``patience`` seconds.

    ``write`` must be safe to repeat: one transaction that either committed or did not, fenced
    so that a second try after an unseen commit is refused instead of applied twice (every
    lifecycle outcome is). Between tries the broken connection is dropped and the delay doubles.
    Re-raises the last error once patience runs out.
    """
    deadline = time.monotonic() + patience
    delay = first_delay
    while True:
        try:
            return write()
        except DATABASE_UNAVAILABLE as exc:
            drop_broken_connection()
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("Database unavailable while %s (%s); retrying in %gs", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, max_delay)
