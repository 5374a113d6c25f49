"""Run the whole service in the foreground: the web server and one worker, as child processes
(and, for a demo, the sandbox platform that stands in for the remote platforms).

Each child gets its own process group, so a Ctrl-C in the terminal reaches only this supervisor,
which forwards it exactly once. That matters: the worker treats a second signal as "exit now,
abandon running attempts", and the terminal would otherwise deliver the first one itself.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from taskcenter.checks import sandbox_addresses
from taskcenter.web_worker import STREAM_SOCKET_ENV

MANAGE_PY = Path(settings.BASE_DIR) / "manage.py"
# Long enough for the worker to finish short attempts; longer ones are recovered by the reaper.
SHUTDOWN_GRACE_SECONDS = 30.0
# Under the supervisor's grace, so gunicorn gives up on slow requests before it is killed.
WEB_GRACEFUL_TIMEOUT_SECONDS = 20
# What a first Ctrl-C becomes for each child. gunicorn's SIGINT is a quick shutdown; SIGTERM is
# its graceful stop: in-flight requests finish (open event streams are cut after a few seconds,
# see taskcenter.web_worker).
# The sandbox platforms have nothing to finish: SIGTERM ends them at once, even when they were
# started with SIGINT ignored (a background job of a script, where `make run &` is one).
FIRST_STOP_SIGNAL = {"web": signal.SIGTERM, "streams": signal.SIGTERM, "sandbox": signal.SIGTERM}


class Command(BaseCommand):
    help = "Start the web server (gunicorn, uvicorn workers) and a worker; stop both with Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("PORT") or 8000),
            help="Web port (default: $PORT or 8000).",
        )
        parser.add_argument("--host", default="127.0.0.1", help="Default: %(default)s.")
        parser.add_argument(
            "--concurrency", type=int, default=8, help="Worker threads (default: %(default)s)."
        )
        parser.add_argument("--no-worker", action="store_true", help="Start only the web server.")
        parser.add_argument(
            "--with-sandbox",
            action="store_true",
            help="Also start the sandbox platform where the settings point the platforms at it "
            "(a loopback BASE_URL), unless something already listens there. For demos.",
        )

    def handle(self, *args, port, host, concurrency, no_worker, with_sandbox, **options):
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1")
        ensure_port_free(host, port)
        # whitenoise serves the admin's CSS from STATIC_ROOT; DEBUG stays off.
        call_command("collectstatic", interactive=False, verbosity=0)

        # Web and worker write their metrics' values to files here, and the web's /metrics adds
        # up all of them (prometheus-client's multiprocess mode): without it a scrape would see
        # one gunicorn worker's requests and none of the worker's attempts.
        metrics_dir, made_metrics_dir = prepare_metrics_dir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        # The web workers pass the event streams' connections to the stream server here: a
        # directory of this run's own (0700), so that two services never share one.
        stream_dir = tempfile.mkdtemp(prefix="taskcenter-streams-")
        os.environ[STREAM_SOCKET_ENV] = str(Path(stream_dir) / "socket")
        try:
            self.supervise(host, port, concurrency, no_worker, with_sandbox)
        finally:
            shutil.rmtree(stream_dir, ignore_errors=True)
            if made_metrics_dir:
                shutil.rmtree(metrics_dir, ignore_errors=True)

    def supervise(
        self, host: str, port: int, concurrency: int, no_worker: bool, with_sandbox: bool
    ) -> None:
        children = {}
        sandbox = ""
        sandboxes = []
        if with_sandbox:
            for address in sandbox_addresses():
                if port_is_free(*address):
                    sandboxes.append((address, start_sandbox(*address)))
                    sandbox = "{}:{}".format(*address)
                else:
                    sandbox = "{}:{} (already running, used as it is)".format(*address)
        children.update({f"sandbox {address[1]}": child for address, child in sandboxes})
        children["streams"] = start_stream_server(os.environ[STREAM_SOCKET_ENV])
        children["web"] = start_web(host, port)
        if not no_worker:
            children["worker"] = start_worker(concurrency)
        supervisor = Supervisor(children)
        supervisor.install_signal_handlers()
        started = [(host, port)] + [address for address, _child in sandboxes]
        if all(wait_for_port(*address, supervisor) for address in started):
            self.print_banner(host, port, no_worker, sandbox)
        exit_code = supervisor.run()
        if exit_code:
            raise CommandError(
                f"Stopped because a process exited unexpectedly (code {exit_code}).",
                returncode=exit_code,
            )

    def print_banner(self, host: str, port: int, no_worker: bool, sandbox: str) -> None:
        url = f"http://{local_address(host)}:{port}"
        secret = Path(settings.VAR_DIR) / "admin_password"
        lines = [
            "",
            "Task Center is running",
            f"  admin:   {url}/admin/  (user admin, password in {secret})",
            f"  web:     gunicorn + uvicorn (ASGI) on {host}:{port}",
            "  streams: the task event streams, in a process of their own",
            "  worker:  " + ("not started (--no-worker)" if no_worker else "manage.py run_worker"),
            f"  data:    {settings.DATABASES['default']['NAME']}",
            *(
                [f"  sandbox: the sandbox platform on {sandbox}, standing in for the platforms"]
                if sandbox
                else []
            ),
            "  stop:    Ctrl-C (waits for running attempts; press again to force)",
            "",
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
        self.stdout.flush()


def prepare_metrics_dir() -> tuple[str, bool]:
    """The multiprocess metrics directory: ``$PROMETHEUS_MULTIPROC_DIR`` emptied of an earlier
    run's files (prometheus-client would add them to this run's), or a new one removed on exit.
    Returns it and whether it was made here."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        return given, False
    return tempfile.mkdtemp(prefix="taskcenter-metrics-"), True


