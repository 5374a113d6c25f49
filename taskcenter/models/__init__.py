"""Task Center's core records; every model of the ``taskcenter`` app is importable from here.

Nothing here changes a task's ``status``: every transition lives in ``taskcenter.lifecycle``.
"""

from .account_holds import AccountHold
from .idempotency import IdempotencyKey
from .rollups import DurationRollup, QueueDepthSample, RollupCursor, ThroughputRollup
from .tallies import DurationTally, TaskTally
from .tasks import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    EventVerb,
    ExecutionStatus,
    Status,
    Task,
    TaskEvent,
    TaskExecution,
    WaitingFor,
)
from .tokens import ApiToken
from .workers import WorkerEngine, WorkerProcess, WorkerState

__all__ = [
    "ACTIVE_STATUSES",
    "FINISHED_STATUSES",
    "AccountHold",
    "ApiToken",
    "DurationRollup",
    "DurationTally",
    "EventVerb",
    "ExecutionStatus",
    "IdempotencyKey",
    "QueueDepthSample",
    "RollupCursor",
    "Status",
    "Task",
    "TaskEvent",
    "TaskExecution",
    "TaskTally",
    "ThroughputRollup",
    "WaitingFor",
    "WorkerEngine",
    "WorkerProcess",
    "WorkerState",
]
