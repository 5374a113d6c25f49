"""Field names of the XGet scraper API (``task_name``, ``describe``, ``user_id``...) on our models.

Output serializers are read-only views of a row; ``*Input`` serializers validate a request and
hand plain values to ``taskcenter.lifecycle``. Neither holds business rules.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import QueryDict
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField, empty, get_error_detail

from ..models import Status, Task, TaskEvent, TaskExecution
from .envelope import StrictCharField
from .parsers import TooDeeplyNested, check_nesting

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_JSON_DEPTH = 32
BATCH_MAX = 100


def _bad_text(text: str) -> bool:
    # PostgreSQL refuses NUL in text and jsonb, and neither database can store lone surrogates
    # (searched for in C: a batch's parameters are thousands of characters).
    return "\x00" in text or (not text.isascii() and _SURROGATE.search(text) is not None)


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_json_value(value: Any, depth: int = 0) -> None:
    """Refuse JSON that the databases cannot store: NUL bytes, lone surrogates, integers
    beyond 64 bits, NaN/Infinity, and nesting deeper than ``MAX_JSON_DEPTH``."""
    if depth > MAX_JSON_DEPTH:
        raise serializers.ValidationError(f"Nested deeper than {MAX_JSON_DEPTH} levels.")
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise serializers.ValidationError("Integers must fit in 64 bits.")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise serializers.ValidationError("Numbers must be finite.")
    elif isinstance(value, str):
        if _bad_text(value):
            raise serializers.ValidationError("Text may not contain NUL or surrogate characters.")
    elif isinstance(value, dict):
        for key, item in value.items():
            if _bad_text(key):
                raise serializers.ValidationError("Keys may not contain NUL or surrogates.")
            check_json_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json_value(item, depth + 1)


def _form_encoded(field: serializers.Field) -> bool:
    # A form body is text throughout; a JSON body has types, and the schema states them.
    return isinstance(getattr(field.root, "initial_data", None), QueryDict)


class TypedIntegerField(serializers.IntegerField):
    """An integer that arrives as a JSON number (``"5"`` and ``true`` are type errors), or as
    text in a form body."""

    def to_internal_value(self, data: Any) -> int:
        typed = isinstance(data, int) and not isinstance(data, bool)
        if not (typed or (isinstance(data, str) and _form_encoded(self))):
            self.fail("invalid")
        return super().to_internal_value(data)


class TypedBooleanField(serializers.BooleanField):
    """``true`` or ``false`` in JSON (``0`` and ``"yes"`` are type errors), or text in a form."""

    def to_internal_value(self, data: Any) -> bool:
        if not (isinstance(data, bool) or (isinstance(data, str) and _form_encoded(self))):
            self.fail("invalid")
        return super().to_internal_value(data)


class TaskTypeField(serializers.CharField):
    """A task kind name; the schema lists the registered kinds (``api.schema``)."""


class SafeJSONField(serializers.JSONField):
    """A JSON field whose content both SQLite and PostgreSQL can store."""

    def to_internal_value(self, data: Any) -> Any:
        # A form or multipart field arrives as JSON text, which DRF parses here: bound its
        # nesting first, as the body parser does, or json.loads runs out of stack.
        if self.binary or getattr(data, "is_json_string", False):
            try:
                check_nesting(data)
            except TooDeeplyNested as exc:
                raise serializers.ValidationError(str(exc)) from None
        value = super().to_internal_value(data)
        check_json_value(value)
        return value


class NullableText(serializers.CharField):
    """The XGet scraper API shows absent references as ``null``; the models store them as ``""``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_null=True, **kwargs)

    # A field may represent a value as any JSON value; the stubs pin CharField's to str.
    def to_representation(self, value: Any) -> str | None:  # type: ignore[override]
        return value or None


TEXT_FIELDS = ("name", "description", "account_id", "proxy_id", "platform", "action", "batch_id")


