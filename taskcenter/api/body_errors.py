"""A request body that fails validation on ``/api/v1`` is a 422 in FastAPI's shape.

The XGet scraper API is a FastAPI service: its status table gives 422 to request data that fails
validation, and its clients read FastAPI's body::

    {"detail": [{"type": "missing", "loc": ["body", "task_type"], "msg": "Field required",
                 "input": {...}}]}

``loc`` starts with ``"body"`` and goes down through object keys and list positions; ``type``
and ``msg`` are pydantic v2's for the same fault (``missing``, ``string_type``, ``int_parsing``,
``less_than_equal``...; a rule of ours that pydantic has no word for is its ``value_error``);
``input`` is the value refused (for a missing field, the object it is missing from) and ``ctx``
the limit broken, where pydantic gives one. A JSON syntax error is pydantic's ``json_invalid``
at the character where parsing stopped. Query parameters and headers stay 400, as that table
says for malformed parameters, in the canonical list shape.

The views validate with DRF serializers and the task kinds' own; ``located`` translates their
errors, reading each field's class and limits, so the translation cannot drift from the rules.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from rest_framework import serializers, status
from rest_framework.exceptions import ErrorDetail, ParseError, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings

from ..errors import UnknownKind
from ..kinds import all_kinds, get_kind
from .exceptions import api_exception_handler
from .parsers import SafeJSONParser, TooDeeplyNested, check_nesting

Loc = list[str | int]


class BodyInvalid(ValidationError):
    """The body failed validation: ``errors`` are FastAPI's items. ``detail`` keeps DRF's
    nested form, so a handler that knows nothing of this class still answers sensibly."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY

    def __init__(self, errors: list[dict[str, Any]], detail: Any = None) -> None:
        super().__init__(detail if detail is not None else [item["msg"] for item in errors])
        self.errors = errors


