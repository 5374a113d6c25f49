"""``create_task`` on PostgreSQL: the task, its event, its charge and its engine job in one
statement, or nothing written and the general path's answer (``lifecycle.single_statement``).

Each test reads the rows back; ``test_submission`` checks that they are the rows ``create_tasks``
writes for the same item (its first test compares the two field by field).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult, get_date_max

from quota import ledger as quota
from quota.models import LedgerKind, QuotaBalance, QuotaLedgerEntry
from taskcenter import lifecycle
from taskcenter.errors import InsufficientQuota
from taskcenter.execution.dispatch import MAX_PRIORITY, RUN_ATTEMPT_PATH
from taskcenter.lib.postgres_cursors import numbered
from taskcenter.models import EventVerb, Status, Task, TaskEvent
from tests.support.submission import assert_tallies_exact, database

pytestmark = pytest.mark.django_db

PRICE = 7
postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="SQLite has no data-modifying WITH clauses"
)


@pytest.fixture
def alice(user):
    quota.grant(user.pk, 100, note="tests")
    return user


def statements(call) -> tuple[object, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        result = call()
    return result, [query["sql"] for query in captured.captured_queries]


def the_job(task_id: int) -> DBTaskResult:
    return DBTaskResult.objects.get(
        task_path=RUN_ATTEMPT_PATH, args_kwargs={"args": [task_id], "kwargs": {}}
    )


@postgresql_only
def test_a_priced_queued_task_is_written_whole_by_one_statement(alice):
    task, sent = statements(
        lambda: lifecycle.create_task(
            owner=alice, task_type="demo.noop", start=True, quota=PRICE, name="one trip"
        )
    )

    assert len(sent) == 1
    assert sent[0].startswith("WITH quota_debit AS (UPDATE")
    stored = Task.objects.get(pk=task.pk)
    assert model_to_dict(task) == model_to_dict(stored)
    assert (stored.status, stored.name, stored.quota) == (Status.QUEUED, "one trip", PRICE)
    assert stored.submitted_at == stored.created_at
    event = TaskEvent.objects.get(task=stored)
    assert (event.verb, event.from_status, event.to_status) == (EventVerb.CREATED, "", "QUEUED")
    assert (event.actor_user_id, event.actor, event.data) == (alice.pk, f"user:{alice}", {})
    charge = QuotaLedgerEntry.objects.get(task=stored)
    assert (charge.kind, charge.amount, charge.balance_after) == (LedgerKind.CHARGE, -7, 93)
    assert quota.balance_of(alice.pk) == 93
    job = the_job(stored.pk)
    assert (job.status, job.priority, job.queue_name) == ("READY", 0, "default")
    assert job.run_after == get_date_max()
    assert job.worker_ids == []
    assert_tallies_exact()


@postgresql_only
def test_a_pending_task_has_no_job_and_a_free_one_no_charge(alice):
    task, sent = statements(lambda: lifecycle.create_task(owner=alice, task_type="demo.noop"))

    assert len(sent) == 1
    assert Task.objects.get(pk=task.pk).status == Status.PENDING
    assert DBTaskResult.objects.count() == 0
    assert not QuotaLedgerEntry.objects.filter(kind=LedgerKind.CHARGE).exists()
    assert quota.balance_of(alice.pk) == 100
    assert TaskEvent.objects.get(task_id=task.pk).to_status == "PENDING"


@postgresql_only
def test_the_job_keeps_the_tasks_priority_clamped_and_its_run_after(alice):
    later = timezone.now() + timedelta(minutes=5)
    task = lifecycle.create_task(
        owner=alice, task_type="demo.noop", start=True, priority=100, run_after=later
    )

    job = the_job(task.pk)
    assert (job.priority, job.run_after) == (MAX_PRIORITY, later)
    assert Task.objects.get(pk=task.pk).run_after == later


@postgresql_only
def test_a_balance_that_cannot_pay_writes_nothing_and_refuses(alice):
    before = database()

    with pytest.raises(InsufficientQuota) as refused:
        lifecycle.create_task(owner=alice, task_type="demo.noop", start=True, quota=101)

    assert (refused.value.needed, refused.value.balance) == (101, 100)
    assert database() == before


@postgresql_only
def test_a_first_task_opens_the_account_through_the_general_path(user, settings):
    settings.TASKCENTER = {**settings.TASKCENTER, "QUOTA_DEFAULT_BALANCE": 10}
    assert not QuotaBalance.objects.filter(user=user).exists()

    task, sent = statements(
        lambda: lifecycle.create_task(owner=user, task_type="demo.noop", start=True, quota=4)
    )

    # The one statement found no account and wrote nothing; the general path opened it.
    assert sent[0].startswith("WITH")
    assert len(sent) > 1
    assert Task.objects.filter(owner=user).count() == 1
    assert quota.balance_of(user.pk) == 6
    assert list(QuotaLedgerEntry.objects.filter(user=user).values_list("kind", "amount")) == [
        (LedgerKind.GRANT, 10),
        (LedgerKind.CHARGE, -4),
    ]
    assert [job.args_kwargs["args"] for job in DBTaskResult.objects.all()] == [[task.pk]]


@postgresql_only
def test_inside_the_callers_transaction_it_rolls_back_with_it(alice):
    before = database()

    with transaction.atomic():
        lifecycle.create_task(owner=alice, task_type="demo.noop", start=True, quota=PRICE)
        transaction.set_rollback(True)

    assert database() == before


@postgresql_only
def test_the_statement_is_prepared_and_still_logged(alice):
    for name in ("first", "second", "third"):
        _, sent = statements(
            lambda name=name: lifecycle.create_task(owner=alice, task_type="demo.noop", name=name)
        )
        # The query log shows the statement even once psycopg runs it prepared.
        assert sent[0].startswith("WITH new_task AS (INSERT")
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert [sql for sql in prepared if "new_task AS (INSERT" in sql]
    assert Task.objects.filter(owner=alice).count() == 3


def test_on_sqlite_create_task_takes_the_general_path(alice):
    if connection.vendor != "sqlite":
        pytest.skip("the general path is SQLite's")
    _, sent = statements(
        lambda: lifecycle.create_task(owner=alice, task_type="demo.noop", start=True, quota=1)
    )

    assert not any(sql.startswith("WITH") for sql in sent)
    assert Task.objects.count() == DBTaskResult.objects.count() == 1


def test_placeholders_are_numbered_in_order():
    assert numbered("SELECT %s, %s FROM t WHERE a = %s") == "SELECT $1, $2 FROM t WHERE a = $3"
    assert numbered("SELECT %s LIKE 'a%%'") == "SELECT $1 LIKE 'a%'"
    with pytest.raises(ValueError, match="Only %s and %%"):
        numbered("SELECT %(name)s")


@postgresql_only
def test_without_prepared_statements_it_runs_unprepared(alice):
    # DB_PREPARED_STATEMENTS=false leaves the connection's prepare_threshold unset (None).
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # psycopg forgets its own on seeing this
    raw = connection.connection
    kept, raw.prepare_threshold = raw.prepare_threshold, None
    try:
        for _ in range(3):
            lifecycle.create_task(owner=alice, task_type="demo.noop", start=True, quota=1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements")
            assert cursor.fetchone()[0] == 0
    finally:
        raw.prepare_threshold = kept
    assert Task.objects.filter(status=Status.QUEUED).count() == DBTaskResult.objects.count() == 3
    assert quota.balance_of(alice.pk) == 97


def test_the_settings_let_postgresql_prepare_unless_told_not_to():
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    assert connection.settings_dict["OPTIONS"]["prepare_threshold"] == 0


class ChargesOnTheSide:
    """A billing from before ``Billing.clauses``: it only knows ``charge_many``."""

    def __init__(self) -> None:
        self.charged: list = []

    def charge_many(self, charges) -> None:
        self.charged.extend(charges)


@pytest.fixture
def hook_swap():
    from taskcenter.lifecycle import hooks

    billing, bulk, one = hooks.billing(), hooks.bulk_dispatcher(), hooks.dispatcher()
    yield hooks
    hooks.install_billing(billing)
    hooks.install_bulk_dispatcher(bulk)
    hooks.install_dispatcher(one)


@postgresql_only
def test_a_billing_without_clauses_gets_the_general_path(alice, hook_swap):
    billing = ChargesOnTheSide()
    hook_swap.install_billing(billing)

    task, sent = statements(
        lambda: lifecycle.create_task(owner=alice, task_type="demo.noop", start=True, quota=2)
    )

    assert not any(sql.startswith("WITH") for sql in sent)
    assert [(c.user_id, c.task_id, c.amount) for c in billing.charged] == [(alice.pk, task.pk, 2)]
    assert the_job(task.pk).status == "READY"


@postgresql_only
def test_an_engine_told_after_the_commit_gets_the_general_path(
    alice, hook_swap, django_capture_on_commit_callbacks
):
    hook_swap.install_bulk_dispatcher(hook_swap.OneByOne())
    told: list[int] = []
    hook_swap.install_dispatcher(lambda task_id, **kwargs: told.append(task_id))

    with django_capture_on_commit_callbacks(execute=True):
        task, sent = statements(
            lambda: lifecycle.create_task(owner=alice, task_type="demo.noop", start=True)
        )

    assert not any(sql.startswith("WITH") for sql in sent)
    assert told == [task.pk]
    assert DBTaskResult.objects.count() == 0
