"""Runs one peer through the shapes of ``bench/peers.py``, in the peers' virtual environment.

    var/bench-peers-venv/bin/python -m bench.peer_apps.drive --system celery-prefork \\
        --shapes drain,e2e,sleep,latency --count 200 --sleep-count 50 --latency-count 100

with ``PEERS_DIR`` (a scratch directory: the task record and the workers' logs),
``PEERS_REDIS_URL`` (a Redis database it may flush) and ``PEERS_POSTGRES_URL`` (a fresh
PostgreSQL database, for procrastinate, which applies its schema there). Prints one JSON line:
each shape's figures and what the peer kept in its store after the drain.

Worker processes run in sessions of their own and are stopped, with everything they forked, when
a shape ends, when a wait times out, and when this driver is terminated.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.report import percentile

VENV_BIN = Path(sys.executable).parent
QUEUE = "peers"
SCRATCH = Path(os.environ.get("PEERS_DIR", "."))
RECORD = Path(os.environ.setdefault("PEERS_RECORD", str(SCRATCH / "record.txt")))
REDIS_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/11")
POSTGRES_URL = os.environ.get("PEERS_POSTGRES_URL", "")
STALL_TIMEOUT = 60.0  # no task finished for this long: the run has failed
SLEEP_CONCURRENCY = 16

_running: list[subprocess.Popen] = []


def redis_summary(redis) -> str:
    """The keys in a Redis database, counted by their name with ids blanked out, with TTLs."""
    kinds: Counter[str] = Counter()
    ttls: dict[str, int] = {}
    for key in redis.scan_iter(count=1000):
        name = re.sub(r"[A-Za-z0-9-]{16,}", "<id>", key.decode())
        kinds[name] += 1
        ttls.setdefault(name, redis.ttl(key))
    parts = []
    for name, count in sorted(kinds.items(), key=lambda item: -item[1]):
        ttl = ttls[name]
        parts.append(f"{count} {name}" + (f" (TTL {ttl} s)" if ttl > 0 else ""))
    return "; ".join(parts) or "nothing"


# --- the peers --------------------------------------------------------------------------------


class Peer:
    """How to start a peer's worker, enqueue its tasks, and empty its store."""

    concurrency = 1

    def worker_commands(self, concurrency: int) -> list[list[str]]:
        raise NotImplementedError

    def enqueue(self, task: str, number: int) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def stored(self) -> str:
        raise NotImplementedError


class RedisPeer(Peer):
    def __init__(self) -> None:
        from redis import Redis

        self.redis = Redis.from_url(REDIS_URL)

    def reset(self) -> None:
        self.redis.flushdb()

    def stored(self) -> str:
        return redis_summary(self.redis)


class CeleryPeer(RedisPeer):
    def __init__(self, pool: str, concurrency: int) -> None:
        super().__init__()
        from bench.peer_apps import celery_app

        self.tasks = {"noop": celery_app.noop, "sleep": celery_app.sleep}
        self.pool, self.concurrency = pool, concurrency

    def worker_commands(self, concurrency: int) -> list[list[str]]:
        return [
            [
                *(str(VENV_BIN / "celery"), "-A", "bench.peer_apps.celery_app", "worker"),
                *("-P", self.pool, "-c", str(concurrency), "-Q", QUEUE, "-l", "WARNING"),
                *("--without-mingle", "--without-gossip", "--without-heartbeat"),
            ]
        ]

    def enqueue(self, task: str, number: int) -> None:
        self.tasks[task].delay(number)


class RQPeer(RedisPeer):
    def __init__(self, worker_class: str) -> None:
        super().__init__()
        from rq import Queue

        from bench.peer_apps import rq_jobs

        self.queue = Queue(QUEUE, connection=self.redis)
        self.tasks = {"noop": rq_jobs.noop, "sleep": rq_jobs.sleep}
        self.worker_class = worker_class

    def worker_commands(self, concurrency: int) -> list[list[str]]:
        # One job at a time per process: concurrency is that many processes.
        command = [
            *(str(VENV_BIN / "rq"), "worker", "--url", REDIS_URL),
            *("--worker-class", self.worker_class, "--logging_level", "WARNING", QUEUE),
        ]
        return [command] * concurrency

    def enqueue(self, task: str, number: int) -> None:
        self.queue.enqueue(self.tasks[task], number)


class ProcrastinatePeer(Peer):
    def __init__(self) -> None:
        from bench.peer_apps import procrastinate_app

        self.app = procrastinate_app.app.open()
        self.tasks = {"noop": procrastinate_app.noop, "sleep": procrastinate_app.sleep}
        self.app.schema_manager.apply_schema()

    def _query(self, sql: str) -> list:
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            cursor = connection.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def worker_commands(self, concurrency: int) -> list[list[str]]:
        return [
            [
                *(str(VENV_BIN / "procrastinate"), "--app=bench.peer_apps.procrastinate_app.app"),
                *("worker", "-q", QUEUE, "-c", str(concurrency)),
            ]
        ]

    def enqueue(self, task: str, number: int) -> None:
        self.tasks[task].defer(number=number)

    def reset(self) -> None:
        self._query("TRUNCATE procrastinate_jobs RESTART IDENTITY CASCADE")

    def stored(self) -> str:
        counts = self._query(
            "SELECT (SELECT count(*) FROM procrastinate_jobs),"
            " (SELECT count(*) FROM procrastinate_events)"
        )[0]
        return f"{counts[0]} procrastinate_jobs rows; {counts[1]} procrastinate_events rows"


