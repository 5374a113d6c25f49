"""The live console under load: many open event streams on one service while tasks change.

    .venv/bin/python bench/live.py [--streams 1000] [--rate 100] [--seconds 30] [--repeat 2]
        [--database-url postgres://...] [--client-nice 0]

Each run starts the service as ``make run`` does (``manage.py run_service``: gunicorn with
uvicorn workers on the ASGI application, the stream server and a worker) on a fresh database (a
SQLite file in a temp dir, or the PostgreSQL database of ``--database-url``, dropped and
created), with one normal user and a Bearer token. Then three phases of ``--seconds`` each:

no streams   a producer process writes ``--rate`` task events a second (``create_task`` of a
             pending ``demo.noop`` task: one ``created`` event each, spaced evenly), while a
             sampler process times ``GET /api/v1/tasks?page_size=20`` back to back (20 ms
             apart) over a keep-alive connection: the list's p50/p95 without streams.
streams      ``--streams`` clients open ``GET /api/v1/events/stream`` first (this process,
             uvloop, plain sockets, HTTP/1.1 chunked), the web processes' memory (RSS of the
             gunicorn master and workers and of the stream server, from /proc) is read before
             and after they connect,
             then the same producer and sampler run again. Every client counts the events it
             receives (each must receive every one: the others count ``data:`` lines in the bytes
             as they come, the cheapest a client can be); ``--measuring`` of them parse the
             chunked body and each event, and take its delivery latency: the client's clock at
             receipt minus the event's ``at`` (written by the producer in the same transaction
             as the event), both on this machine's clock. Then the clients close.
no streams   the first phase again, 3 s after the streams closed. Its list times and the
             first phase's are pooled as "no streams": the table grows through the run (the list
             counts the user's tasks) and the machine's other load drifts, and a before-and-after
             baseline weighs both on the streams' phase's either side alike.

Targets (issue 14): delivery p95 under 1 s, and the list's p95 with streams open within 20 %
of its p95 without. All processes share the machine's cores: the thousand stream clients'
own reading (2.5 s of CPU in a 20 s phase) takes them from the list they are measured beside,
so the list's figures are an upper bound. ``--client-nice 10`` runs the clients at a lower
priority than the server, as if they were browsers elsewhere; the producer and the list
sampler always run at the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import uvloop
from report import (  # sibling module: these files run as scripts
    drop_postgres,
    free_port,
    fresh_postgres,
    percentile,
    print_table,
    server_env,
    versions,
)

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "manage.py")]
USER = "bench-live"
LIST_PATH = "/api/v1/tasks?page_size=20"
STREAM_PATH = "/api/v1/events/stream"
CONNECT_BATCH = 100  # streams opened at once, so the listen backlog never overflows
# The stream clients stand in for browsers on other machines, yet share the cores here; at 0
# they compete with the server as its own processes do (the harder case, the default).
CLIENT_NICE = 0
STREAMS_GONE_SECONDS = 3.0  # after the clients close, for the stream server to let them go


# --- the producer (a process of its own, with Django) -----------------------------------------


def produce(rate: float, seconds: float) -> None:
    """Write ``rate`` task events a second for ``seconds``; print how many as JSON."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from taskcenter import lifecycle

    owner = get_user_model().objects.get(username=USER)
    interval = 1.0 / rate
    started = time.monotonic()
    made = 0
    while (due := started + made * interval) < started + seconds:
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        lifecycle.create_task(owner=owner, task_type="demo.noop", start=False)
        made += 1
    print(json.dumps({"events": made, "seconds": time.monotonic() - started}))


