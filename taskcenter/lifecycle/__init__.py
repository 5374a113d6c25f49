"""Every status change of a task, and nothing else.

``transitions`` holds the guarded UPDATE and the audit row every change is made of;
``client_actions`` what clients and operators do, ``submission`` the writing of new tasks (one
or many at once), ``attempts`` what workers do, ``reaping`` what happens to attempts whose worker
vanished; ``hooks`` the ports (engine, billing) the lifecycle calls without importing what is
built on it. Callers import the verbs from here.
"""

from taskcenter.lifecycle.attempts import (
    Completion,
    claim_attempt,
    claim_attempts,
    complete_attempt,
    complete_attempts,
    defer_attempt,
    fail_attempt,
    interrupt_attempt,
    redispatch_task,
    renew_leases,
    resume_attempt,
)
from taskcenter.lifecycle.client_actions import (
    DELETABLE,
    EDITABLE,
    EDITABLE_FIELDS,
    LABEL_FIELDS,
    UNCLAIMED,
    cancel_task,
    create_task,
    delete_task,
    reconfigure_unclaimed_task,
    retry_task,
    start_task,
    stop_task,
    update_task,
)
from taskcenter.lifecycle.reaping import (
    LostAttemptsReport,
    lost_attempts_limit,
    reap_lost_attempts,
    release_attempt,
)
from taskcenter.lifecycle.submission import create_tasks
from taskcenter.lifecycle.transitions import (
    CANCELLABLE,
    OPEN_EXECUTION,
    RETRYABLE,
    STARTABLE,
    STOPPABLE,
    Actor,
    lease_seconds,
)

__all__ = [
    "CANCELLABLE",
    "DELETABLE",
    "EDITABLE",
    "EDITABLE_FIELDS",
    "LABEL_FIELDS",
    "OPEN_EXECUTION",
    "RETRYABLE",
    "STARTABLE",
    "STOPPABLE",
    "UNCLAIMED",
    "Actor",
    "Completion",
    "LostAttemptsReport",
    "cancel_task",
    "claim_attempt",
    "claim_attempts",
    "complete_attempt",
    "complete_attempts",
    "create_task",
    "create_tasks",
    "defer_attempt",
    "delete_task",
    "fail_attempt",
    "interrupt_attempt",
    "lease_seconds",
    "lost_attempts_limit",
    "reap_lost_attempts",
    "reconfigure_unclaimed_task",
    "redispatch_task",
    "release_attempt",
    "renew_leases",
    "resume_attempt",
    "retry_task",
    "start_task",
    "stop_task",
    "update_task",
]