def _text(max_length: int, **kwargs: Any) -> serializers.CharField:
    # Strict: a JSON number is a type error (the schema says string), not coerced to text.
    return StrictCharField(
        max_length=max_length, required=False, allow_blank=True, allow_null=True, **kwargs
    )


# --- output ----------------------------------------------------------------------------------


class TaskSerializer(serializers.ModelSerializer):
    task_name = serializers.CharField(source="name", read_only=True)
    describe = NullableText(source="description", read_only=True)
    account_id = NullableText(read_only=True)
    proxy_id = NullableText(read_only=True)
    error_message = NullableText(read_only=True)
    user_id = serializers.SerializerMethodField(help_text="The owner's id, as a string.")
    # A method rather than source="owner.get_username": DRF inspects a callable source on
    # every row it serializes.
    owner = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "id",
            "task_name",
            "describe",
            "task_type",
            "parameters",
            "account_id",
            "proxy_id",
            "user_id",
            "owner",
            "status",
            "error_message",
            "created_at",
            "updated_at",
            "progress",
            "progress_message",
            "priority",
            "attempts",
            "max_attempts",
            "lost_attempts",
            "run_after",
            "platform",
            "action",
            "external_id",
            "remote_status",
            "result",
            "batch_id",
            "submitted_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    # Per class (read from the class's own __dict__: a subclass has other fields).
    _built_fields: ClassVar[dict[str, serializers.Field]]

    def get_fields(self) -> dict[str, serializers.Field]:
        """ModelSerializer's fields, built once per class and copied for each instance.

        DRF builds them from the model for every instance (2.6 ms here, more than a page of
        tasks takes to serialize); they depend on ``Meta`` alone, and a copy is what each
        instance gets of its declared fields anyway.
        """
        built = type(self).__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            type(self)._built_fields = built
        return copy.deepcopy(built)

    def get_user_id(self, task: Task) -> str:
        return str(task.owner_id)

    def get_owner(self, task: Task) -> str:
        return task.owner.get_username()

    def to_representation(self, instance: Task) -> dict[str, Any]:
        """DRF's own loop, except that a field showing one column reads it off the row.

        DRF's ``get_attribute`` asks of every value whether it is a callable to call (with
        ``inspect``), which is a third of serializing a page or a batch of tasks; a column's
        value never is. Every value still goes through its field's ``to_representation``.
        """
        plan = self.__dict__.get("_columns")
        if plan is None:  # once per serializer; a list's items share its one child
            plan = self._columns = [
                (str(field.field_name), field, _column_of(field), _written(field))
                for field in self._readable_fields
            ]
        data: dict[str, Any] = {}
        for name, field, column, written in plan:  # field_name is set once the field is bound
            if column is None:
                try:
                    value = field.get_attribute(instance)
                except SkipField:
                    continue
            else:
                value = getattr(instance, column)
            if value is None:
                data[name] = None
            elif written is None:
                data[name] = field.to_representation(value)
            else:
                text = written.get(value)
                if text is None:
                    text = written[value] = field.to_representation(value)
                data[name] = text
        return data


_TASK_COLUMNS = frozenset(
    field.name for field in Task._meta.concrete_fields if not field.is_relation
)


def _written(field: serializers.Field) -> dict[Any, Any] | None:
    """For a date-time field: the texts of the values it has written (else None).

    A list's tasks share their moments (a batch has one creation time), and DRF formats each
    value again (time zone, ISO text, the "Z"): a third of writing a task's fields. The text of a
    value is its field's, so each is made once per serializer, that is, per response.
    """
    if not isinstance(field, serializers.DateTimeField):
        return None
    if not hasattr(field, "timezone"):
        # What DRF looks up for every value (the request's time zone, through a context-local),
        # pinned for this serializer's life as its ``default_timezone`` argument would pin it
        # (the stubs call it a str).
        field.timezone = field.default_timezone()  # type: ignore[assignment]
    return {}


