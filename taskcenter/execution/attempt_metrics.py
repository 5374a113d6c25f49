"""How long attempts take, observed in the worker process where each one ends.

The histogram lives here, in the engine's layer, because the runner observes it and the runner
may not import ``taskcenter.monitoring`` (a layer above); ``monitoring`` exposes it.

Workers and the web server are separate processes. ``run_service`` sets
``PROMETHEUS_MULTIPROC_DIR`` for all its children, so prometheus-client keeps these values in
files there and the web's ``/metrics`` adds up every process's (``taskcenter.monitoring``).
Without it the values stay in this process's memory.
"""

from __future__ import annotations

from prometheus_client import Histogram

# Attempts range from a few milliseconds (a no-op) to hours (a long scrape or upload).
BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    float("inf"),
)

# What ``runner.run_claimed_attempt`` returns. An interruption returns its reason (stopped,
# cancelled, "lease lost", spelt with an underscore here); anything not listed counts as
# "interrupted", so the label's values stay a short fixed list.
OUTCOMES = frozenset(
    {
        "completed",
        "retrying",
        "failed",
        "waiting",
        "interrupted",
        "discarded",
        "lost",
        "stopped",
        "cancelled",
        "lease_lost",
    }
)

# registry=None: not in prometheus-client's global registry, which would also expose it in a
# multiprocess setup where ``monitoring`` already reads it from the files.
ATTEMPT_DURATION = Histogram(
    "taskcenter_attempt_duration_seconds",
    "Wall time of task attempts run by workers, from claim to outcome, by kind and outcome.",
    ["kind", "outcome"],
    buckets=BUCKETS,
    registry=None,
)


def observe_attempt(kind: str, outcome: str, seconds: float) -> None:
    """Record one finished attempt of a task of ``kind``."""
    label = outcome.replace(" ", "_")
    label = label if label in OUTCOMES else "interrupted"
    ATTEMPT_DURATION.labels(kind=kind, outcome=label).observe(seconds)
