"""The status-word table in docs/status-words.md is taskcenter/api/status_words.py's."""

from __future__ import annotations

import re

from taskcenter.api.status_words import GENERATION, INTEGRATION, PUBLISHING, STATUS_WORDS, SYNC
from taskcenter.models import Status
from tests.support.processes import ROOT

COLUMNS = (PUBLISHING, INTEGRATION, SYNC, GENERATION)
PAGE = ROOT / "docs" / "status-words.md"
ROW = re.compile(r"^\| `([A-Z]+)` \|(.*)\|$")


def documented_table() -> dict[str, list[str]]:
    """The page's first table (the one whose header starts with "canonical"), by status."""
    page = PAGE.read_text()
    table = page[page.index("\n| canonical |") :].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines():
        match = ROW.match(line.strip())
        if match:
            cells = [cell.strip().strip("`") for cell in match.group(2).split("|")]
            rows[match.group(1)] = cells
    return rows


def test_documented_status_words_table_matches_the_code():
    expected = {
        str(status): [str(STATUS_WORDS[status][dialect]) for dialect in COLUMNS]
        for status in Status
    }

    assert documented_table() == expected
