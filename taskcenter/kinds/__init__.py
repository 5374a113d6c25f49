"""Task kinds: what a task of a given type does.

``registry`` holds ``@task_kind`` and the lookups, ``context`` the ``AttemptContext`` a handler
receives, ``account_holds`` one task at a time per platform account, ``results`` where
``ctx.save_results`` writes, ``platform_http`` the HTTP client providers speak through, and
``builtin`` the kinds the core ships (``noop``, ``http``, and ``demo.*`` behind a setting).
"""

from taskcenter.kinds.registry import (
    RetryPolicy,
    TaskKind,
    all_kinds,
    autodiscover,
    demo_kinds_enabled,
    get_kind,
    lost_attempts_limit_default,
    task_kind,
)

__all__ = [
    "RetryPolicy",
    "TaskKind",
    "all_kinds",
    "autodiscover",
    "demo_kinds_enabled",
    "get_kind",
    "lost_attempts_limit_default",
    "task_kind",
]
