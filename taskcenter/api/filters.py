"""List filters: every field the replaced systems filter on, several statuses at once, windows given
as ISO 8601 or epoch seconds. A value that does not parse is a 400 naming the parameter."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field

from ..models import ExecutionStatus, Status, Task, TaskExecution

INT64_MAX = 2**63 - 1
# Epoch seconds from 1970 to 5138: every value the pattern admits is a time Python can hold.
EPOCH_PATTERN = r"^[0-9]{1,11}(\.[0-9]{1,9})?$"
_EPOCH = re.compile(EPOCH_PATTERN)


class CommaMultipleChoiceField(forms.MultipleChoiceField):
    """``status=FAILED,CANCELLED`` or ``status=FAILED&status=CANCELLED`` (case-insensitive)."""

    def to_python(self, value: Any) -> list[str]:
        values = super().to_python(value)
        return [part.strip().upper() for item in values for part in item.split(",") if part.strip()]


class InFilter(django_filters.MultipleChoiceFilter):
    field_class = CommaMultipleChoiceField

    def filter(self, qs: QuerySet, value: list[str]) -> QuerySet:
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__in": value})


class CommaListField(forms.CharField):
    # Django lets a field clean to any type; the stubs pin CharField's to_python to text.
    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""  # None only with empty_value=None, not set here
        # Validators run on the list, whose repr escapes NUL: check the raw text here.
        if "\x00" in text:
            raise forms.ValidationError("Null characters are not allowed.", code="null_characters")
        return [part.strip() for part in text.split(",") if part.strip()]


class CharInFilter(django_filters.Filter):
    """A free-text field with comma-separated alternatives: ``task_type=demo.noop,demo.flaky``."""

    field_class = CommaListField

    def filter(self, qs: QuerySet, value: list[str]) -> QuerySet:
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__in": value})


@extend_schema_field({"type": "integer", "minimum": 0, "maximum": INT64_MAX})
class Int64Filter(django_filters.NumberFilter):
    """An integer that fits the database column; anything else is a 400, not an overflow."""

    # django-filter takes any number field here; the stubs pin NumberFilter's to DecimalField.
    field_class = forms.IntegerField  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", INT64_MAX)
        super().__init__(*args, **kwargs)


class OwnerField(forms.Field):
    """An owner's id, or (the XGet scraper API lists ``user_id=user-789``) a username; cleans to
    the owner's id, or 0 (no one) for a username nobody has."""

    default_error_messages = {"invalid": "Enter a user id (a whole number) or a username."}

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        text = str(value).strip()
        if text.isascii() and text.isdigit():
            if len(text) > 19 or int(text) > INT64_MAX:
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
            return int(text)
        username_field = get_user_model()._meta.get_field(get_user_model().USERNAME_FIELD)
        assert isinstance(username_field, models.Field)  # USERNAME_FIELD is a concrete field
        try:
            username = username_field.clean(text, None)
        except ValidationError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        owner = get_user_model().objects.filter(**{username_field.name: username}).first()
        return owner.pk if owner else 0


@extend_schema_field({"type": "string", "description": "A user id, or a username."})
class OwnerFilter(django_filters.Filter):
    field_class = OwnerField

    def filter(self, qs: QuerySet, value: int | None) -> QuerySet:
        return qs if value is None else qs.filter(owner_id=value)


class FlexibleDateTimeField(forms.Field):
    """ISO 8601 date or date-time (naive means the server's time zone), or epoch seconds."""

    default_error_messages = {
        "invalid": "Enter an ISO 8601 date-time (2024-01-15T10:30:00Z), a date, or epoch seconds."
    }

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        text = str(value).strip()
        try:
            if _EPOCH.match(text):
                return datetime.fromtimestamp(float(text), tz=UTC)
            parsed = parse_datetime(text)
            if parsed is None:
                day = parse_date(text)
                if day is None:
                    raise ValueError(text)
                parsed = datetime(day.year, day.month, day.day)
        except (ValueError, OverflowError, OSError):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        try:
            if timezone.is_naive(parsed):
                parsed = timezone.make_aware(parsed)
            # In UTC: PostgreSQL refuses offsets beyond +-15:59 that Python accepts (+22:20),
            # and 0001-01-01T00:00+05:00 has no UTC equivalent at all.
            return parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