def setup_user() -> None:
    """The bench's user (not staff: its streams are owner-scoped) and its token, printed."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from taskcenter.models.tokens import ApiToken

    user = get_user_model().objects.create_user(USER, password=None)
    _, key = ApiToken.objects.issue(user)
    print(json.dumps({"token": key}))


# --- the list sampler (a process of its own, so the stream clients do not slow it) -------------


def sample_list(port: int, token: str, seconds: float, out: multiprocessing.Queue) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"}
    times: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        connection.request("GET", LIST_PATH, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            times.append(time.perf_counter() - started)
        else:
            errors += 1
        time.sleep(0.02)
    out.put({"times": times, "errors": errors})


# --- the stream clients (asyncio in this process) ----------------------------------------------


@dataclass
class Client:
    measuring: bool
    received: int = 0
    latencies: list[float] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    error: str = ""


async def _read_chunk(reader: asyncio.StreamReader) -> bytes:
    size_line = await reader.readline()
    size = int(size_line.split(b";")[0].strip() or b"0", 16)
    if size == 0:
        raise ConnectionError("the stream ended")
    chunk = await reader.readexactly(size)
    await reader.readexactly(2)
    return chunk


def _request(port: int, token: str, query: str = "") -> bytes:
    path = f"{STREAM_PATH}?{query}" if query else STREAM_PATH
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()


async def run_client(port: int, request: bytes, client: Client) -> None:
    """One EventSource-like client that times every message: parses the chunked body."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        client.error = f"connect: {exc}"
        client.connected.set()
        return
    writer.write(request)
    try:
        status = await reader.readline()
        if b" 200 " not in status:
            client.error = status.decode(errors="replace").strip()
            return
        chunked = False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            chunked |= line.lower().startswith(b"transfer-encoding: chunked")
        buffer = b""
        while True:
            data = await _read_chunk(reader) if chunked else await reader.read(65536)
            if not data:
                raise ConnectionError("the stream ended")
            buffer += data
            *messages, buffer = buffer.split(b"\n\n")
            now = time.time()
            for message in messages:
                if message.startswith(b": connected"):
                    client.connected.set()
                if b"\ndata: " not in message and not message.startswith(b"data: "):
                    continue
                client.received += 1
                payload = message[message.index(b"data: ") + 6 :]
                at = datetime.fromisoformat(json.loads(payload)["at"]).timestamp()
                client.latencies.append(now - at)
    except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
        client.error = client.error or f"{type(exc).__name__}: {exc}"
    finally:
        client.connected.set()
        writer.close()


class CountingClient(asyncio.Protocol):
    """A client that only counts messages, as cheaply as it can: the bench's thousand clients
    share the cores with the server they load. A message is a ``\ndata: `` in the body (the
    chunk framing's hex sizes cannot contain one); the status line must say 200."""

    MARK = b"\ndata: "

    def __init__(self, client: Client, request: bytes) -> None:
        self.client, self.request = client, request
        self.tail = b""
        self.head = b""
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.client.connected.is_set():
            self.head += data
            if b": connected" not in self.head:
                return
            if b" 200 " not in self.head.split(b"\r\n", 1)[0]:
                self.client.error = self.head.split(b"\r\n", 1)[0].decode(errors="replace")
            self.client.connected.set()
            data, self.head = self.head, b""
        # A mark split across two reads: the previous read's last bytes go before this one's.
        joined = self.tail + data
        self.client.received += joined.count(self.MARK)
        self.tail = joined[-(len(self.MARK) - 1) :]

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.error = self.client.error or f"the stream ended ({exc})"
        self.client.connected.set()
        if not self.closed.done():
            self.closed.set_result(None)


async def run_counting_client(port: int, request: bytes, client: Client) -> None:
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_connection(
            lambda: CountingClient(client, request), "127.0.0.1", port
        )
    except OSError as exc:
        client.error = f"connect: {exc}"
        client.connected.set()
        return
    try:
        await protocol.closed
    finally:
        transport.close()


# --- the service ---------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# The web's processes: gunicorn's (master and workers) and the stream server they pass the
# streams to.
WEB_COMMANDS = (b"gunicorn", b"taskcenter.stream_server")


def _is_web(command: bytes) -> bool:
    return any(name in command for name in WEB_COMMANDS)