def make_peer(system: str) -> Peer:
    if system == "celery-prefork":
        return CeleryPeer("prefork", 1)
    if system == "celery-prefork-2":
        return CeleryPeer("prefork", 2)
    if system == "celery-threads":
        return CeleryPeer("threads", 1)
    if system == "rq":
        return RQPeer("rq.worker.Worker")
    if system == "rq-simple":
        return RQPeer("rq.worker.SimpleWorker")
    if system == "procrastinate":
        return ProcrastinatePeer()
    raise SystemExit(f"unknown peer {system!r}")


# --- workers and the record -------------------------------------------------------------------


def start_workers(peer: Peer, concurrency: int, label: str) -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    started = []
    for number, command in enumerate(peer.worker_commands(concurrency)):
        with (SCRATCH / f"{label}-{number}.log").open("w") as log:
            process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        _running.append(process)
        started.append(process)
    return started


def stop_workers() -> None:
    for process in _running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in _running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        _signal_group(process, signal.SIGKILL)  # whatever it forked and left behind
        process.wait()
    _running.clear()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def read_record() -> dict[int, tuple[float, float]]:
    found = {}
    if RECORD.exists():
        for line in RECORD.read_text().splitlines():
            number, started, finished = line.split()
            found[int(number)] = (float(started), float(finished))
    return found


def wait_for(numbers: set[int], workers: list[subprocess.Popen]) -> dict[int, tuple[float, float]]:
    seen, progressed = -1, time.monotonic()
    while True:
        found = read_record()
        if numbers <= found.keys():
            return {number: found[number] for number in numbers}
        if len(found) != seen:
            seen, progressed = len(found), time.monotonic()
        dead = [process.args for process in workers if process.poll() is not None]
        if dead or time.monotonic() - progressed > STALL_TIMEOUT:
            logs = "".join(
                f"--- {log.name} ---\n{log.read_text()[-2000:]}\n"
                for log in sorted(SCRATCH.glob("*.log"))
            )
            why = f"worker exited: {dead[0]}" if dead else f"nothing done for {STALL_TIMEOUT:g} s"
            raise SystemExit(f"{len(numbers & found.keys())}/{len(numbers)} done, {why}\n{logs}")
        time.sleep(0.02)


def warm_up(peer: Peer, workers: list[subprocess.Popen]) -> None:
    """One task through, then a pause: the worker is up, connected and idle."""
    peer.enqueue("noop", -1)
    wait_for({-1}, workers)
    time.sleep(1.0)


def fresh(peer: Peer) -> None:
    peer.reset()
    RECORD.write_text("")


# --- the shapes -------------------------------------------------------------------------------


def drain(peer: Peer, task: str, count: int, concurrency: int) -> dict:
    """``count`` tasks waiting, then the workers start: worker start to the last task done."""
    fresh(peer)
    for number in range(count):
        peer.enqueue(task, number)
    started = time.time()
    workers = start_workers(peer, concurrency, f"{task}-drain")
    try:
        done = wait_for(set(range(count)), workers)
    finally:
        stop_workers()
    first = min(begun for begun, _ in done.values())
    last = max(finished for _, finished in done.values())
    return {
        "count": count,
        "seconds": last - started,
        "rate": count / (last - started),
        "startup": first - started,
        "span_rate": count / (last - first),
        "workers": len(workers),
    }


def end_to_end(peer: Peer, count: int) -> dict:
    """A running worker; ``count`` tasks enqueued one after the other, each call timed."""
    fresh(peer)
    workers = start_workers(peer, 1 if isinstance(peer, RQPeer) else peer.concurrency, "e2e")
    try:
        warm_up(peer, workers)
        calls = []
        first = time.time()
        for number in range(count):
            before = time.perf_counter()
            peer.enqueue("noop", number)
            calls.append((time.perf_counter() - before) * 1000)
        done = wait_for(set(range(count)), workers)
    finally:
        stop_workers()
    last = max(finished for _, finished in done.values())
    return {
        "count": count,
        "seconds": last - first,
        "rate": count / (last - first),
        "enqueue_p50": percentile(calls, 0.50),
        "enqueue_p95": percentile(calls, 0.95),
    }


def latency(peer: Peer, count: int) -> dict:
    """An idle worker; tasks 50-150 ms apart; enqueue returned to the task's start."""
    fresh(peer)
    workers = start_workers(peer, 1 if isinstance(peer, RQPeer) else peer.concurrency, "latency")
    try:
        warm_up(peer, workers)
        returned = []
        for number in range(count):
            peer.enqueue("noop", number)
            returned.append(time.time())
            time.sleep(random.uniform(0.05, 0.15))
        done = wait_for(set(range(count)), workers)
    finally:
        stop_workers()
    waits = [(done[number][0] - returned[number]) * 1000 for number in range(count)]
    return {"count": count, "p50": percentile(waits, 0.50), "p95": percentile(waits, 0.95)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", required=True)
    parser.add_argument("--shapes", default="drain,e2e,sleep,latency")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--sleep-count", type=int, default=50)
    parser.add_argument("--latency-count", type=int, default=100)
    args = parser.parse_args()
    # Terminated by bench/peers.py (a timeout): stop the workers on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    peer = make_peer(args.system)
    results: dict[str, object] = {}
    try:
        for shape in args.shapes.split(","):
            if shape == "drain":
                results["drain"] = drain(peer, "noop", args.count, peer.concurrency)
                results["stored"] = peer.stored()
            elif shape == "e2e":
                results["e2e"] = end_to_end(peer, args.count)
            elif shape == "sleep":
                results["sleep"] = drain(peer, "sleep", args.sleep_count, SLEEP_CONCURRENCY)
            elif shape == "latency":
                results["latency"] = latency(peer, args.latency_count)
            print(f"  {args.system} {shape}: {results.get(shape)}", file=sys.stderr)
    finally:
        stop_workers()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
