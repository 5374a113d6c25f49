"""``noop``: a task with nothing to run, for rows that only record that something was asked.

The integration tasks table names no kind for its rows; they run this. Unlike ``demo.*`` it is
always known: it holds nothing and ends at once.
"""

from taskcenter.kinds import task_kind


@task_kind("noop", max_attempts=1)
def noop(task, ctx):
    """Do nothing and succeed at once (a row of the integration tasks table with no kind)."""
    return {"ok": True}
