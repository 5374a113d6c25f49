"""Which process serves a TCP connection: the one holding the server's end of it (Linux /proc)."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

_SOCKET_LINK = re.compile(r"socket:\[(\d+)\]")


def serving_pid(client: socket.socket) -> int | None:
    """The process holding the accepted end of ``client``'s connection to a local IPv4 server,
    or None (not accepted yet, or gone)."""
    client_port = client.getsockname()[1]
    server_port = client.getpeername()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        if local_port == server_port and remote_port == client_port:
            inode = int(fields[9])
            break
    if not inode:  # 0 while it waits in the listening socket's queue
        return None
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            for fd in (process / "fd").iterdir():
                match = _SOCKET_LINK.match(os.readlink(fd))
                if match and int(match.group(1)) == inode:
                    return int(process.name)
        except OSError:  # a process that ended, or one we may not look into
            continue
    return None
