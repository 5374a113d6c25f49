"""Plain ``django_tasks`` jobs for the raw ``db_worker`` baseline of the worker benchmark.

Module-level so the worker process can import them by path (``bench.jobs.noop``).
"""

import time

from django_tasks import task


@task()
def noop() -> None:
    return None


@task()
def sleep_100ms() -> None:
    time.sleep(0.1)
