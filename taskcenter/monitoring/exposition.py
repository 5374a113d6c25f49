"""The registry ``/metrics`` renders, built for each scrape.

Two sources of values:

- counters and histograms the processes observe (HTTP requests here, attempt durations in the
  workers). With ``PROMETHEUS_MULTIPROC_DIR`` set (``run_service`` sets it for the web server
  and the worker it starts) every process writes them to files there and prometheus-client's
  ``MultiProcessCollector`` adds them up, so gunicorn's several workers and the task worker
  show as one service. Without it, this process's own values (and its CPU and memory);
- the database's state (``TaskCenterCollector``), queried now.
"""

from __future__ import annotations

import os

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    disable_created_metrics,
    multiprocess,
)

from taskcenter.execution.attempt_metrics import ATTEMPT_DURATION
from taskcenter.monitoring.collector import TaskCenterCollector
from taskcenter.monitoring.http_metrics import LATENCY, REQUESTS

# The *_created series (when each label set first appeared) double the output for nothing
# Prometheus' text format uses.
disable_created_metrics()

PROCESS_LOCAL = (REQUESTS, LATENCY, ATTEMPT_DURATION)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def build_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in (*PROCESS_LOCAL, PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
    registry.register(TaskCenterCollector())
    return registry
