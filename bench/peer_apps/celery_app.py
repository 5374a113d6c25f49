"""The Celery app: Redis broker, no result backend (``task_ignore_result``), as a Celery
deployment that does not read results runs it."""

import os

from celery import Celery

from bench import peer_apps

app = Celery("peers", broker=os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/11"))
app.conf.update(
    task_ignore_result=True,
    task_default_queue="peers",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="peers.noop")
def noop(number: int) -> None:
    peer_apps.noop(number)


@app.task(name="peers.sleep")
def sleep(number: int) -> None:
    peer_apps.sleep(number)
