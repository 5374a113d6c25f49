"""Streaming ScrapeResult rows out as JSON or CSV: the API's export route and the admin's
export actions share this, so both escape and shape files the same way.

Memory stays flat whatever the row count: rows are read in keyset pages (``id > last``, in id
order, ``EXPORT_CHUNK`` at a time, so no cursor or transaction stays open while a slow client
reads) and leave as text a few hundred rows at a time. Speed matters at a million rows, so the
per-row work avoids what costs most in Python: pages are read as the database's raw values
(Django's per-row converters cost more than the export itself), JSON export passes each row's
``data`` through as the database's own JSON text (never parsed and re-encoded), timestamps are
formatted without DRF's per-call time-zone lookups, and CSV cells are read by precomputed key
paths instead of flattening every row into a new dict.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, tzinfo
from typing import Any

import orjson
from django.contrib import admin
from django.db import connections
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from taskcenter.lib.streaming import ThreadedStreamingHttpResponse

from .models import ScrapeResult

EXPORT_CHUNK = 2000  # rows per database fetch
LINES_PER_CHUNK = 500  # rows per piece of the response
CSV_SAMPLE_ROWS = 1000
CSV_DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_DANGEROUS_FIRST = frozenset(CSV_DANGEROUS_PREFIXES)
FORMATS = ("json", "csv")
# A run of 20 digits, found by C-level bytes operations (a regex costs as much as the parse).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_TWENTY_DIGITS = b"0" * 20


def _loads(text: str) -> Any:
    # Parsing each row's JSON is most of a CSV export's time; orjson does it about 4x faster.
    # But it turns integers wider than 64 bits into floats, silently: text with a run of 20
    # digits (such a number, or a long digit string) takes the exact, slower parser.
    if _TWENTY_DIGITS not in text.encode().translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # what orjson refuses (lone surrogate escapes...): the stdlib decides
    return json.loads(text)


def timestamp(value: datetime | str | None, tz: tzinfo) -> str | None:
    """What DRF's DateTimeField renders (ISO 8601 in ``tz``, ``Z`` for UTC), minus its cost.

    ``value`` is a raw column value: an aware datetime (PostgreSQL), or SQLite's naive one
    (or its text), which Django writes in UTC without an offset when ``USE_TZ`` is on.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        if tz is UTC:
            return value.isoformat() + "Z"  # the common case, and the cheapest
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _zone() -> tzinfo:
    """The time zone timestamps are shown in (``TIME_ZONE``); ``datetime.UTC`` for UTC, which
    lets ``timestamp`` skip the conversion."""
    tz = timezone.get_default_timezone()
    return UTC if getattr(tz, "key", None) in {"UTC", "Etc/UTC"} else tz


def flatten(value: Any, prefix: str = "data") -> dict[str, Any]:
    """``{"user": {"name": "x"}}`` -> ``{"data.user.name": "x"}``; lists stay whole."""
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}"))
        return flat
    return {prefix: value}


def csv_cell(value: Any) -> str:
    """Text of one cell; formula-looking text gets a leading ``'`` (CSV injection)."""
    if value is None:
        return ""
    if value is True or value is False:
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    if text and text[0] in _DANGEROUS_FIRST:
        return "'" + text
    return text


class _Columns:
    """Turns one row into its CSV cells: the row's id and ``prefix`` values, then the data
    columns (key paths into ``data``) as ``flatten(data)`` would give them, a missing key
    being an empty cell and a non-empty object never a cell (it was flattened into deeper
    columns), then ``created_at``."""

    def __init__(self, paths: list[tuple[str, ...]], prefix_width: int, tz: tzinfo) -> None:
        # Most columns are top-level keys: one C-level map(data.get) reads them all at once;
        # only the nested ones are walked in Python.
        self.firsts = [path[0] if path else "" for path in paths]
        self.nested = [(i, path[1:]) for i, path in enumerate(paths) if len(path) > 1]
        self.whole = [i for i, path in enumerate(paths) if not path]
        self.prefix_width = prefix_width
        self.tz = tz

    def cells(self, row: tuple) -> list[Any]:
        data = _loads(row[-2])
        if type(data) is not dict:
            values: list[Any] = [None] * len(self.firsts)
            for i in self.whole:
                values[i] = data
        else:
            values = list(map(data.get, self.firsts))
            for i, rest in self.nested:
                value = values[i]
                for key in rest:
                    if type(value) is not dict:
                        value = None
                        break
                    value = value.get(key)
                values[i] = value
        cells: list[Any] = [row[0]]
        if self.prefix_width:
            cells.extend(map(csv_cell, row[1 : 1 + self.prefix_width]))
        append = cells.append
        # csv_cell() inlined for the common cell types: this loop runs for every cell of
        # every row, and a call per cell is a third of the export's time.
        for value in values:
            kind = type(value)
            if kind is str:
                append("'" + value if value and value[0] in _DANGEROUS_FIRST else value)
            elif kind is int and value >= 0:
                append(value)  # the csv writer formats it as str() would
            elif value is None or (kind is dict and value):
                append("")
            else:
                append(csv_cell(value))
        append(timestamp(row[-1], self.tz))
        return cells


