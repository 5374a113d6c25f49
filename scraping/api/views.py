"""The XGet scraper API's result endpoints over ``scraping.ScrapeResult``.

* ``GET /tasks/{id}/results``: one task's rows, ``skip``/``limit`` paged, ``data_type`` filtered.
* ``GET /tasks/search/results``: rows of the requesting user's tasks (staff: all) whose JSON
  ``data`` matches every ``key:value`` term of ``query``.
* ``POST`` (or ``GET``) ``/tasks/export/{id}?format=json|csv``: every row of one task, streamed.

Tasks are scoped like the task routes: another user's task is a 404 ``{"detail": "Task not
found"}``. Search keys are validated and turned into JSON key transforms; values reach the
database only as query parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import JSONField, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTransform, KeyTransformExact, KeyTransformIContains
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from scraping.api.envelope import ResultPagination
from scraping.api.serializers import (
    DEFAULT_LIMIT,
    MAX_DATA_TYPE_LENGTH,
    MAX_LIMIT,
    MAX_SKIP,
    PAGE_PARAMETERS,
    TASK_ID,
    ExportResponse,
    ResultPage,
    ResultSerializer,
)
from scraping.export import export_response
from scraping.models import ScrapeResult
from scraping.search_index import MIN_LENGTH as MIN_INDEXED_LENGTH
from scraping.search_index import candidates_sql, has_search_index
from taskcenter.api.serializers import BadRequestResponse, ErrorResponse
from taskcenter.models import Task

MAX_TERMS = 10
MAX_KEY_LENGTH = 200
MAX_VALUE_LENGTH = 200
KEY_RE = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")
# parse_query's rules as one pattern, so the schema admits exactly what the server accepts:
# 1-10 comma-separated terms, each a dotted key, a colon and a value of 1-200 characters once
# surrounding spaces are dropped (no commas). Keys are at most 200 characters, beyond what the
# pattern states. Spaces are ASCII ones only: regex engines disagree on what else ``\s`` means.
SPACES = " \t\n\r\x0b\x0c"
_SPACE = r"[ \t\n\r\x0b\x0c]"
_KEY = r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*"
_VALUE = r"[^, \t\n\r\x0b\x0c\x00](?:[^,\x00]{0,198}[^, \t\n\r\x0b\x0c\x00])?"
_TERM = rf"{_SPACE}*{_KEY}{_SPACE}*:{_SPACE}*{_VALUE}{_SPACE}*"
QUERY_PATTERN = rf"^{_TERM}(?:,{_TERM}){{0,{MAX_TERMS - 1}}}$"
UNINDEXABLE = frozenset('%_\\":,')
NUMBER_TEXT = re.compile(r"[0-9eE.+-]+")

BAD_REQUEST = OpenApiResponse(BadRequestResponse, "Invalid input; `loc` names the parameter.")
NOT_FOUND = OpenApiResponse(ErrorResponse, "No such task, or not yours.")

SEARCH_DESCRIPTION = (
    "`query` is `key:value` terms separated by commas (at most 10), all of which must match. "
    "A key is letters, digits and `_`, with dots for nested keys (`user.username`); an "
    "all-digit part indexes an array. The value is everything after the first colon (no "
    "commas; surrounding spaces are dropped) and matches when the row's `data` at that key, "
    "as text, contains it case-insensitively: strings by substring, numbers by their decimal "
    "text (`retweets:1` matches 1 and 10), objects and arrays by their JSON text. `true` and "
    "`false` also match JSON booleans exactly."
)


# --- parameters -------------------------------------------------------------------------------


def _bad_text(text: str) -> bool:
    return "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text)


def _whole_number(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.startswith("-") and raw[1:].isascii() and raw[1:].isdigit():
        raise ValidationError({name: [f"Must be at least {low}."]})
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ValidationError({name: [f"Must be a whole number from {low} to {high}."]})
    value = int(raw)
    if value < low:
        raise ValidationError({name: [f"Must be at least {low}."]})
    if value > high:
        raise ValidationError({name: [f"Must be at most {high}."]})
    return value


def _data_type(request: Request) -> str | None:
    raw = request.query_params.get("data_type")
    if not raw:
        return None
    if _bad_text(raw) or len(raw) > MAX_DATA_TYPE_LENGTH:
        raise ValidationError(
            {"data_type": [f"At most {MAX_DATA_TYPE_LENGTH} characters, without NUL."]}
        )
    return raw


@dataclass(frozen=True)
class Term:
    """One ``key:value`` search term; ``path`` is the key split on dots."""

    path: tuple[str, ...]
    value: str

    def condition(self) -> Q:
        """Match ``data`` at ``path`` against ``value``, as described in SEARCH_DESCRIPTION.

        Built from key transforms over validated key parts, so the key never becomes SQL text
        and the value is bound as a parameter (LIKE wildcards in it are escaped by Django).
        """
        target: Any = "data"
        for part in self.path:
            target = KeyTransform(part, target)
        condition = Q(KeyTransformIContains(target, self.value))
        lowered = self.value.lower()
        if lowered in {"true", "false"}:
            condition |= Q(KeyTransformExact(target, Value(lowered == "true", JSONField())))
        return condition

    def index_pattern(self) -> str | None:
        """A LIKE pattern that every row matching this term has in its raw JSON text, for the
        SQLite trigram index (``scraping.search_index``); None when the value's text in the
        stored JSON may differ from the value itself.

        Stored JSON escapes ``"``, ``\\`` and everything beyond ASCII, and writes objects with
        spaces after ``:`` (a matched object's text has none), so values holding those are left
        to the exact condition alone, as are number-like values (``1e3`` may be stored as
        ``1000.0``), ``%`` and ``_`` (LIKE wildcards), and values too short for trigrams.
        """
        value = self.value
        if (
            len(value) < MIN_INDEXED_LENGTH
            or not (value.isascii() and value.isprintable())
            or not UNINDEXABLE.isdisjoint(value)
            or NUMBER_TEXT.fullmatch(value)
        ):
            return None
        return f"%{value}%"


def parse_query(raw: str | None) -> list[Term]:
    """``key1:value1,key2:value2`` -> terms; anything malformed is a 400 naming ``query``."""

    def bad(message: str) -> ValidationError:
        return ValidationError({"query": [message]})

    if raw is None or not raw.strip(SPACES):
        raise bad("Required: key:value terms separated by commas.")
    if _bad_text(raw):
        raise bad("May not contain NUL characters.")
    parts = raw.split(",")
    if len(parts) > MAX_TERMS:
        raise bad(f"At most {MAX_TERMS} terms.")
    terms = []
    for part in parts:
        key, colon, value = part.partition(":")
        key, value = key.strip(SPACES), value.strip(SPACES)
        if not colon:
            raise bad(f"Term {part.strip(SPACES)!r} is not key:value.")
        if not key:
            raise bad(f"Term {part.strip(SPACES)!r} has an empty key.")
        if len(key) > MAX_KEY_LENGTH or not KEY_RE.fullmatch(key):
            raise bad(
                f"Key {key[:MAX_KEY_LENGTH]!r} may only hold letters, digits and _, "
                "with dots between nested keys."
            )
        if not value:
            raise bad(f"Term {key!r} has an empty value.")
        if len(value) > MAX_VALUE_LENGTH:
            raise bad(f"Values are at most {MAX_VALUE_LENGTH} characters.")
        terms.append(Term(tuple(key.split(".")), value))
    return terms


def _user_tasks(request: Request) -> QuerySet[Task]:
    return Task.objects.visible_to(request.user)


def _task_or_404(request: Request, task_id: str) -> Task:
    task = _user_tasks(request).filter(pk=task_id).only("pk").first()
    if task is None:
        raise NotFound("Task not found")
    return task


# --- serializers ------------------------------------------------------------------------------


def paged_response(request: Request, rows: QuerySet[ScrapeResult]) -> Response:
    """A page of ``rows`` (optionally of one ``data_type``) in id order, as the XGet scraper
    API pages results (see ``ResultPagination``)."""
    pagination = ResultPagination()
    skip = _whole_number(request, "skip", 0, 0, MAX_SKIP)
    limit = _whole_number(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    data_type = _data_type(request)
    if data_type is not None:
        rows = rows.filter(data_type=data_type)
    items = pagination.paginate(rows.order_by("id"), skip=skip, limit=limit)
    # many=True makes a ListSerializer: its data is the list, not ResultSerializer's `data` field.
    rows_out: BaseSerializer = ResultSerializer(items, many=True)
    return pagination.get_paginated_response(rows_out.data)


class TaskResultsView(APIView):
    """One task's collected rows."""

    @extend_schema(
        operation_id="tasks_results_list",
        parameters=[TASK_ID, *PAGE_PARAMETERS],
        responses={200: ResultPage, 400: BAD_REQUEST, 404: NOT_FOUND},
        tags=["tasks"],
    )
    def get(self, request: Request, id: str) -> Response:
        """A task's results in id order, paged by `skip` and `limit`."""
        task = _task_or_404(request, id)
        return paged_response(request, ScrapeResult.objects.filter(task_id=task.pk))


class ResultSearchView(APIView):
    """Rows of the requesting user's tasks (staff: everyone's) matching ``query``."""

    @extend_schema(
        operation_id="tasks_results_search",
        description=SEARCH_DESCRIPTION,
        parameters=[
            OpenApiParameter(
                "query",
                {"type": "string", "maxLength": 4000, "pattern": QUERY_PATTERN},
                required=True,
                description="`key1:value1,key2:value2`, e.g. `user.username:elonmusk,text:tesla`.",
            ),
            *PAGE_PARAMETERS,
        ],
        responses={200: ResultPage, 400: BAD_REQUEST},
        tags=["tasks"],
    )
    def get(self, request: Request) -> Response:
        """Search the results of your tasks by `key:value` terms on their data (AND)."""
        terms = parse_query(request.query_params.get("query"))
        rows = ScrapeResult.objects.visible_to(request.user)
        for term in terms:
            rows = rows.filter(term.condition())
        if has_search_index(connections[rows.db]):
            patterns = [pattern for term in terms if (pattern := term.index_pattern())]
            if patterns:
                # Candidates from the trigram index; the exact conditions above decide. The
                # SQL is built from constants; the patterns are bound parameters.
                candidates = RawSQL(candidates_sql(len(patterns)), patterns)  # noqa: S611
                rows = rows.filter(pk__in=candidates)
        return paged_response(request, rows)


# --- export -----------------------------------------------------------------------------------


class _NoFormatOverride:
    """DRF settings without ``?format=`` renderer selection: here ``format`` is ours."""

    URL_FORMAT_OVERRIDE = None

    def __getattr__(self, name: str) -> Any:
        return getattr(api_settings, name)


class ExportNegotiation(DefaultContentNegotiation):
    # DRF only reads attributes off it; the stubs want the settings object's own type.
    settings = _NoFormatOverride()  # type: ignore[assignment]


EXPORT_SCHEMA: dict[str, Any] = dict(
    description="Streams every row of the task in id order. JSON: `{data, total}`. CSV: an "
    "attachment `task_<id>_results.csv`; columns are `id`, the dotted keys of `data` found "
    "in the first 1000 rows (keys seen only in later rows are not columns; lists are JSON "
    "text), and `created_at`; cells starting with `=`, `+`, `-`, `@`, tab or CR are "
    "prefixed with `'`.",
    parameters=[
        TASK_ID,
        OpenApiParameter(
            "format",
            {"type": "string", "enum": ["json", "csv"], "default": "json"},
            description="`json` (default) or `csv`; anything else is a 400 naming `format`.",
        ),
    ],
    request=None,
    responses={
        (200, "application/json"): ExportResponse,
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, "CSV with a header line."),
        400: BAD_REQUEST,
        404: NOT_FOUND,
    },
    tags=["tasks"],
)


class TaskExportView(APIView):
    """All of one task's rows as a streamed JSON document or CSV file."""

    content_negotiation_class = ExportNegotiation

    @extend_schema(operation_id="tasks_export", **EXPORT_SCHEMA)
    def post(self, request: Request, id: str) -> StreamingHttpResponse:
        """Export a task's results as JSON or CSV (streamed)."""
        fmt = request.query_params.get("format") or "json"
        if fmt not in {"json", "csv"}:
            raise ValidationError({"format": ["Must be json or csv."]})
        task = _task_or_404(request, id)
        rows = ScrapeResult.objects.filter(task_id=task.pk)
        # Only CSV is an attachment: the XGet scraper API shows a JSON export as a plain body.
        filename = f"task_{task.pk}_results" if fmt == "csv" else None
        return export_response(rows, fmt, filename=filename)

    @extend_schema(operation_id="tasks_export_get", **EXPORT_SCHEMA)
    def get(self, request: Request, id: str) -> StreamingHttpResponse:
        """Same as POST, for links and browsers."""
        return self.post(request, id)
