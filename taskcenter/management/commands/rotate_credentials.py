"""Re-encrypt every encrypted field with the newest key of TASKCENTER_CREDENTIALS_KEYS."""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from taskcenter.lib.encryption import UndecryptableSecret, rotate
from taskcenter.models.fields import EncryptedJSONField


class Command(BaseCommand):
    help = (
        "Re-encrypt stored platform credentials with the first key of "
        "TASKCENTER_CREDENTIALS_KEYS. Rotate a key: add the new key in front, run this, then "
        "remove the old key."
    )

    def handle(self, *args, **options):
        quote = connection.ops.quote_name
        total = 0
        for model in apps.get_models():
            for field in model._meta.concrete_fields:
                if not isinstance(field, EncryptedJSONField):
                    continue
                # Concrete fields have a column; the stubs allow None for relations without one.
                assert field.column is not None
                assert model._meta.pk.column is not None
                table, column = quote(model._meta.db_table), quote(field.column)
                pk = quote(model._meta.pk.column)
                # Raw rows: the ciphertext itself is rotated (MultiFernet.rotate keeps each
                # token's timestamp), without a round trip through the decrypted value. The
                # names are the models' own, quoted; the values go as parameters.
                select = f"SELECT {pk}, {column} FROM {table} WHERE {column} IS NOT NULL"  # noqa: S608
                update = f"UPDATE {table} SET {column} = %s WHERE {pk} = %s"  # noqa: S608
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(select)
                    rows = cursor.fetchall()
                    try:
                        rotated = [(rotate(value), key) for key, value in rows]
                    except UndecryptableSecret as exc:
                        raise CommandError(f"{model._meta.label}.{field.name}: {exc}") from None
                    cursor.executemany(update, rotated)
                total += len(rows)
                self.stdout.write(f"{model._meta.label}.{field.name}: {len(rows)} re-encrypted")
        self.stdout.write(f"Re-encrypted {total} value(s) with the newest key.")