def web_cpu_seconds(service_pid: int) -> float:
    """User and system CPU time of the service's web processes so far (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _descendants(service_pid):
        try:
            if not _is_web(Path(f"/proc/{pid}/cmdline").read_bytes()):
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def web_rss_bytes(service_pid: int) -> tuple[int, int]:
    """RSS of the service's web processes (gunicorn's and the stream server), and how many."""
    total = count = 0
    for pid in _descendants(service_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if not _is_web(command):
            continue
        count += 1
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total, count


def _wait_ready(port: int, token: str, service: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise SystemExit(
                f"run_service exited ({service.returncode}):\n{log.read_text()[-3000:]}"
            )
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", LIST_PATH, headers={"Authorization": f"Bearer {token}"})
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("the service did not answer within 90 s")


def _phase(port: int, token: str, env: dict, args: argparse.Namespace) -> dict:
    """The producer and the list sampler side by side for ``--seconds``."""
    os.setpriority(os.PRIO_PROCESS, 0, 0)  # this thread and what it starts: the server's peers
    results: multiprocessing.Queue = multiprocessing.Queue()
    sampler = multiprocessing.Process(target=sample_list, args=(port, token, args.seconds, results))
    sampler.start()
    produced = subprocess.run(
        [sys.executable, __file__, "--produce", str(args.rate), str(args.seconds)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if produced.returncode != 0:
        raise SystemExit(f"producer failed:\n{produced.stderr[-3000:]}")
    listed = results.get(timeout=args.seconds + 60)
    sampler.join()
    return {"produced": json.loads(produced.stdout.strip().splitlines()[-1]), "list": listed}


async def _with_streams(port: int, token: str, env: dict, args, service_pid: int) -> dict:
    os.setpriority(os.PRIO_PROCESS, 0, args.client_nice)
    rss_before, processes = web_rss_bytes(service_pid)
    clients = [Client(measuring=index < args.measuring) for index in range(args.streams)]
    request = _request(port, token, args.stream_query)
    tasks = []
    for start in range(0, len(clients), CONNECT_BATCH):
        batch = clients[start : start + CONNECT_BATCH]
        tasks += [
            asyncio.create_task(
                (run_client if client.measuring else run_counting_client)(port, request, client)
            )
            for client in batch
        ]
        await asyncio.wait_for(
            asyncio.gather(*(client.connected.wait() for client in batch)), timeout=60
        )
    await asyncio.sleep(2)  # let the web processes settle before reading their memory
    rss_after, _ = web_rss_bytes(service_pid)
    failed = [client.error for client in clients if client.error]
    web_cpu, own_cpu = web_cpu_seconds(service_pid), time.process_time()
    phase = await asyncio.to_thread(_phase, port, token, env, args)
    await asyncio.sleep(3)  # the last events on their way
    web_cpu, own_cpu = web_cpu_seconds(service_pid) - web_cpu, time.process_time() - own_cpu
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [value for client in clients for value in client.latencies]
    received = [client.received for client in clients]
    return {
        **phase,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "web_processes": processes,
        "failed": failed[:5],
        "failed_count": len(failed),
        "received_min": min(received),
        "received_median": statistics.median(received),
        "latencies": latencies,
        "web_cpu": web_cpu,
        "client_cpu": own_cpu,
    }


def one_run(args: argparse.Namespace, tmp: Path) -> dict:
    env = server_env(tmp, "live.sqlite3", ROOT)
    if args.database_url:
        fresh_postgres(args.database_url)
        env["DATABASE_URL"] = args.database_url
    subprocess.run([*MANAGE, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    made = subprocess.run(
        [sys.executable, __file__, "--setup-user"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    token = json.loads(made.stdout.strip().splitlines()[-1])["token"]
    port = free_port()
    log = tmp / "service.log"
    with log.open("w") as output:
        service = subprocess.Popen(
            [*MANAGE, "run_service", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(port, token, service, log)
        before = _quiet_phase(port, token, env, args, service.pid)
        with_streams = uvloop.run(_with_streams(port, token, env, args, service.pid))
        time.sleep(STREAMS_GONE_SECONDS)
        after = _quiet_phase(port, token, env, args, service.pid)
    finally:
        service.terminate()
        try:
            service.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, 9)
        if args.database_url:
            drop_postgres(args.database_url)
    return {"without": _pooled(before, after), "with": with_streams}


def _quiet_phase(port: int, token: str, env: dict, args, service_pid: int) -> dict:
    web_cpu = web_cpu_seconds(service_pid)
    phase = _phase(port, token, env, args)
    phase["web_cpu"] = web_cpu_seconds(service_pid) - web_cpu
    return phase


def _pooled(before: dict, after: dict) -> dict:
    """The phases without streams, one before the streams' phase and one after it, as one: the
    table grows by ``--rate`` tasks a second through the run (the list counts them) and the
    machine's other load drifts, and both then weigh on either side alike."""
    return {
        "produced": {
            key: before["produced"][key] + after["produced"][key] for key in ("events", "seconds")
        },
        "list": {
            "times": before["list"]["times"] + after["list"]["times"],
            "errors": before["list"]["errors"] + after["list"]["errors"],
        },
        "web_cpu": (before["web_cpu"] + after["web_cpu"]) / 2,
        "p95_before_after": (_ms(before["list"]["times"], 0.95), _ms(after["list"]["times"], 0.95)),
    }


def _ms(values: list[float], fraction: float) -> float:
    return percentile(values, fraction) * 1000 if values else float("nan")


