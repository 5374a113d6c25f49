"""A PostgreSQL server of the test's own (initdb in a temporary directory, its own port), for
tests that restart or stop the server: the shared one serves other test runs meanwhile."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("TASKCENTER_PG_BIN", "/usr/lib/postgresql/15/bin"))
# PostgreSQL refuses to run as root; as root, run its programs as this user.
PG_USER = "postgres"


def missing_reason() -> str | None:
    """Why no throwaway server can be started here, or None if it can."""
    for program in ("initdb", "pg_ctl", "createdb"):
        if not (PG_BIN / program).exists():
            return f"needs the PostgreSQL server programs in {PG_BIN} (set TASKCENTER_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root needs a {PG_USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root needs runuser to run PostgreSQL as another user"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThrowawayPostgres:
    """``start()``, ``restart()``, ``stop()``; ``url`` names its database ``taskcenter``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="taskcenter-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.url = f"postgres://{PG_USER}@127.0.0.1:{self.port}/taskcenter"
        if os.geteuid() == 0:
            account = pwd.getpwnam(PG_USER)
            os.chown(self.root, account.pw_uid, account.pw_gid)

    def _run(self, program: str, *args: str, timeout: float = 120) -> None:
        command = [str(PG_BIN / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", PG_USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", PG_USER, "--auth=trust", "--no-sync")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, "taskcenter")

    def restart(self) -> None:
        """What ``pg_ctlcluster 15 main restart`` does: fast shutdown (every connection is
        ended), then start again with the same options; returns once it accepts connections."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "restart"
        )

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
