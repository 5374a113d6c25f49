"""JSON that cannot exhaust the stack: nesting is bounded before the document is parsed.

Python's ``json`` recurses once per level, and so does everything that later walks the value
(validators, error flattening, the database's JSON encoder). A few kilobytes of ``[[[[...`` would
raise ``RecursionError`` somewhere in that chain; counting brackets first makes the refusal a
plain 400 at the door, for request bodies and for JSON carried as text inside a field.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Deep enough for every document the APIs accept (parameters are bounded to 32 levels below a
# batch item, which sits 2-3 levels down), shallow enough for every recursive consumer.
MAX_JSON_NESTING = 64

# A JSON string, escapes included (the unrolled-loop form: linear, no backtracking).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_OPENERS = frozenset(b"[{")


class TooDeeplyNested(ValueError):
    """The document nests arrays/objects deeper than allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON is nested deeper than {limit} levels.")
        self.limit = limit


def check_nesting(document: bytes | str, limit: int = MAX_JSON_NESTING) -> None:
    """Raise ``TooDeeplyNested`` when ``document`` opens more than ``limit`` nested containers.

    Brackets inside strings do not count. Malformed JSON may be over-counted; it is refused by
    the parser anyway.
    """
    raw = document.encode("utf-8", "surrogatepass") if isinstance(document, str) else document
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b"", raw)):
        if match.group()[0] in _OPENERS:
            depth += 1
            if depth > limit:
                raise TooDeeplyNested(limit)
        else:
            depth -= 1


def loads(text: str | bytes, limit: int = MAX_JSON_NESTING) -> Any:
    """``json.loads`` that refuses deep nesting (``TooDeeplyNested``, a ``ValueError``) first."""
    check_nesting(text, limit)
    return json.loads(text)


class SafeJSONParser(JSONParser):
    """DRF's parser, after a bound on nesting; the refusal names the body."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            check_nesting(raw)
        except TooDeeplyNested as exc:
            raise ParseError(f"JSON parse error - body: {exc}") from None
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:  # a bound above the interpreter's: still a 400
            raise ParseError("JSON parse error - body: JSON is nested too deeply.") from None
