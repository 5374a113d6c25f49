"""Task Center next to its peers: Celery, RQ and procrastinate on the same task shapes.

    .venv/bin/python bench/peers.py [--count 2000] [--repeat 3] \\
        [--shapes drain,e2e,sleep,latency] [--systems celery-prefork,rq,tc-sqlite,...] \\
        [--postgres-url postgres://taskcenter:taskcenter@127.0.0.1:5432/tc_peers_bench] \\
        [--redis-url redis://127.0.0.1:6379/11]

The peers run in a virtual environment of their own, ``var/bench-peers-venv``, which this script
makes on first use (``python -m venv``, then pip with the versions pinned in ``PEER_PACKAGES``)
and makes again when the pins change; their apps are ``bench/peer_apps/`` and their driver,
which starts their workers and enqueues their tasks, is ``bench/peer_apps/drive.py`` run by that
environment's python. Task Center runs in this environment, through the functions of
``bench/worker_throughput.py`` and ``bench/wakeup_latency.py``: the same code that measures it
there measures it here.

Shapes (``N`` is ``--count``):

drain    no-op tasks: N enqueued first, then one worker process started; from the worker's
         start to the last task done (tasks/s). Start-up (to the first task) is printed apart.
e2e      no-op tasks: a worker runs (warmed up by one task) while the driver enqueues N tasks
         one after the other; from the first enqueue to the last task done (tasks/s), and the
         enqueue call's p50.
sleep    100 ms ``time.sleep`` tasks, 16 at a time: Celery ``-c 16`` (prefork: 16 child
         processes, threads: 16 threads), procrastinate ``--concurrency 16``, Task Center
         ``run_worker --concurrency 16`` (on either engine); RQ runs one job at a time per
         process, so RQ gets 16 worker processes (if the machine has the memory for them).
         ``--sleep-count`` tasks
         (default N/4), timed as drain.
latency  an idle worker; ``--latency-count`` no-op tasks enqueued one at a time, 50-150 ms
         apart; from the enqueue call returning to the task's start, p50 and p95. The peers'
         task bodies write their start time (``time.time()``) to a file; Task Center's is the
         execution's ``started_at``, written as the worker claims the task.

Every peer task writes one line to a file (its number, start and end time); that is how the
driver knows when the peers are done, and it costs each of them the same small write. The peers'
workers log warnings only (Celery ``-l WARNING``, ``rq worker --quiet``), as Task Center's
``LOG_LEVEL=WARNING``; Celery runs ``--without-mingle --without-gossip --without-heartbeat``
(one worker needs no cluster chatter, and mingle waits for replies at start).

Stores: the Redis database in ``--redis-url`` is flushed before each system and at the end; the
PostgreSQL database in ``--postgres-url`` is dropped and created again before each system that
uses it (procrastinate applies its schema there; Task Center migrates) and dropped at the end.
Task Center on SQLite gets a fresh file per run, as the other benchmarks.

Every system runs ``--repeat`` times, the systems in turn (their order rotates from run to run);
the table shows the median and the range of the runs. Each driver is a process group of its own
with a ``--timeout``; a system that fails is reported as failed and the others go on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import wakeup_latency  # sibling modules: these files run as scripts
import worker_throughput
from report import print_table, versions

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "var" / "bench-peers-venv"
PEER_PACKAGES = (
    "celery[redis]==5.7.0",
    "kombu==5.7.0",
    "redis==8.1.0",
    "rq==2.12.0",
    "procrastinate==3.10.0",
    "psycopg[binary]==3.3.9",
)
SHAPES = ("drain", "e2e", "sleep", "latency")
SLEEP_CONCURRENCY = 16
RQ_WORKER_MEMORY = 150 * 2**20  # what one more `rq worker` process may take, with margin


@dataclass(frozen=True)
class System:
    key: str
    label: str
    records: str  # what it keeps per task
    shapes: tuple[str, ...] = SHAPES
    postgres: bool = False
    redis: bool = False


SYSTEMS = (
    System(
        "celery-prefork",
        "Celery, prefork -c 1 (sleep: -c 16)",
        "nothing (no result backend; the message leaves Redis when acked)",
        redis=True,
    ),
    System(
        "celery-prefork-2",
        "Celery, prefork -c 2",
        "nothing (as above)",
        shapes=("drain", "e2e", "latency"),
        redis=True,
    ),
    System(
        "celery-threads",
        "Celery, threads -c 1 (sleep: -c 16)",
        "nothing (as above)",
        redis=True,
    ),
    System(
        "rq",
        "RQ, rq worker (a fork per job; sleep: 16 processes)",
        "job hash, result entry (TTL 500 s), finished registry entry",
        redis=True,
    ),
    System(
        "rq-simple",
        "RQ, SimpleWorker (no fork; sleep: 16 processes)",
        "job hash, result entry (TTL 500 s), finished registry entry",
        redis=True,
    ),
    System(
        "procrastinate",
        "procrastinate, PostgreSQL, -c 1 (sleep: -c 16)",
        "a jobs row and its events rows (kept)",
        postgres=True,
    ),
    System(
        "tc-sqlite",
        "Task Center, database engine, SQLite",
        "task row, execution row, events, engine job row, tally upserts",
    ),
    System(
        "tc-postgres",
        "Task Center, database engine, PostgreSQL",
        "task row, execution row, events, engine job row, tally upserts",
        postgres=True,
    ),
    System(
        "tc-rq",
        "Task Center, RQ engine, SQLite",
        "task row, execution row, events, tally upserts; RQ job hash and registries",
        redis=True,
    ),
)
BY_KEY = {system.key: system for system in SYSTEMS}


# --- Task Center's driver: one fresh database, the shapes in turn, in a subprocess --------------


def _executions(ids: list[int]):
    from taskcenter.models import TaskExecution

    return TaskExecution.objects.filter(task_id__in=ids, status="COMPLETED")


def _wait_completed(ids: list[int], worker: subprocess.Popen, stall: float = 60.0) -> None:
    seen, progressed = -1, time.monotonic()
    while (done := _executions(ids).count()) < len(ids):
        if done != seen:
            seen, progressed = done, time.monotonic()
        if worker.poll() is not None or time.monotonic() - progressed > stall:
            raise SystemExit(f"{done}/{len(ids)} tasks completed; worker {worker.returncode}")
        time.sleep(0.02)


def _span(ids: list[int]) -> tuple[float, float]:
    from django.db.models import Max, Min

    span = _executions(ids).aggregate(first=Min("started_at"), last=Max("completed_at"))
    return span["first"].timestamp(), span["last"].timestamp()


def tc_drain(
    scenario: worker_throughput.Scenario, owner: object, log_dir: Path, workers: int = 1
) -> dict:
    """The backlog first (one transaction, as worker_throughput), then ``run_worker``
    (``workers`` processes of it side by side)."""
    from django.db import transaction

    with transaction.atomic():
        ids = [worker_throughput._enqueue_one(scenario, owner) for _ in range(scenario.count)]
    started = time.time()
    running = [worker_throughput._start_worker(scenario, log_dir, n) for n in range(workers)]
    codes = []
    try:
        deadline = time.monotonic() + worker_throughput.WORKER_TIMEOUT
        for process, _ in running:
            codes.append(process.wait(timeout=max(1.0, deadline - time.monotonic())))
    finally:
        for process, log in running:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    if any(codes):
        worker_throughput._fail(f"worker exit codes {codes}", log_dir, scenario)
    if _executions(ids).count() != len(ids):
        worker_throughput._fail("not every task completed", log_dir, scenario)
    worker_throughput._check_all_completed(scenario, log_dir)
    first, last = _span(ids)
    return {
        "count": len(ids),
        "seconds": last - started,
        "rate": len(ids) / (last - started),
        "startup": first - started,
        "span_rate": len(ids) / (last - first),
        "workers": workers,
    }


def tc_end_to_end(scenario: worker_throughput.Scenario, owner: object, log_dir: Path) -> dict:
    """A running ``run_worker -c 1``; ``create_task`` one call after the other, each timed."""
    from report import percentile

    from taskcenter import lifecycle

    process, log = worker_throughput._start_worker(scenario, log_dir)
    try:
        warm = lifecycle.create_task(owner=owner, task_type="demo.noop", start=True)
        wakeup_latency.wait_started([warm.pk], process, timeout=120)
        time.sleep(1.0)
        calls, ids = [], []
        first = time.time()
        for _ in range(scenario.count):
            before = time.perf_counter()
            ids.append(worker_throughput._enqueue_one(scenario, owner))
            calls.append((time.perf_counter() - before) * 1000)
        _wait_completed(ids, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    _, last = _span(ids)
    return {
        "count": len(ids),
        "seconds": last - first,
        "rate": len(ids) / (last - first),
        "enqueue_p50": percentile(calls, 0.50),
        "enqueue_p95": percentile(calls, 0.95),
    }


def tc_stored(rq: bool) -> str:
    """The rows (and Redis keys) the drain's tasks left, per task."""
    from taskcenter.models import Task, TaskEvent, TaskExecution

    tasks = Task.objects.count()
    parts = [
        f"{TaskExecution.objects.count() / tasks:.0f} execution",
        f"{TaskEvent.objects.count() / tasks:.0f} events",
    ]
    if rq:
        from redis import Redis

        from bench.peer_apps.drive import redis_summary

        parts.append("Redis: " + redis_summary(Redis.from_url(os.environ["REDIS_URL"])))
    else:
        from django_tasks_db.models import DBTaskResult

        parts.append(f"{DBTaskResult.objects.count() / tasks:.0f} engine job row")
    return f"per task: 1 task row, {', '.join(parts)}"


