"""Model fields of the core that apps reuse."""

from __future__ import annotations

import json
from typing import Any

from django.db import models

from taskcenter.lib.encryption import decrypt, encrypt


class EncryptedJSONField(models.TextField):
    """A JSON value stored as a Fernet token (``taskcenter.lib.encryption``): encrypted when saved,
    decrypted when loaded. The column holds text no one can read without the keys, so it
    cannot be filtered on."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return json.loads(decrypt(value))

    def to_python(self, value: Any) -> Any:
        # Strings reach here only from fixtures and forms, as JSON text.
        return json.loads(value) if isinstance(value, str) else value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return encrypt(json.dumps(value))

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj))
