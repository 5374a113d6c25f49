"""The procrastinate app on PostgreSQL (the database in ``PEERS_POSTGRES_URL``); its workers
hear new jobs through LISTEN/NOTIFY, its default."""

import os

from procrastinate import App, PsycopgConnector

from bench import peer_apps

app = App(connector=PsycopgConnector(conninfo=os.environ.get("PEERS_POSTGRES_URL", "")))


@app.task(name="peers.noop", queue="peers")
def noop(number: int) -> None:
    peer_apps.noop(number)


@app.task(name="peers.sleep", queue="peers")
def sleep(number: int) -> None:
    peer_apps.sleep(number)