@extend_schema_field(
    {
        # An empty value means "not set", as for every filter (the browsable API's filter
        # form sends every field): documented, so that clients and fuzzers may rely on it.
        "anyOf": [
            {"type": "string", "format": "date-time"},
            {"type": "string", "format": "date"},
            {"type": "string", "pattern": EPOCH_PATTERN},
            {"type": "string", "maxLength": 0},
        ],
        "description": "ISO 8601 date-time (or a date, or epoch seconds such as 1705314600); "
        "empty means not set.",
    }
)
class TimeFilter(django_filters.Filter):
    field_class = FlexibleDateTimeField


class StableOrderingFilter(django_filters.OrderingFilter):
    """The requested order, then ``-id``: rows with equal keys must not swap between pages."""

    def filter(self, qs: QuerySet, value: list[str] | None) -> QuerySet:
        qs = super().filter(qs, value)
        return qs.order_by(*qs.query.order_by, "-id") if value else qs


class StaticFormFilterSet(django_filters.FilterSet):
    """A filter set whose form class is made once per language, not once per request.

    django-filter builds a new form class, and a form field for each filter, every time a list
    is asked for (about 2 ms of a 13 ms task list). Nothing in these filters depends on the
    request; only the fields' labels depend on the active language.
    """

    _form_classes: ClassVar[dict[tuple[type, str | None], type[forms.Form]]] = {}

    def get_form_class(self) -> type[forms.Form]:
        key = (type(self), translation.get_language())
        form_class = self._form_classes.get(key)
        if form_class is None:
            form_class = self._form_classes[key] = super().get_form_class()
        return form_class


class TaskFilter(StaticFormFilterSet):
    status = InFilter(choices=Status.choices, help_text="One or more, comma-separated.")
    task_type = CharInFilter(help_text="One or more, comma-separated.")
    platform = CharInFilter(help_text="One or more, comma-separated.")
    action = django_filters.CharFilter()
    owner = django_filters.CharFilter(
        field_name="owner__username", help_text="Owner's username (staff see every owner)."
    )
    user_id = OwnerFilter(help_text="Owner's id, or username.")
    account_id = django_filters.CharFilter()
    proxy_id = django_filters.CharFilter()
    external_id = django_filters.CharFilter(help_text="The task's id on the remote platform.")
    batch_id = django_filters.CharFilter()
    created_after = TimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = TimeFilter(field_name="created_at", lookup_expr="lt")
    finished_after = TimeFilter(field_name="finished_at", lookup_expr="gte")
    finished_before = TimeFilter(field_name="finished_at", lookup_expr="lt")
    ordering = StableOrderingFilter(
        fields=(
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
            ("finished_at", "finished_at"),
            ("priority", "priority"),
            ("status", "status"),
            ("id", "id"),
        ),
        help_text="A field, `-field` for descending; default `-created_at`.",
    )

    class Meta:
        model = Task
        fields: list[str] = []


class TaskExecutionFilter(StaticFormFilterSet):
    task_id = Int64Filter(field_name="task_id")
    status = InFilter(choices=ExecutionStatus.choices, help_text="One or more, comma-separated.")
    worker_id = django_filters.CharFilter()
    started_after = TimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = TimeFilter(field_name="started_at", lookup_expr="lt")
    ordering = StableOrderingFilter(
        fields=(("started_at", "started_at"), ("duration", "duration"), ("id", "id")),
        help_text="A field, `-field` for descending; default `-started_at`.",
    )

    class Meta:
        model = TaskExecution
        fields: list[str] = []