def _csv_lines(rows: Iterator[tuple], prefix: list[str]) -> Iterator[str]:
    """Header: ``id``, ``prefix`` columns, the union of the flattened keys of the first 1000
    rows, sorted (PostgreSQL's jsonb does not keep key order), ``created_at``; keys that appear
    only later are not columns. ``rows`` are ``(id, *prefix values, data as JSON text,
    created_at)``."""
    sample: list[tuple] = []
    columns: set[str] = set()
    for row in rows:
        sample.append(row)
        columns.update(flatten(_loads(row[-2])))
        if len(sample) >= CSV_SAMPLE_ROWS:
            break
    keys = sorted(columns)
    # Columns are keys joined with dots, and a key may hold a dot itself: map each column back
    # to the key path that produced it from the sample.
    columns_of = _Columns(_column_paths(sample, keys), len(prefix), _zone())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", *prefix, *keys, "created_at"])

    def flush(batch: list[tuple]) -> str:
        writer.writerows(map(columns_of.cells, batch))
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text

    yield flush(sample)
    del sample
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= LINES_PER_CHUNK:
            yield flush(batch)
            batch = []
    if batch:
        yield flush(batch)


def _column_paths(sample: list[tuple], keys: list[str]) -> list[tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}

    def walk(value: Any, path: tuple[str, ...]) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(item, (*path, key))
        else:
            found.setdefault(".".join(("data", *path)), path)

    for row in sample:
        walk(_loads(row[-2]), ())
        if len(found) == len(keys):
            break
    return [found[key] for key in keys]


def _json_lines(rows: Iterable[tuple], prefix: list[str]) -> Iterator[str]:
    """``{"data": [...], "total": n}``; ``total`` counts what was streamed. ``rows`` are
    ``(id, *prefix values, data as JSON text, created_at)``."""
    tz = _zone()
    yield '{"data": ['
    total = 0
    buffer: list[str] = []
    dumps = json.dumps
    for row in rows:
        extra = (
            "".join(
                f", {dumps(name)}: {dumps(value)}"
                for name, value in zip(prefix, row[1:-2], strict=True)
            )
            if prefix
            else ""
        )
        created = timestamp(row[-1], tz)
        # An ISO timestamp holds no quote or backslash: it needs no JSON escaping.
        created_json = f'"{created}"' if created is not None else "null"
        buffer.append(
            f'{"," if total else ""}{{"id": {row[0]}{extra}, "data": {row[-2]}, '
            f'"created_at": {created_json}}}'
        )
        total += 1
        if len(buffer) >= LINES_PER_CHUNK:
            yield "".join(buffer)
            buffer = []
    buffer.append(f'], "total": {total}}}')
    yield "".join(buffer)


def export_response(
    rows: QuerySet[ScrapeResult],
    fmt: str,
    *,
    filename: str | None = None,
    with_task: bool = False,
) -> StreamingHttpResponse:
    """Stream ``rows`` (in id order) as ``fmt`` (``json`` or ``csv``), a page at a time under
    ASGI too (``ThreadedStreamingHttpResponse``: Django would read the whole export first).

    ``filename`` (without extension) makes the response an attachment; CSV always is one
    (``results.csv`` by default). ``with_task`` adds a ``task_id`` column/key after ``id``,
    for exports that span tasks.
    """
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}")
    prefix = ["task_id"] if with_task else []
    # The database's own JSON text of each row: JSON export sends it as it is.
    values = rows.annotate(data_text=Cast("data", TextField())).values_list(
        "id", *prefix, "data_text", "created_at"
    )
    if fmt == "json":
        body = _json_lines(_raw_pages(values), prefix)
        response = ThreadedStreamingHttpResponse(body, content_type="application/json")
    else:
        body = _csv_lines(_raw_pages(values), prefix)
        response = ThreadedStreamingHttpResponse(body, content_type="text/csv")
        filename = filename or "results"
    if filename:
        response["Content-Disposition"] = f"attachment; filename={filename}.{fmt}"
    return response


def _raw_pages(values: QuerySet) -> Iterator[tuple]:
    """The rows of ``values`` (a ``values_list`` starting with ``id``) in id order, as the
    database driver returns them, read ``EXPORT_CHUNK`` at a time by ``id > last``."""
    last = None
    while True:
        page = values if last is None else values.filter(id__gt=last)
        query = page.order_by("id")[:EXPORT_CHUNK].query
        sql, params = query.sql_with_params()
        with connections[values.db].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        yield from rows
        if len(rows) < EXPORT_CHUNK:
            return
        last = rows[-1][0]


def export_action(fmt: str, *, of_tasks: bool = False):
    """An admin action streaming the selected results (or the results of the selected tasks,
    ``of_tasks``) as ``fmt``: the API export's writer (same escaping and columns) plus a
    ``task_id`` column, since a selection may span tasks."""

    def action(
        modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
    ) -> StreamingHttpResponse:
        rows = ScrapeResult.objects.filter(task__in=queryset) if of_tasks else queryset
        return export_response(rows, fmt, filename="scrape_results", with_task=True)

    # On the task list (``of_tasks``) the action is offered through the core's registry, whose
    # check asks for the results' view permission (see ``scraping.admin``), not the tasks'.
    if of_tasks:
        action.__name__ = f"export_task_results_{fmt}"
        return admin.action(description=_("Export results of selected tasks as %s") % fmt.upper())(
            action
        )
    action.__name__ = f"export_{fmt}"
    description = _("Export selected results as %s") % fmt.upper()
    permission = "view"
    return admin.action(description=description, permissions=[permission])(action)