def drive_taskcenter(args: argparse.Namespace) -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    owner = get_user_model().objects.create_user("bench", password=None)
    log_dir = Path(os.environ["TASKCENTER_VAR_DIR"])
    rq = os.environ.get("TASKS_BACKEND") == "rq"
    scenarios = {scenario.key: scenario for scenario in worker_throughput.scenarios(quick=False)}
    results: dict[str, object] = {}
    for shape in args.shapes.split(","):
        if shape == "drain":
            scenario = replace(scenarios["a_tc"], count=args.count)
            results["drain"] = tc_drain(scenario, owner, log_dir)
            results["stored"] = tc_stored(rq)
        elif shape == "e2e":
            scenario = replace(scenarios["a_tc"], count=args.count, worker_args=("-c", "1"))
            results["e2e"] = tc_end_to_end(scenario, owner, log_dir)
        elif shape == "sleep":
            scenario = replace(scenarios["b_tc"], count=args.sleep_count)
            results["sleep"] = tc_drain(scenario, owner, log_dir)
        elif shape == "latency":
            options = argparse.Namespace(count=args.latency_count, idle_seconds=1.0)
            mode = "rq" if rq else "wakeups"
            found = wakeup_latency.measure_mode(mode, owner, options, log_dir / "latency.log")
            results["latency"] = {
                "count": found["count"],
                "p50": found["p50_return"],
                "p95": found["p95_return"],
            }
        print(f"  {shape}: {results.get(shape)}", file=sys.stderr)
    return results


