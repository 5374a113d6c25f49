"""Which processes serve a TCP connection: those holding the server's end of it (Linux /proc)."""

from __future__ import annotations

import http.client
import os
from collections.abc import Iterable


def holders(
    client: http.client.HTTPConnection, port: int, among: Iterable[int] | None = None
) -> set[int]:
    """The processes of ``among`` (default: every process) that hold the server's end of
    ``client``'s connection to the local server on ``port``; none while it waits unaccepted."""
    assert client.sock is not None
    client_port = client.sock.getsockname()[1]
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
                if int(local, 16) == port and int(remote, 16) == client_port:
                    inodes.add(f"socket:[{fields[9]}]")
    if among is None:
        among = (int(name) for name in os.listdir("/proc") if name.isdigit())
    found = set()
    for pid in among:
        try:
            with os.scandir(f"/proc/{pid}/fd") as descriptors:
                if any(os.readlink(entry.path) in inodes for entry in descriptors):
                    found.add(pid)
        except OSError:  # a process that ended, or one we may not look into
            continue
    return found
