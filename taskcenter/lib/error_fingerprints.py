"""Error messages reduced to their shape, so that the same failure on many tasks is one group.

``Upload of 'clip-17.mp4' to https://example.com/u/93 failed: HTTP 502 (request 9f2c...)`` and
the same message with another file, URL and request id are one failure for an operator. The
variable parts (URLs, e-mail addresses, UUIDs, IP addresses, hex ids, quoted values, numbers)
are replaced by placeholders, in that order: a URL holds numbers and hex of its own, a UUID is
hex, and masking numbers first would break every longer pattern up.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

# Long messages (a response body pasted into the error) group by their beginning.
MAX_LENGTH = 500

DIGITS = "0123456789"
# (pattern, placeholder, characters of which the text must hold one for the pattern to match:
# a cheap test that skips most regular expression passes).
_MASKS: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE), "<url>", ":"),
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "<email>", "@"),
    (
        re.compile(
            r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", re.IGNORECASE
        ),
        "<uuid>",
        "",
    ),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>", "."),
    # Hex ids: 0x-prefixed, or a run of 8+ hex digits that holds a digit (not a plain word
    # such as "deadline" or "accepted").
    (
        re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", re.IGNORECASE),
        "<hex>",
        DIGITS,
    ),
    # Quoted values; an apostrophe inside a word ("can't") opens no quote.
    (re.compile(r"(?<!\w)'[^'\n]*'(?!\w)|\"[^\"\n]*\"|`[^`\n]*`"), "<value>", "'\"`"),
    # Numbers, also glued to letters after them ("502ms") or to a dash before ("task-17");
    # a digit that ends a word ("http2", "utf8", "s3") is part of its name.
    (re.compile(r"(?<![A-Za-z_])[-+]?\d+(?:[.,]\d+)*"), "<n>", DIGITS),
]
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=4096)  # the same message often fails many tasks
def normalise(message: str) -> str:
    """The message with its variable parts masked and its whitespace collapsed."""
    text = message[:MAX_LENGTH]
    for pattern, placeholder, needs in _MASKS:
        if not needs or any(character in text for character in needs):
            text = pattern.sub(placeholder, text)
    return _SPACES.sub(" ", text).strip()


def fingerprint(message: str) -> str:
    """A short stable key for the message's normalised form (16 hex digits)."""
    return hashlib.blake2b(normalise(message).encode(), digest_size=8).hexdigest()
