"""What the benchmarks share: package versions, plain-text tables, and a server's port."""

import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path


def versions(*names: str, extra: tuple[str, ...] = ()) -> str:
    """``Python x.y.z, <extra>, <name> <version>...`` for the packages that are installed."""
    found = [f"Python {platform.python_version()}", *extra]
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def print_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for row in (headers, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not start listening within 60 s")


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)), 1) - 1]


def server_env(tmp: Path, database: str, root: Path) -> dict[str, str]:
    """Environment for a bench's driver and server: a fresh SQLite file, no throttles."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "taskcenter.settings",
        "LOG_LEVEL": "WARNING",
        "TASKCENTER_VAR_DIR": str(tmp),
        "DATABASE_URL": f"sqlite:///{tmp}/{database}",
        "THROTTLE_USER_RATE": "1000000/min",
        "THROTTLE_ANON_RATE": "1000000/min",
        "TASKCENTER_DEMO_KINDS": "true",
        "PYTHONPATH": str(root),
    }
    env.pop("DEBUG", None)
    return env


def run_driver(script: str, argument: int, env: dict[str, str], root: Path) -> dict:
    """Run ``script --driver argument`` (it seeds the database); its last line is JSON."""
    started = time.perf_counter()
    command = [sys.executable, script, "--driver", str(argument)]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-5000:])
        raise SystemExit(f"{argument}: driver failed ({done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["seed_s"] = time.perf_counter() - started
    return result


@contextmanager
def gunicorn(
    env: dict[str, str],
    root: Path,
    log: Path,
    *,
    workers: int,
    timeout: int,
    threads: int = 1,
    asgi: bool = False,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real gunicorn serving the bench's database: (base URL, process); stopped on exit.

    ``asgi`` serves it as ``run_service`` does (uvicorn workers on ``taskcenter.asgi``);
    otherwise WSGI with ``threads`` threads per worker.
    """
    port = free_port()
    if asgi:
        worker_class = "taskcenter.web_worker.WebWorker"
        application = ("taskcenter.asgi:application", "--worker-class", worker_class)
    else:
        application = ("taskcenter.wsgi", "--threads", str(threads))
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            *application,
            *("--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--no-control-socket"),
            *("--timeout", str(timeout), "--error-logfile", str(log)),
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, server, log)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def postgres_admin(url: str):
    """An autocommit connection to the server's ``postgres`` database, and the name in ``url``."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    return psycopg.connect(admin, autocommit=True), parts.path.lstrip("/")


def fresh_postgres(url: str) -> None:
    """Drop the database of ``url`` and create it empty."""
    connection, name = postgres_admin(url)
    with connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_postgres(url: str) -> None:
    connection, name = postgres_admin(url)
    with connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