def xget_exception_handler(exc: Exception, context: dict) -> Response | None:
    """The canonical handler, with ``BodyInvalid`` answered as FastAPI answers it."""
    if isinstance(exc, BodyInvalid):
        return Response({"detail": exc.errors}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
    return api_exception_handler(exc, context)


@contextmanager
def body_errors(
    schema: serializers.BaseSerializer, data: Any, *, task_type: str | None = None
) -> Iterator[None]:
    """Validation errors raised inside, by ``schema`` or by the lifecycle it feeds (a task
    kind's parameters, an unknown kind), become ``BodyInvalid`` located in ``data``.

    ``task_type`` names the kind whose parameters the body carries when the body itself does
    not say (an edit or a clone of an existing task); that kind being unknown (a demo kind
    turned off since) is then no fault of the body, and stays the canonical 400. Keep the
    block to body work: anything else raising ``ValidationError`` inside it would be reported
    as the body's fault.
    """
    try:
        yield
    except BodyInvalid:
        raise
    except UnknownKind as exc:
        if task_type is not None:
            raise
        detail = {"task_type": [ErrorDetail(str(exc), code="unknown_kind")]}
        raise BodyInvalid(located(detail, data, schema, task_type=task_type), detail) from None
    except ValidationError as exc:
        errors = located(exc.detail, data, schema, task_type=task_type)
        raise BodyInvalid(errors, exc.detail) from None


class BodyJSONParser(SafeJSONParser):
    """The canonical JSON parser; a syntax error is FastAPI's 422 ``json_invalid``.

    Nesting beyond the bound and bytes that are not text stay 400 ("There was an error parsing
    the body" is FastAPI's own 400 for what its JSON decoder cannot even start on).
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except ParseError:
            encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
            syntax = _syntax_error(raw, encoding)
            if syntax is None:
                raise
            position, reason = syntax
            item = {
                "type": "json_invalid",
                "loc": ["body", position],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": reason},
            }
            raise BodyInvalid([item], {"body": [f"JSON decode error: {reason}"]}) from None


def _syntax_error(raw: bytes, encoding: str) -> tuple[int, str] | None:
    """Where and why ``raw`` is not JSON, or None when the refusal had another cause."""
    try:
        check_nesting(raw)
        json.loads(raw.decode(encoding))
    except json.JSONDecodeError as exc:
        return exc.pos, exc.msg
    except (TooDeeplyNested, UnicodeDecodeError, LookupError, ValueError, RecursionError):
        return None
    return None  # parsed here: refused for a reason of DRF's (NaN), which stays a 400


# --- DRF's errors as pydantic's ------------------------------------------------------------------


def located(
    detail: Any, data: Any, schema: serializers.BaseSerializer | None, *, task_type: str | None
) -> list[dict[str, Any]]:
    """DRF's nested ``detail`` for ``data`` validated by ``schema``, as FastAPI's items."""
    items = list(_walk(detail, data, schema, ["body"], None, task_type))
    # A refusal always names something, if only the body.
    return items or [_error("value_error", ["body"], "Value error, Invalid input.", data)]


def _walk(
    detail: Any, value: Any, field: Any, loc: Loc, parent: Any, task_type: str | None
) -> Iterator[dict[str, Any]]:
    if isinstance(detail, Mapping):
        for key, sub in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:  # about the object itself
                yield from _walk(sub, value, field, loc, parent, task_type)
                continue
            part: str | int = key if isinstance(key, int) else str(key)
            child = _child(field, part, value, task_type)
            yield from _walk(sub, _get(value, part), child, [*loc, part], value, task_type)
    elif isinstance(detail, list) and not all(isinstance(d, str) for d in detail):
        # One entry per list item (a batch); valid items report {}.
        for index, sub in enumerate(detail):
            if sub:
                child = _child(field, index, value, task_type)
                yield from _walk(sub, _get(value, index), child, [*loc, index], value, task_type)
    elif isinstance(detail, list):
        for message in detail:
            yield _item(message, field, value, loc, parent)
    else:
        yield _item(detail, field, value, loc, parent)


def _get(value: Any, key: str | int) -> Any:
    if isinstance(value, Mapping):
        return value.get(key)
    if isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
        return value[key]
    return None


def _child(field: Any, key: str | int, value: Any, task_type: str | None) -> Any:
    """The field that validated ``key`` of ``value`` under ``field``, if known."""
    if isinstance(field, serializers.ListSerializer | serializers.ListField):
        return field.child
    if not isinstance(field, serializers.Serializer) or not isinstance(key, str):
        return None
    child = field.fields.get(key)
    if key == "parameters" and isinstance(child, serializers.JSONField):
        # A task's parameters are checked by its kind's own serializer.
        name = _get(value, "task_type") or task_type
        try:
            params = get_kind(name).params if isinstance(name, str) else None
        except UnknownKind:
            params = None
        return params() if params is not None else child
    return child


def _item(message: Any, field: Any, value: Any, loc: Loc, parent: Any) -> dict[str, Any]:
    code = str(getattr(message, "code", None) or "invalid")
    text = str(message)
    if code == "required" or (code == "null" and isinstance(field, serializers.BaseSerializer)):
        # FastAPI reports a null body as a missing one.
        missing_from = parent if code == "required" else None
        return _error("missing", loc, "Field required", missing_from)
    if loc[-1] == "parameters" and code == "invalid" and not isinstance(value, Mapping):
        # The XGet scraper API declares parameters a plain object, pydantic's dict.
        return _error("dict_type", loc, "Input should be a valid dictionary", value)
    kind, msg, ctx = _pydantic_error(code, text, field, value)
    return _error(kind, loc, msg, value, ctx)


def _error(
    kind: str, loc: Loc, msg: str, value: Any, ctx: dict[str, Any] | None = None
) -> dict[str, Any]:
    item = {"type": kind, "loc": loc, "msg": msg, "input": _plain(value)}
    if ctx:
        item["ctx"] = ctx
    return item


def _pydantic_error(
    code: str, text: str, field: Any, value: Any
) -> tuple[str, str, dict[str, Any] | None]:
    """pydantic v2's ``(type, msg, ctx)`` for DRF's error ``code`` on ``field``."""
    if isinstance(field, serializers.ListSerializer | serializers.ListField):
        return _list_error(code, field, value) or _value_error(text)
    if isinstance(field, serializers.BaseSerializer):
        if code == "invalid" and not isinstance(value, Mapping):
            return (
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
                None,
            )
        return _value_error(text)
    if code == "unknown_kind":
        expected = _alternatives(list(all_kinds()))
        return "enum", f"Input should be {expected}", {"expected": expected}
    if isinstance(field, serializers.BooleanField):
        if code in {"invalid", "null"} and isinstance(value, str):
            unreadable = "Input should be a valid boolean, unable to interpret input"
            return "bool_parsing", unreadable, None
        if code in {"invalid", "null"}:
            return "bool_type", "Input should be a valid boolean", None
    if isinstance(field, serializers.IntegerField):
        return _number_error(code, field, value, integer=True) or _value_error(text)
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        return _number_error(code, field, value, integer=False) or _value_error(text)
    if isinstance(field, serializers.DateTimeField) and code in {"invalid", "null", "date"}:
        if isinstance(value, str):
            return (
                "datetime_parsing",
                "Input should be a valid datetime, input is not an ISO 8601 datetime",
                {"error": "input is not an ISO 8601 datetime"},
            )
        return "datetime_type", "Input should be a valid datetime", None
    if isinstance(field, serializers.ChoiceField) and code == "invalid_choice":
        expected = _alternatives([str(choice) for choice in field.choices])
        return "enum", f"Input should be {expected}", {"expected": expected}
    if isinstance(field, serializers.CharField):
        return _text_error(code, field, value) or _value_error(text)
    return _value_error(text)


def _text_error(
    code: str, field: serializers.CharField, value: Any
) -> tuple[str, str, dict[str, Any] | None] | None:
    if code in {"invalid", "null"}:
        if not isinstance(value, str):
            return "string_type", "Input should be a valid string", None
        pattern = _pattern(field)
        if code == "invalid" and pattern is not None:
            return (
                "string_pattern_mismatch",
                f"String should match pattern '{pattern}'",
                {"pattern": pattern},
            )
        return None  # a rule of the field's own: pydantic's value_error
    if code == "blank" or (code == "min_length" and field.min_length is not None):
        least = 1 if code == "blank" else int(field.min_length or 1)
        return (
            "string_too_short",
            f"String should have at least {least} character{_plural(least)}",
            {"min_length": least},
        )
    if code == "max_length" and field.max_length is not None:
        most = int(field.max_length)
        return (
            "string_too_long",
            f"String should have at most {most} character{_plural(most)}",
            {"max_length": most},
        )
    return None


def _pattern(field: serializers.CharField) -> str | None:
    """The pattern of a ``RegexField`` (DRF keeps it only in its validator)."""
    if not isinstance(field, serializers.RegexField):
        return None
    for validator in field.validators:
        if isinstance(validator, RegexValidator):
            return str(getattr(validator.regex, "pattern", validator.regex))
    return None


def _number_error(
    code: str, field: Any, value: Any, *, integer: bool
) -> tuple[str, str, dict[str, Any] | None] | None:
    if code == "max_value" and field.max_value is not None:
        return (
            "less_than_equal",
            f"Input should be less than or equal to {field.max_value}",
            {"le": field.max_value},
        )
    if code == "min_value" and field.min_value is not None:
        return (
            "greater_than_equal",
            f"Input should be greater than or equal to {field.min_value}",
            {"ge": field.min_value},
        )
    if code == "max_string_length":
        return (
            "int_parsing_size" if integer else "float_parsing",
            "Unable to parse input string as an integer, exceeded maximum size"
            if integer
            else "Input should be a valid number, unable to parse string as a number",
            None,
        )
    if code not in {"invalid", "null"}:
        return None
    if not integer:
        if isinstance(value, str):
            return (
                "float_parsing",
                "Input should be a valid number, unable to parse string as a number",
                None,
            )
        return "float_type", "Input should be a valid number", None
    if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
        return (
            "int_from_float",
            "Input should be a valid integer, got a number with a fractional part",
            None,
        )
    if isinstance(value, str) and not value.strip().lstrip("+-").isdigit():
        return (
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
            None,
        )
    # A JSON string of digits or a boolean: the typed fields take only JSON numbers, as
    # pydantic's strict mode does.
    return "int_type", "Input should be a valid integer", None


def _list_error(code: str, field: Any, value: Any) -> tuple[str, str, dict[str, Any] | None] | None:
    if code in {"not_a_list", "null"}:
        return "list_type", "Input should be a valid list", None
    actual = len(value) if isinstance(value, list) else 0
    if code in {"empty", "min_length"}:
        least = int(getattr(field, "min_length", None) or 1)
        return (
            "too_short",
            f"List should have at least {least} item{_plural(least)} after validation, "
            f"not {actual}",
            {"field_type": "List", "min_length": least, "actual_length": actual},
        )
    if code == "max_length" and getattr(field, "max_length", None) is not None:
        most = int(field.max_length)
        return (
            "too_long",
            f"List should have at most {most} item{_plural(most)} after validation, not {actual}",
            {"field_type": "List", "max_length": most, "actual_length": actual},
        )
    return None


def _value_error(text: str) -> tuple[str, str, dict[str, Any] | None]:
    # pydantic's wording for a ValueError raised by a validator of the model's own.
    return "value_error", f"Value error, {text}", None


def _plural(count: int) -> str:
    return "" if count == 1 else "s"


def _alternatives(names: list[str]) -> str:
    quoted = [f"'{name}'" for name in names]
    if len(quoted) < 2:
        return "".join(quoted)
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _plain(value: Any) -> Any:
    """``value`` as JSON the renderer can always write: lone surrogates become U+FFFD,
    infinities null, anything else (an uploaded file) its text."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in value)
    if isinstance(value, Mapping):
        if hasattr(value, "dict"):  # a form body: the last value of each key, as DRF reads it
            value = value.dict()
        return {_plain(str(key)): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return _plain(str(value))