# --- the peers' environment ---------------------------------------------------------------------


def peers_python() -> Path:
    """The peers' virtual environment's python, made (or made again) to ``PEER_PACKAGES``."""
    python = VENV / "bin" / "python"
    marker = VENV / "bench-peers-packages.txt"
    wanted = "\n".join(PEER_PACKAGES) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"Installing the peers into {VENV} ...", file=sys.stderr)
    steps = (
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *PEER_PACKAGES,
        ],
    )
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise SystemExit(f"installing the peers timed out: {' '.join(step)}") from None
        if done.returncode != 0:
            raise SystemExit(
                f"could not install the peers into {VENV} ({' '.join(step[2:4])} exited "
                f"{done.returncode}); rerun with --systems tc-sqlite,tc-postgres,tc-rq to "
                f"measure Task Center alone.\n{(done.stdout + done.stderr)[-3000:]}"
            )
    marker.write_text(wanted)
    return python


def peer_versions(python: Path) -> str:
    script = (
        "from importlib.metadata import version as v; "
        "print(', '.join(f'{n} {v(n)}' for n in ('celery', 'kombu', 'redis', 'rq', "
        "'procrastinate', 'psycopg')))"
    )
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True)
    return done.stdout.strip()


# --- the orchestrator ---------------------------------------------------------------------------


def _counts(args: argparse.Namespace) -> list[str]:
    return [
        *("--count", str(args.count), "--sleep-count", str(args.sleep_count)),
        *("--latency-count", str(args.latency_count)),
    ]


