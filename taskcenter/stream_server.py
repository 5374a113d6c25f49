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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="Unix socket the web workers pass to.")
    parser.add_argument("--niceness", type=int, default=NICENESS, help="Default: %(default)s.")
    options = parser.parse_args(argv)
    if options.niceness:
        os.nice(options.niceness)
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
