"""Plain ``django_tasks`` tasks, not Task Center's: other work sharing an engine's queue.

Module-level so that a worker process can import them by path.
"""

from django_tasks import task


@task()
def add(a: int, b: int) -> int:
    return a + b


@task()
def explode() -> None:
    raise ValueError("plain task failed on purpose")
