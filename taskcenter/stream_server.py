"""The stream server: the task event streams of the web workers' connections, in a process of
their own (``python -m taskcenter.stream_server --socket PATH``, started by ``run_service``).

It serves the same ASGI application as the web workers, on no port: the workers pass it each
connection whose request is a stream (``taskcenter.lib.connection_handover``). It runs at a
lower CPU priority than they do: a stream's events may wait a few milliseconds for a core, an
API request should not.
"""

from __future__ import annotations

import argparse
import os

from uvicorn import Config

# Added to the process's nice value (0 for the web workers).
NICENESS = 10
# The event feed's pace here, unless set otherwise (taskcenter.settings, STREAM_*). The web
# workers read every 1 ms per open stream and wake the streams 4 ms apart, to leave their
# requests the GIL; this process serves streams and little else, so it reads more often
# (0.6 s apart at 1,000 streams instead of 1 s). bench/live.py, 1,000 streams, 100 events/s:
# delivery p95 1.01 s -> 0.62 s, the API list's p95 beside them 1.14x -> 1.09x its p95
# without them (docs/benchmarks.md).
PACE = {
    "TASKCENTER_STREAM_READ_GAP_PER_STREAM_SECONDS": "0.0006",
    "TASKCENTER_STREAM_WAKE_PAUSE_SECONDS": "0.002",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="Unix socket the web workers pass to.")
    parser.add_argument("--niceness", type=int, default=NICENESS, help="Default: %(default)s.")
    options = parser.parse_args(argv)
    if options.niceness:
        os.nice(options.niceness)
    for name, value in PACE.items():
        os.environ.setdefault(name, value)
    # Loaded after the nice value is set: loading Django already gives way to the web workers,
    # which start at the same time.
    from taskcenter.asgi import application
    from taskcenter.lib.connection_handover import HandedOverServer
    from taskcenter.web_worker import GRACEFUL_SHUTDOWN_SECONDS

    config = Config(
        application,
        lifespan="off",  # Django has none
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    HandedOverServer(config, options.socket).run()


if __name__ == "__main__":
    main()
