"""Platform credentials encrypted at rest: the JSON column becomes text holding a Fernet token
(``taskcenter.lib.encryption``), and every existing row is encrypted in place. Reversible: going back
decrypts them, then turns the column into JSON again.
"""

import json

from django.db import migrations

import taskcenter.models.fields
from taskcenter.lib.encryption import decrypt, encrypt

TABLE = "publishing_platformaccount"


def _rewrite(schema_editor, change) -> None:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, credentials FROM {TABLE} WHERE credentials IS NOT NULL")
        for pk, value in cursor.fetchall():
            new = change(value)
            if new is not None:
                cursor.execute(f"UPDATE {TABLE} SET credentials = %s WHERE id = %s", [new, pk])


def _is_plain_json(value) -> bool:
    if not isinstance(value, str):
        return True  # a database driver that already decoded the JSON
    try:
        json.loads(value)
    except ValueError:
        return False  # a Fernet token is never valid JSON
    return True


def encrypt_rows(apps, schema_editor) -> None:
    def change(value):
        if not _is_plain_json(value):
            return None
        text = value if isinstance(value, str) else json.dumps(value)
        return encrypt(json.dumps(json.loads(text)))

    _rewrite(schema_editor, change)


def decrypt_rows(apps, schema_editor) -> None:
    _rewrite(schema_editor, lambda value: None if _is_plain_json(value) else decrypt(value))


class Migration(migrations.Migration):

    dependencies = [
        ('publishing', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='platformaccount',
            name='credentials',
            field=taskcenter.models.fields.EncryptedJSONField(blank=True, default=dict, verbose_name='credentials'),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows),
    ]
