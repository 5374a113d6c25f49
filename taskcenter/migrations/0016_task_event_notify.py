"""PostgreSQL announces every new task event: ``NOTIFY taskcenter_events, '<highest new id>'``.

A statement-level trigger with a transition table, so a bulk insert (a COPY of ten thousand
``created`` events) sends one notification, not ten thousand. The server delivers it when the
inserting transaction commits, so a listener that reads the table on hearing it finds the rows.
Other databases have no such channel: the event streams poll them (``taskcenter.api.event_feed``).
"""

from django.db import migrations

CHANNEL = "taskcenter_events"

INSTALL = [
    f"""
    CREATE OR REPLACE FUNCTION taskcenter_event_notify() RETURNS trigger AS $$
    DECLARE
        newest bigint;
    BEGIN
        SELECT max(id) INTO newest FROM new_events;
        IF newest IS NOT NULL THEN
            PERFORM pg_notify('{CHANNEL}', newest::text);
        END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER taskcenter_event_notify
    AFTER INSERT ON taskcenter_taskevent
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION taskcenter_event_notify()
    """,
]
DROP = [
    "DROP TRIGGER IF EXISTS taskcenter_event_notify ON taskcenter_taskevent",
    "DROP FUNCTION IF EXISTS taskcenter_event_notify()",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("taskcenter", "0015_throughput_rollups"),
    ]

    operations = [migrations.RunPython(_run(INSTALL), _run(DROP))]