def ensure_port_free(host: str, port: int) -> None:
    """Fail with a clear message now rather than after gunicorn's own retries."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on {host}:{port} ({exc.strerror}). "
                "Pick another port with --port or PORT=..."
            ) from exc


def port_is_free(host: str, port: int) -> bool:
    try:
        ensure_port_free(host, port)
    except CommandError:
        return False
    return True


def start_sandbox(host: str, port: int) -> subprocess.Popen:
    command = [sys.executable, str(MANAGE_PY), "run_sandbox_platform"]
    command += ["--host", host, "--port", str(port)]
    return subprocess.Popen(command, cwd=settings.BASE_DIR, process_group=0)


def start_web(host: str, port: int) -> subprocess.Popen:
    # uvicorn workers on the ASGI application: an open event stream holds no thread.
    command = [sys.executable, "-m", "gunicorn", "taskcenter.asgi:application"]
    command += ["--worker-class", "taskcenter.web_worker.WebWorker"]
    command += ["--bind", f"{host}:{port}", "--workers", "2"]
    # No control socket: it lives at one path per user, so two services on one machine (a demo
    # and a test run) would fight over it, and nothing here uses it.
    command += ["--access-logfile", "-", "--no-control-socket"]
    command += ["--graceful-timeout", str(WEB_GRACEFUL_TIMEOUT_SECONDS)]
    return subprocess.Popen(command, cwd=settings.BASE_DIR, process_group=0)


def start_stream_server(path: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "taskcenter.stream_server", "--socket", path]
    return subprocess.Popen(command, cwd=settings.BASE_DIR, process_group=0)


def start_worker(concurrency: int) -> subprocess.Popen:
    command = [sys.executable, str(MANAGE_PY), "run_worker", "--concurrency", str(concurrency)]
    return subprocess.Popen(command, cwd=settings.BASE_DIR, process_group=0)


def local_address(host: str) -> str:
    """Where to reach a server bound to ``host`` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104


def wait_for_port(host: str, port: int, supervisor: "Supervisor", timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and supervisor.all_alive():
        try:
            with socket.create_connection((local_address(host), port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


class Supervisor:
    """Watch the children; stop them all when asked to or when any of them dies."""

    def __init__(self, children: dict[str, subprocess.Popen]) -> None:
        self.children = children
        self.stop_signal: int | None = None

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        # The first signal asks each child for its graceful stop; a second one is passed on
        # as it came, which makes the worker give up its running attempts at once.
        first = self.stop_signal is None
        self.stop_signal = signum
        self._send(signum, translate=first)

    def _send(self, signum: int, translate: bool = False) -> None:
        for name, child in self.children.items():
            if child.poll() is None:
                role = name.split()[0]  # "sandbox 8900" is a sandbox
                child.send_signal(FIRST_STOP_SIGNAL.get(role, signum) if translate else signum)

    def all_alive(self) -> bool:
        return all(child.poll() is None for child in self.children.values())

    def run(self) -> int:
        """Block until every child has exited; return 0 or the code of the one that crashed."""
        crashed_code = 0
        while self.all_alive():
            time.sleep(0.2)
        if self.stop_signal is None:
            name, child = next((n, c) for n, c in self.children.items() if c.poll() is not None)
            crashed_code = child.returncode or 1
            sys.stderr.write(f"The {name} process exited with code {child.returncode}; ")
            sys.stderr.write("stopping the others.\n")
            self._send(signal.SIGTERM)
        self._wait_all()
        return crashed_code

    def _wait_all(self) -> None:
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        for name, child in self.children.items():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                sys.stderr.write(f"The {name} process did not stop in time; killing it.\n")
                child.kill()
                child.wait()