def _recreate_postgres(url: str, *, create: bool = True) -> None:
    if create:
        worker_throughput._fresh_postgres(url)
    else:
        worker_throughput._drop_postgres(url)


def _flush_redis(url: str) -> None:
    from redis import Redis

    Redis.from_url(url).flushdb()


def _rq_processes_fit() -> bool:
    """16 RQ worker processes side by side, if the memory is there."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 > SLEEP_CONCURRENCY * RQ_WORKER_MEMORY
    except OSError:
        pass
    return False


def run_system(
    system: System, shapes: list[str], args: argparse.Namespace, python: Path | None
) -> dict:
    """One run of one system in a driver process group of its own; its figures, or the error."""
    tmp = Path(tempfile.mkdtemp(prefix=f"tc-peers-{system.key}-"))
    try:
        if system.redis:
            _flush_redis(args.redis_url)
        if system.postgres:
            _recreate_postgres(args.postgres_url)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("DEBUG", None)
        shape_list = ",".join(shapes)
        if system.key.startswith("tc-"):
            env.update(
                DJANGO_SETTINGS_MODULE=worker_throughput.SETTINGS,
                LOG_LEVEL="WARNING",
                TASKCENTER_VAR_DIR=str(tmp),
                DATABASE_URL=(
                    args.postgres_url
                    if system.key == "tc-postgres"
                    else f"sqlite:///{tmp}/bench.sqlite3"
                ),
                TASKCENTER_DEMO_KINDS="true",
            )
            if system.key == "tc-rq":
                env.update(TASKS_BACKEND="rq", REDIS_URL=args.redis_url)
            command = [sys.executable, str(Path(__file__).resolve()), "--driver", system.key]
        else:
            assert python is not None
            env.update(
                PEERS_DIR=str(tmp),
                PEERS_REDIS_URL=args.redis_url,
                PEERS_POSTGRES_URL=args.postgres_url,
            )
            command = [str(python), "-m", "bench.peer_apps.drive", "--system", system.key]
        command += ["--shapes", shape_list, *_counts(args)]
        with (tmp / "driver.err").open("w") as err:
            driver = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
            )
            try:
                out, _ = driver.communicate(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                out = ""
            finally:
                _stop_group(driver)
        errors = (tmp / "driver.err").read_text()
        if driver.returncode != 0 or not out.strip():
            logs = "".join(
                f"--- {log.name} ---\n{log.read_text()[-1500:]}\n" for log in tmp.glob("*.log")
            )
            return {"error": f"exit {driver.returncode}\n{errors[-3000:]}\n{logs}"}
        return json.loads(out.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the driver's group (it stops its workers), then SIGKILL to what is left."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _spread(values: list[float], digits: int) -> str:
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:.{digits}f}"
    return f"{middle:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def _cell(runs: list[dict], shape: str) -> str:
    found = [run[shape] for run in runs if shape in run]
    if not found:
        return ""
    if shape == "latency":
        p50 = _spread([r["p50"] for r in found], 1)
        return f"{p50} / {_spread([r['p95'] for r in found], 1)}"
    rate = _spread([r["rate"] for r in found], 0)
    if shape == "e2e":
        return f"{rate}; {_spread([r['enqueue_p50'] for r in found], 2)} ms"
    return rate


def print_report(results: dict[str, list[dict]], skipped: dict[str, dict[str, str]]) -> None:
    headers = (
        "system",
        "(1) drain tasks/s",
        "(2) e2e tasks/s; enqueue p50",
        f"(3) 100 ms x{SLEEP_CONCURRENCY} tasks/s",
        "(4) start p50 / p95 ms",
        "what it records per task",
    )
    rows = []
    for key, runs in results.items():
        system = BY_KEY[key]
        good = [run for run in runs if "error" not in run]
        cells = [
            skipped.get(key, {}).get(shape) or (_cell(good, shape) if good else "failed")
            for shape in SHAPES
        ]
        rows.append((system.label, *cells, system.records))
    print_table(headers, rows)
    print()
    rows = []
    for key, runs in results.items():
        good = [run for run in runs if "error" not in run]
        for shape in ("drain", "sleep"):
            found = [run[shape] for run in good if shape in run]
            if found:
                rows.append(
                    (
                        BY_KEY[key].label,
                        shape,
                        str(found[0]["workers"]),
                        _spread([r["startup"] for r in found], 2),
                        _spread([r["span_rate"] for r in found], 0),
                    )
                )
    if rows:
        headers = ("system", "shape", "processes", "start-up s", "tasks/s from first start")
        print_table(headers, rows)
        print()
    print("Left in the store after the drain (last run):")
    for key, runs in results.items():
        stored = [run["stored"] for run in runs if "stored" in run]
        if stored:
            print(f"  {BY_KEY[key].label}: {stored[-1]}")
    for key, runs in results.items():
        for number, run in enumerate(runs, 1):
            if "error" in run:
                print(f"\n{BY_KEY[key].label}, run {number} failed:\n{run['error']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="N: no-op tasks (drain, e2e).")
    parser.add_argument("--sleep-count", type=int, default=None, help="100 ms tasks (N/4).")
    parser.add_argument("--latency-count", type=int, default=100, help="Latency samples.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each system.")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="drain,e2e,sleep,latency")
    parser.add_argument("--systems", default=",".join(BY_KEY), help=f"Any of: {', '.join(BY_KEY)}.")
    parser.add_argument(
        "--postgres-url",
        default="postgres://taskcenter:taskcenter@127.0.0.1:5432/tc_peers_bench",
        help="A PostgreSQL database to drop, create and use (procrastinate, tc-postgres).",
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/11",
        help="A Redis database to flush and use (Celery, RQ, tc-rq).",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="Per system and run, s.")
    parser.add_argument("--driver", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sleep_count is None:
        args.sleep_count = max(SLEEP_CONCURRENCY, args.count // 4)

    if args.driver:
        print(json.dumps(drive_taskcenter(args)))
        return
    # Terminated (or interrupted): unwind, so that the running driver's group is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    shapes = [shape for shape in args.shapes.split(",") if shape]
    systems = [key for key in args.systems.split(",") if key]
    unknown = [name for name in shapes if name not in SHAPES] + [
        name for name in systems if name not in BY_KEY
    ]
    if unknown:
        parser.error(f"unknown shape or system: {', '.join(unknown)}")
    python = None
    if any(not key.startswith("tc-") for key in systems):
        python = peers_python()
    skipped: dict[str, dict[str, str]] = {}
    for key in systems:
        for shape in shapes:
            if shape not in BY_KEY[key].shapes:
                skipped.setdefault(key, {})[shape] = "-"
        if key in ("rq", "rq-simple") and "sleep" in shapes and not _rq_processes_fit():
            skipped.setdefault(key, {})["sleep"] = "n/a (16 processes do not fit)"

    import sqlite3

    import redis

    print(
        f"Machine: {platform.machine()} {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} cores shared with other work (load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}); SQLite {sqlite3.sqlite_version}, "
        f"Redis {redis.Redis.from_url(args.redis_url).info()['redis_version']}"
    )
    print(f"Task Center: {versions('Django', 'django-tasks-db', 'django-tasks-rq', 'psycopg')}")
    if python:
        print(f"Peers ({VENV.relative_to(ROOT)}): {peer_versions(python)}")
    print(
        f"N={args.count} no-op tasks (drain, e2e), {args.sleep_count} sleep tasks, "
        f"{args.latency_count} latency samples; {args.repeat} run(s) per system\n"
    )
    results: dict[str, list[dict]] = {key: [] for key in systems}
    try:
        for run in range(args.repeat):
            order = systems[run % len(systems) :] + systems[: run % len(systems)]
            for key in order:
                wanted = [s for s in shapes if s not in skipped.get(key, {})]
                if not wanted:
                    continue
                started = time.perf_counter()
                result = run_system(BY_KEY[key], wanted, args, python)
                results[key].append(result)
                took = time.perf_counter() - started
                status = "FAILED" if "error" in result else "ok"
                print(f"  run {run + 1}: {key} {status} in {took:.0f} s", file=sys.stderr)
    finally:
        if any(BY_KEY[key].postgres for key in systems):
            _recreate_postgres(args.postgres_url, create=False)
        if any(BY_KEY[key].redis for key in systems):
            _flush_redis(args.redis_url)
    print(
        f"Load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; median of the "
        "runs (lowest-highest)\n"
    )
    print_report(results, skipped)


if __name__ == "__main__":
    main()
