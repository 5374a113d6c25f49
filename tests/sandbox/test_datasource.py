"""The sandbox's data-source area, over HTTP: keyset pages, watermarks and changes."""

from __future__ import annotations

import pytest
import requests

from sandbox.datasource import base_records
from sandbox.platform import DEFAULT_TOKEN

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}


def get(platform, source: str, **query) -> requests.Response:
    return requests.get(
        f"{platform.url}/api/datasources/{source}/records", params=query, headers=AUTH, timeout=5
    )


def walk(platform, source: str, **query) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        body = get(platform, source, **query, **({"cursor": cursor} if cursor else {})).json()
        pages.append(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_records_are_deterministic_and_paged_in_watermark_order_without_gaps(platform):
    expected = base_records("ds_pages", "")

    pages = walk(platform, "ds_pages", batch_size=33)

    assert [r for page in pages for r in page] == expected
    assert all(len(page) == 33 for page in pages[:-1])
    assert expected == base_records("ds_pages", "")
    assert len(expected) >= 120
    updated = [r["updated_at"] for r in expected]
    assert updated == sorted(updated)
    first = get(platform, "ds_pages", batch_size=10).json()
    assert first["total"] == len(expected)
    assert first["watermark"] == expected[-1]["updated_at"]


def test_interfaces_are_separate_tables(platform):
    orders = get(platform, "ds_ifc", interface="orders", batch_size=5).json()["data"]
    default = get(platform, "ds_ifc", batch_size=5).json()["data"]

    assert orders != default


def test_changes_move_behind_the_watermark_and_updated_after_finds_only_them(platform):
    before = base_records("ds_changes", "")
    body = {"modify": [before[0]["id"]], "append": 2}

    changed = requests.post(
        f"{platform.url}/api/datasources/ds_changes/changes", json=body, headers=AUTH, timeout=5
    ).json()
    newer = walk(platform, "ds_changes", updated_after=before[-1]["updated_at"], batch_size=2)

    assert [r["id"] for r in changed["data"]] == [
        before[0]["id"],
        f"ds_changes-{len(before):06d}",
        f"ds_changes-{len(before) + 1:06d}",
    ]
    assert changed["data"][0]["version"] == 2
    assert [r for page in newer for r in page] == changed["data"]
    everything = [r for page in walk(platform, "ds_changes", batch_size=500) for r in page]
    assert len(everything) == len(before) + 2
    assert everything[-3:] == changed["data"]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"batch_size": 0}, 400),
        ({"batch_size": 5001}, 400),
        ({"batch_size": "x"}, 400),
        ({"cursor": "garbage!"}, 400),
        ({"updated_after": "yesterday"}, 400),
    ],
)
def test_bad_queries_are_refused(platform, query, status):
    assert get(platform, "ds_bad", **query).status_code == status


def test_a_missing_token_or_a_bad_change_is_refused(platform):
    no_token = requests.get(f"{platform.url}/api/datasources/ds_x/records", timeout=5)
    unknown_record = requests.post(
        f"{platform.url}/api/datasources/ds_x/changes",
        json={"modify": ["nope"]},
        headers=AUTH,
        timeout=5,
    )
    bad_count = requests.post(
        f"{platform.url}/api/datasources/ds_x/changes",
        json={"append": -1},
        headers=AUTH,
        timeout=5,
    )

    assert no_token.status_code == 401
    assert unknown_record.status_code == 404
    assert bad_count.status_code == 400
