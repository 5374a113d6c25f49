"""A row of the integration tasks table as JSON, and its create body.

The row's fields are exactly the table's: id, integration_id, user_id, client_id,
account_id, template_id, argument (JSON text), status (0-3), created_at and updated_at
(millisecond timestamps). ``argument`` is the task's parameters written as compact JSON text.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from taskcenter.api import parsers as bounded_json
from taskcenter.api.envelope import StrictCharField, StrictIntegerField
from taskcenter.api.parsers import TooDeeplyNested
from taskcenter.api.serializers import check_json_value
from taskcenter.api.status_words import INTEGRATION, word_for
from taskcenter.models import Task

BIGINT_MAX = 2**63 - 1


def default_kind() -> str:
    """What a row runs when it names no ``task_type`` (the table has no such column): the
    operator's ``TASKCENTER_INTEGRATION_KIND``, or nothing, and then the row is refused. Running
    a do-nothing kind instead would report work done that nobody did."""
    return settings.TASKCENTER.get("INTEGRATION_KIND") or ""


def millis(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


def _bigint_or_none(value: str) -> int | None:
    # account_id is text in Task Center (other seeds use names); this table's is a bigint.
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def argument_text(parameters: Any) -> str:
    return json.dumps(parameters or {}, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def integration_task_data(task: Task) -> dict[str, Any]:
    """One row of the integration tasks table."""
    return {
        "id": task.pk,
        "integration_id": task.integration_id,
        "user_id": task.owner_id,
        "client_id": task.client_id,
        "account_id": _bigint_or_none(task.account_id),
        "template_id": task.template_id,
        "argument": argument_text(task.parameters),
        "status": word_for(task.status, INTEGRATION),
        "created_at": millis(task.created_at),
        "updated_at": millis(task.updated_at),
    }


def _bigint(**kwargs: Any) -> StrictIntegerField:
    return StrictIntegerField(min_value=0, max_value=BIGINT_MAX, **kwargs)


@extend_schema_field({"type": "integer", "enum": [0]})
class NewStatusField(StrictIntegerField):
    """A new row's status: 0 (pending) is the only value a client may send."""


class CreateIntegrationTaskInput(serializers.Serializer):
    """A new row: the table's NOT NULL columns are required; user_id defaults to the caller."""

    integration_id = _bigint()
    client_id = _bigint()
    account_id = _bigint()
    template_id = _bigint()
    argument = StrictCharField(
        max_length=65_536, help_text='JSON object as text, e.g. "{\\"project\\":\\"p1\\"}".'
    )
    user_id = _bigint(required=False, help_text="The owner; staff may name another user.")
    status = NewStatusField(
        required=False, help_text="0 if sent: a new task is pending (it is queued at once)."
    )
    task_type = StrictCharField(
        max_length=100,
        required=False,
        help_text="The kind to run; required unless the operator set TASKCENTER_INTEGRATION_KIND.",
    )

    def validate_argument(self, value: str) -> dict:
        try:
            parsed = bounded_json.loads(value)
        except TooDeeplyNested as exc:
            raise serializers.ValidationError(str(exc)) from None
        except ValueError:
            raise serializers.ValidationError("Must be JSON text.") from None
        if not isinstance(parsed, dict):
            raise serializers.ValidationError("Must be a JSON object, as text.")
        check_json_value(parsed)
        return parsed

    def validate_status(self, value: int) -> int:
        if value != 0:
            raise serializers.ValidationError("A new task's status is 0 (pending).")
        return value

    def validate(self, attrs: dict) -> dict:
        if not attrs.get("task_type") and not default_kind():
            raise serializers.ValidationError(
                {
                    "task_type": [
                        "Required: the integration tasks table names no kind of its own. Send "
                        "the kind this row runs (e.g. http.request), or have the operator set "
                        "TASKCENTER_INTEGRATION_KIND."
                    ]
                }
            )
        return attrs


class IntegrationTaskDoc(serializers.Serializer):
    """Documentation only: one row of the integration tasks table."""

    id = serializers.IntegerField()
    integration_id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    client_id = serializers.IntegerField(
        allow_null=True, help_text="null for a task created through another API."
    )
    account_id = serializers.IntegerField(allow_null=True, help_text="null if not numeric.")
    template_id = serializers.IntegerField(
        allow_null=True, help_text="null for a task created through another API."
    )
    argument = serializers.CharField(help_text="The parameters: a JSON object, as text.")
    status = serializers.IntegerField(help_text="0 pending, 1 running, 2 done, 3 failed.")
    created_at = serializers.IntegerField(help_text="Milliseconds since the epoch.")
    updated_at = serializers.IntegerField(help_text="Milliseconds since the epoch.")