def _column_of(field: serializers.Field) -> str | None:
    """The Task column a read-only field shows as it is, or None (anything else)."""
    sources = getattr(field, "source_attrs", None)
    if (
        isinstance(field, serializers.SerializerMethodField)
        or not sources
        or len(sources) != 1
        or sources[0] not in _TASK_COLUMNS
    ):
        return None
    return sources[0]


class TaskExecutionSerializer(serializers.ModelSerializer):
    task_id = serializers.IntegerField(read_only=True)
    account_id = NullableText(read_only=True)
    proxy_id = NullableText(read_only=True)
    error_message = NullableText(read_only=True)
    duration = serializers.FloatField(read_only=True, allow_null=True, help_text="Seconds.")
    # Not read_only: drf-spectacular marks every read-only field required, and this one is
    # absent for non-staff callers. The serializer only ever writes output.
    traceback = serializers.CharField(required=False, help_text="Staff only: absent for others.")

    class Meta:
        model = TaskExecution
        fields = [
            "id",
            "task_id",
            "account_id",
            "proxy_id",
            "status",
            "error_message",
            "started_at",
            "completed_at",
            "duration",
            "result_count",
            "attempt",
            "worker_id",
            "traceback",
        ]
        read_only_fields = fields

    def to_representation(self, instance: TaskExecution) -> dict:
        data = super().to_representation(instance)
        request = self.context.get("request")
        if not (request and request.user.is_staff):
            data.pop("traceback", None)
        return data


class TaskEventSerializer(serializers.ModelSerializer):
    execution_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = TaskEvent
        fields = ["id", "at", "verb", "actor", "from_status", "to_status", "execution_id", "data"]
        read_only_fields = fields


# --- input -----------------------------------------------------------------------------------


class _TaskFieldsInput(serializers.Serializer):
    """Fields a client may set; ``source`` maps seed names to model fields."""

    task_name = _text(200, source="name")
    describe = _text(10_000, source="description")
    parameters = SafeJSONField(
        required=False, allow_null=True, help_text="A JSON object, validated against the task type."
    )
    account_id = _text(64)
    proxy_id = _text(64)
    priority = TypedIntegerField(required=False, min_value=-100, max_value=100)
    max_attempts = TypedIntegerField(required=False, min_value=1, max_value=100)

    def to_internal_value(self, data: Any) -> dict:
        """DRF's own loop, except that a field a JSON object leaves out is passed over at once
        when DRF would skip it anyway (no default, or a partial update).

        DRF asks each such field for its value, its default, and catches the ``SkipField`` it
        raises: most of the fourteen fields are absent from a typical task, so that was half of
        validating one, and a batch validates a hundred. Forms (a ``QueryDict``) and anything
        that is not an object take DRF's path unchanged.
        """
        if type(data) is not dict:
            return super().to_internal_value(data)
        plan = self.__dict__.get("_input_plan")
        if plan is None:  # once per serializer; a batch's items share its one child
            partial = bool(getattr(self.root, "partial", False))
            plan = self._input_plan = [
                (
                    str(field.field_name),
                    field,
                    partial or (not field.required and field.default is empty),
                    getattr(self, f"validate_{field.field_name}", None),
                )
                for field in self._writable_fields
            ]
        validated: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for name, field, skipped_when_absent, validate_method in plan:
            if skipped_when_absent and name not in data:
                continue
            try:
                value = field.run_validation(field.get_value(data))
                if validate_method is not None:
                    value = validate_method(value)
            except serializers.ValidationError as exc:
                errors[name] = exc.detail
            except DjangoValidationError as exc:
                errors[name] = get_error_detail(exc)
            except SkipField:
                pass
            else:
                self.set_value(validated, field.source_attrs, value)
        if errors:
            raise serializers.ValidationError(errors)
        return validated

    def run_validators(self, value: Any) -> None:
        # DRF builds the read-only fields' defaults for the serializer's validators first,
        # once per item; these serializers have none.
        if self.validators:
            super().run_validators(value)

    def validate(self, attrs: dict) -> dict:
        # The models store "no value" as "", so null and "" mean the same for text; null
        # parameters are the kind's defaults, like {}.
        empty = {"parameters": {}, **dict.fromkeys(TEXT_FIELDS, "")}
        return {
            key: empty[key] if value is None and key in empty else value
            for key, value in attrs.items()
        }