def _spread(values: list[float], digits: int = 1) -> str:
    middle = statistics.median(values)
    return f"{middle:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def report(runs: list[dict], args: argparse.Namespace) -> None:
    rows = []
    for label, key in (("no streams", "without"), (f"{args.streams} streams", "with")):
        list_p50 = [_ms(run[key]["list"]["times"], 0.5) for run in runs]
        list_p95 = [_ms(run[key]["list"]["times"], 0.95) for run in runs]
        rate = [run[key]["produced"]["events"] / run[key]["produced"]["seconds"] for run in runs]
        if key == "with":
            p50 = _spread([_ms(run[key]["latencies"], 0.5) for run in runs])
            p95 = _spread([_ms(run[key]["latencies"], 0.95) for run in runs])
            top = _spread([_ms(run[key]["latencies"], 1.0) for run in runs], 0)
            per_stream = [
                (run[key]["rss_after"] - run[key]["rss_before"]) / args.streams / 1024
                for run in runs
            ]
            complete = [
                f"{run[key]['received_min']}/{run[key]['produced']['events']}" for run in runs
            ]
            memory = _spread(per_stream)
            delivered = ", ".join(complete)
        else:
            p50 = p95 = top = memory = delivered = "-"
        rows.append(
            (
                label,
                _spread(rate),
                delivered,
                p50,
                p95,
                top,
                memory,
                _spread(list_p50),
                _spread(list_p95),
            )
        )
    print_table(
        (
            "open streams",
            "events/s",
            "least received/produced",
            "delivery p50 ms",
            "delivery p95 ms",
            "max ms",
            "web KiB/stream",
            "list p50 ms",
            "list p95 ms",
        ),
        rows,
    )
    ratios = [
        _ms(run["with"]["list"]["times"], 0.95) / _ms(run["without"]["list"]["times"], 0.95)
        for run in runs
    ]
    print()
    print(f"list p95 with streams / without: {_spread(ratios, 2)} (target at most 1.20)")
    for run in runs:
        web = run["with"]
        print(
            f"web: {web['web_processes']} web processes, RSS {web['rss_before'] / 2**20:.0f}"
            f" -> {web['rss_after'] / 2**20:.0f} MiB with the streams open; "
            f"streams failed: {web['failed_count']} {web['failed']}; list errors: "
            f"{run['without']['list']['errors']} / {web['list']['errors']}; CPU during the "
            f"phase: web {run['without']['web_cpu']:.1f} s without streams, "
            f"{web['web_cpu']:.1f} s with them, the stream clients {web['client_cpu']:.1f} s "
            f"(of {args.seconds:g} s x {os.cpu_count()} cores); list p95 without streams "
            f"{'{:.1f} ms before, {:.1f} ms after'.format(*run['without']['p95_before_after'])}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--measuring", type=int, default=50, help="Clients that time events.")
    parser.add_argument("--rate", type=float, default=100.0, help="Task events per second.")
    parser.add_argument("--seconds", type=float, default=30.0, help="Length of each phase.")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--database-url", default=None, help="PostgreSQL (dropped, created).")
    parser.add_argument(
        "--stream-query",
        default="",
        help="The streams' filter (task_type=demo.flaky: streams that select none of the "
        "events, so nothing is delivered; the cost of open streams alone).",
    )
    parser.add_argument(
        "--client-nice",
        type=int,
        default=CLIENT_NICE,
        help="The stream clients' nice value (10: they give way to the server, as clients "
        "on other machines would).",
    )
    parser.add_argument("--produce", nargs=2, type=float, help=argparse.SUPPRESS)
    parser.add_argument("--setup-user", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.produce:
        produce(*args.produce)
        return
    if args.setup_user:
        setup_user()
        return
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"Machine: {platform.machine()} {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} cores, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
        + versions("Django", "gunicorn", "uvicorn")
    )
    print(
        f"Database: {database}; {args.streams} streams ({args.measuring} timing"
        f"{', ' + args.stream_query if args.stream_query else ''}), "
        f"clients at nice {args.client_nice}, {args.rate:g} events/s, {args.seconds:g} s per "
        f"phase, {args.repeat} run(s); "
        "figures: median (lowest-highest) over the runs"
    )
    runs = []
    for number in range(args.repeat):
        tmp = Path(tempfile.mkdtemp(prefix="tc-live-"))
        try:
            runs.append(one_run(args, tmp))
            print(f"  run {number + 1} done", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    report(runs, args)


if __name__ == "__main__":
    main()
