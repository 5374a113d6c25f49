"""The one table between Task Center's statuses and the status words of each dialect.

Every dialect (social-auto-upload publishing, the integration tasks table, the data sync
service, new-api's AI generation) shows and filters statuses through this table and nothing else, so a task has the same state whichever
door a client comes in by. Several canonical statuses may share one word (a dialect with fewer
states); filtering by that word matches all of them. The README's "Status words" table is this.
"""

from __future__ import annotations

from taskcenter.models import Status

PUBLISHING = "social-auto-upload"  # publish task records
INTEGRATION = "integration"  # the integration tasks table: numeric statuses
SYNC = "data-sync"  # the data sync service
GENERATION = "new-api"  # new-api's AI generation task center

# fmt: off
STATUS_WORDS: dict[str, dict[str, str | int]] = {
    Status.PENDING:   {PUBLISHING: "待发布",   INTEGRATION: 0, SYNC: "pending",   GENERATION: "NOT_START"},
    Status.QUEUED:    {PUBLISHING: "待发布",   INTEGRATION: 0, SYNC: "pending",   GENERATION: "QUEUED"},
    Status.RUNNING:   {PUBLISHING: "发布中",   INTEGRATION: 1, SYNC: "running",   GENERATION: "IN_PROGRESS"},
    Status.COMPLETED: {PUBLISHING: "发布成功", INTEGRATION: 2, SYNC: "completed", GENERATION: "SUCCESS"},
    Status.FAILED:    {PUBLISHING: "发布失败", INTEGRATION: 3, SYNC: "failed",    GENERATION: "FAILURE"},
    Status.STOPPED:   {PUBLISHING: "待发布",   INTEGRATION: 0, SYNC: "paused",    GENERATION: "NOT_START"},
    Status.CANCELLED: {PUBLISHING: "已取消",   INTEGRATION: 3, SYNC: "cancelled", GENERATION: "FAILURE"},
}
# fmt: on

# Words a dialect accepts in filters although no canonical status shows as them (new-api
# lists SUBMITTED and UNKNOWN): they filter to nothing rather than being a 400.
EXTRA_WORDS: dict[str, frozenset[str | int]] = {
    GENERATION: frozenset({"SUBMITTED", "UNKNOWN"}),
}


def word_for(status: str, dialect: str) -> str | int:
    """How ``dialect`` shows the canonical ``status``."""
    return STATUS_WORDS[Status(status)][dialect]


def statuses_for(word: str | int, dialect: str) -> list[str]:
    """The canonical statuses ``dialect`` means by ``word`` (empty for an extra word).

    Raises ``KeyError`` for a word the dialect does not have, so callers answer 400 naming it.
    """
    matches = [status for status, words in STATUS_WORDS.items() if words[dialect] == word]
    if not matches and word not in EXTRA_WORDS.get(dialect, frozenset()):
        raise KeyError(word)
    return [str(status) for status in matches]


def words(dialect: str) -> list[str | int]:
    """Every word ``dialect`` accepts, in table order, for error messages and schemas."""
    seen: list[str | int] = []
    for row in STATUS_WORDS.values():
        if row[dialect] not in seen:
            seen.append(row[dialect])
    return seen + sorted(EXTRA_WORDS.get(dialect, frozenset()), key=str)