class TaskCreateInput(_TaskFieldsInput):
    task_type = TaskTypeField(max_length=100)
    parameters = SafeJSONField(required=False, allow_null=True, default=dict)
    platform = _text(50)
    action = _text(50)
    batch_id = _text(64)
    run_after = serializers.DateTimeField(required=False, allow_null=True)
    start = TypedBooleanField(
        required=False, default=False, help_text="Queue at once (QUEUED) instead of PENDING."
    )
    user_id = _text(
        150,
        help_text="Whose task it is: a user's id or username. Staff create the task for that "
        "user (who owns it and pays its quota); anyone else may name only themselves. Absent, "
        "null or empty: the caller.",
    )


class TaskUpdateInput(_TaskFieldsInput):
    """PUT and PATCH alike: only the fields sent are changed. Labels (task_name, describe)
    are editable in any status; the rest only while the task is PENDING, STOPPED, FAILED or
    CANCELLED (otherwise 409)."""

    platform = _text(50)
    action = _text(50)


class TaskCloneInput(_TaskFieldsInput):
    """Overrides for the copy; ``parameters`` are merged over the original's, key by key."""

    batch_id = _text(64)
    start = TypedBooleanField(required=False, default=False)


class CancelInput(serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="")


# --- documentation only ----------------------------------------------------------------------


class ErrorResponse(serializers.Serializer):
    detail = serializers.CharField()


class ConflictResponse(serializers.Serializer):
    detail = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices, help_text="The task's status now.")


@extend_schema_field(
    {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}
)
class LocField(serializers.ListField):
    pass


class ValidationErrorItem(serializers.Serializer):
    loc = LocField(
        help_text="Field path; list positions (batch items) are integers. A body's fields "
        "start with `body` (422), a query parameter's do not (400)."
    )
    msg = serializers.CharField()
    type = serializers.CharField(
        help_text="On a 422, pydantic's error type (`missing`, `string_type`, `int_parsing`, "
        "`less_than_equal`, `value_error`, `json_invalid`...)."
    )
    input = serializers.JSONField(required=False, help_text="422 only: the value refused.")
    ctx = serializers.DictField(
        required=False, help_text="422 only, where there is one: the limit broken (`le`, ...)."
    )


class ValidationErrorResponse(serializers.Serializer):
    detail = ValidationErrorItem(many=True)


UnprocessableResponse = PolymorphicProxySerializer(
    component_name="Unprocessable",
    serializers=[ValidationErrorResponse, ErrorResponse],
    resource_type_field_name=None,
    help_text="The body failed validation (the list), or an Idempotency-Key was reused with "
    "another body (one message).",
)


BadRequestResponse = PolymorphicProxySerializer(
    component_name="BadRequest",
    serializers=[ValidationErrorResponse, ErrorResponse],
    resource_type_field_name=None,
    help_text="Field errors as a list, or one message (e.g. a JSON parse error).",
)


class DeletedResponse(serializers.Serializer):
    message = serializers.CharField()


class DurationStats(serializers.Serializer):
    count = serializers.IntegerField()
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    approximate = serializers.BooleanField(
        help_text="True when read from the duration histogram (within 9% of the exact value)."
    )


class StatisticsResponse(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())
    by_type = serializers.DictField(child=serializers.IntegerField())
    by_platform = serializers.DictField(child=serializers.IntegerField())
    success_rate = serializers.FloatField(
        allow_null=True, help_text="COMPLETED / (COMPLETED + FAILED), null when neither."
    )
    duration = DurationStats(help_text="Seconds, over completed executions of these tasks.")
