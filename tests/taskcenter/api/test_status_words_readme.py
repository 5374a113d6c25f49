"""The README's status-word table is taskcenter/status_words.py's, word for word."""

from __future__ import annotations

import re

from taskcenter.api.status_words import GENERATION, INTEGRATION, PUBLISHING, STATUS_WORDS, SYNC
from taskcenter.models import Status
from tests.support.processes import ROOT

COLUMNS = (PUBLISHING, INTEGRATION, SYNC, GENERATION)
ROW = re.compile(r"^\| `([A-Z]+)` \|(.*)\|$")


def readme_table() -> dict[str, list[str]]:
    section = ROOT.joinpath("README.md").read_text().split("\n### Status words\n", 1)[1]
    section = section.split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = ROW.match(line.strip())
        if match:
            cells = [cell.strip().strip("`") for cell in match.group(2).split("|")]
            rows[match.group(1)] = cells
    return rows


def test_readme_status_words_table_matches_the_code():
    expected = {
        str(status): [str(STATUS_WORDS[status][dialect]) for dialect in COLUMNS]
        for status in Status
    }

    assert readme_table() == expected
