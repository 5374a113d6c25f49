"""The RQ jobs: plain functions, enqueued by path (``bench.peer_apps.rq_jobs.noop``)."""

from bench import peer_apps


def noop(number: int) -> None:
    peer_apps.noop(number)


def sleep(number: int) -> None:
    peer_apps.sleep(number)
