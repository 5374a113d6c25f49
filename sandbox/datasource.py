"""The data-source area of the sandbox platform, played for the sync kinds (the data sync service).

::

    GET  /api/datasources/<ds>/records   ?interface=&updated_after=&cursor=&batch_size=
    POST /api/datasources/<ds>/changes   {"interface": "", "append": N, "modify": ["<id>", ...]}

Every data source id has a deterministic table of records (its size and contents derive from a
hash of the id and interface), each with an ``updated_at`` watermark. Records come in
``(updated_at, id)`` order with a keyset cursor, so a record changed while a sync pages through
moves behind the cursor instead of shifting every later page. A list answers::

    {"data": [...], "next_cursor": "..." | null, "total": N, "watermark": "<max updated_at>"}

``total`` counts the records after ``updated_after``; ``watermark`` is the newest ``updated_at``
in the whole table, the point an incremental sync resumes from next time.

``changes`` appends new records and rewrites existing ones with an ``updated_at`` later than
anything in the table (a logical clock, so runs are reproducible); the changes live as long as
the server. The global ``slow_ms`` switch delays every answer, which is how a client's timeout is
exercised.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import unquote

from . import data
from .routing import PlatformError, Request, route

DEFAULT_BATCH = 100
MAX_BATCH = 5000
MIN_RECORDS = 120
SOURCE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_CHANGES = 10_000
CATEGORIES = ["orders", "invoices", "customers", "refunds", "shipments", "tickets"]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(raw: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise PlatformError(400, f"{name} must be an ISO 8601 time") from None


def base_records(source_id: str, interface: str) -> list[dict]:
    """The table of ``source_id`` as it is before any change, oldest first."""
    size = MIN_RECORDS + data.digest("ds-size", source_id, interface) % 180
    start = data.EPOCH + timedelta(days=data.digest("ds-start", source_id) % 30)
    return [_record(source_id, interface, n, start + timedelta(minutes=n), 1) for n in range(size)]


def _record(source_id: str, interface: str, n: int, updated: datetime, version: int) -> dict:
    seed = (source_id, interface, n, version)
    return {
        "id": f"{source_id}-{n:06d}",
        "seq": n,
        "category": CATEGORIES[data.digest("ds-cat", *seed) % len(CATEGORIES)],
        "amount_cents": data.digest("ds-amount", *seed) % 1_000_000,
        "title": f"{data._pick(data.WORDS, 'ds-title', *seed)} #{n}",
        "version": version,
        "updated_at": _iso(updated),
    }


@dataclass
class _Table:
    records: dict[str, dict]
    next_seq: int
    clock: datetime


@dataclass
class _State:
    """Changed tables of one server, by (source id, interface)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    tables: dict[tuple[str, str], _Table] = field(default_factory=dict)

    def table(self, source_id: str, interface: str) -> _Table:
        key = (source_id, interface)
        if key not in self.tables:
            rows = base_records(source_id, interface)
            self.tables[key] = _Table(
                records={row["id"]: row for row in rows},
                next_seq=len(rows),
                clock=_parse_iso(rows[-1]["updated_at"], "updated_at"),
            )
        return self.tables[key]


def _state(request: Request) -> _State:
    return request.state("datasource", _State)


def _source_id(raw: str) -> str:
    source_id = unquote(raw)
    if not SOURCE_ID.match(source_id):
        raise PlatformError(404, "Data source not found")
    return source_id


def encode_cursor(updated_at: str, record_id: str) -> str:
    raw = f"{updated_at}|{record_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        updated_at, record_id = raw.split("|")
        _parse_iso(updated_at, "cursor")
        return updated_at, record_id
    except (ValueError, binascii.Error, UnicodeDecodeError, PlatformError):
        raise PlatformError(400, "Invalid cursor") from None


def _batch_size(query: dict[str, str]) -> int:
    try:
        size = int(query.get("batch_size") or DEFAULT_BATCH)
    except ValueError:
        raise PlatformError(400, "batch_size must be an integer") from None
    if not 1 <= size <= MAX_BATCH:
        raise PlatformError(400, f"batch_size must be between 1 and {MAX_BATCH}")
    return size


@route("GET", r"/api/datasources/(?P<source>[^/]+)/records")
def list_records(request: Request) -> dict:
    source_id = _source_id(request.params["source"])
    interface = request.query.get("interface", "")
    size = _batch_size(request.query)
    after = decode_cursor(request.query.get("cursor", ""))
    since = request.query.get("updated_after", "")
    since_at = _parse_iso(since, "updated_after") if since else None
    state = _state(request)
    with state.lock:
        table = state.table(source_id, interface)
        rows = sorted(table.records.values(), key=lambda r: (r["updated_at"], r["id"]))
        watermark = _iso(table.clock)
    # ISO strings of one format compare as the times they name.
    if since_at is not None:
        rows = [r for r in rows if _parse_iso(r["updated_at"], "updated_at") > since_at]
    total = len(rows)
    if after is not None:
        rows = [r for r in rows if (r["updated_at"], r["id"]) > after]
    page = [dict(r) for r in rows[:size]]
    next_cursor = (
        encode_cursor(page[-1]["updated_at"], page[-1]["id"]) if len(rows) > size else None
    )
    return {"data": page, "next_cursor": next_cursor, "total": total, "watermark": watermark}


def _count(body: dict, name: str) -> int:
    value = body.get(name, 0)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_CHANGES:
        raise PlatformError(400, f"{name} must be an integer from 0 to {MAX_CHANGES}")
    return value


@route("POST", r"/api/datasources/(?P<source>[^/]+)/changes")
def change_records(request: Request) -> dict:
    """Append ``append`` new records and rewrite the ``modify`` ones, each a second later."""
    source_id = _source_id(request.params["source"])
    body = request.json()
    interface = body.get("interface", "")
    if not isinstance(interface, str):
        raise PlatformError(400, "interface must be a string")
    append = _count(body, "append")
    modify = body.get("modify", [])
    if not isinstance(modify, list) or not all(isinstance(i, str) for i in modify):
        raise PlatformError(400, "modify must be a list of record ids")
    state = _state(request)
    changed: list[dict] = []
    with state.lock:
        table = state.table(source_id, interface)
        missing = [record_id for record_id in modify if record_id not in table.records]
        if missing:
            raise PlatformError(404, f"No such record: {missing[0]}")
        for record_id in modify:
            old = table.records[record_id]
            table.clock += timedelta(seconds=1)
            new = _record(source_id, interface, old["seq"], table.clock, old["version"] + 1)
            table.records[record_id] = new
            changed.append(new)
        for _ in range(append):
            table.clock += timedelta(seconds=1)
            new = _record(source_id, interface, table.next_seq, table.clock, 1)
            table.next_seq += 1
            table.records[new["id"]] = new
            changed.append(new)
        watermark = _iso(table.clock)
    return {"data": changed, "watermark": watermark, "total": len(table.records)}
