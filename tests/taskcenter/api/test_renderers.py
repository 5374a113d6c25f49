"""The API's JSON renderer writes what DRF's own renderer writes, or lets DRF write it."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from typing import Any

import pytest
from django.utils import timezone
from django.utils.translation import gettext_lazy
from rest_framework import renderers as drf

from taskcenter.api.renderers import JSONRenderer

AT = datetime.datetime(2026, 12, 2, 10, 30, 5, 123456, tzinfo=datetime.UTC)

DOCUMENTS: list[Any] = [
    {},
    [],
    {"items": [], "total": 0, "page": 1, "size": 20, "pages": 0},
    {"detail": "Not found."},
    {"unicode": "é 中文 日本語 😀", "quote": '"', "backslash": "\\", "slash": "/"},
    {"control": "a\x00b\x1f\n\t\r"},
    {"separators": "line\u2028paragraph\u2029end"},
    {"at": AT, "aware": timezone.now(), "day": datetime.date(2026, 1, 2)},
    {"time": datetime.time(1, 2, 3, 4000), "span": datetime.timedelta(seconds=90)},
    {"decimal": decimal.Decimal("1.25"), "uuid": uuid.UUID(int=7)},
    {"lazy": gettext_lazy("Not found."), "tuple": (1, 2), "set": {3}},
    {"floats": [1.5, 0.1, -0.0, 100.0, 1e16, 1e-4], "ints": [0, -1, 2**63 - 1, -(2**63)]},
    {"bool": [True, False], "none": None, "nested": {"a": [{"b": [{"c": {}}]}]}},
]
# orjson refuses these; DRF's path writes (or refuses) them as it always did.
DRFS_OWN: list[Any] = [
    {"big": 2**70},
    {1: "an int key", "2": "a str key"},
    {"deep": json.loads("[" * 300 + "]" * 300)},
]


def test_documents_are_byte_for_byte_drfs():
    ours, theirs = JSONRenderer(), drf.JSONRenderer()
    for document in DOCUMENTS + DRFS_OWN:
        assert ours.render(document) == theirs.render(document), document


def test_a_small_float_is_the_same_number_written_another_way():
    # Python writes 2.5e-05 and 1e-07, orjson 0.000025 and 1e-7: the same JSON numbers.
    document = {"small": [2.5e-5, 1e-7, -3.25e-10]}
    rendered = JSONRenderer().render(document)
    assert rendered == b'{"small":[0.000025,1e-7,-3.25e-10]}'
    assert json.loads(rendered) == json.loads(drf.JSONRenderer().render(document)) == document


def test_separators_are_escaped_as_drf_escapes_them():
    rendered = JSONRenderer().render({"text": "a\u2028b\u2029c"})
    assert rendered == b'{"text":"a\\u2028b\\u2029c"}'
    assert json.loads(rendered) == {"text": "a\u2028b\u2029c"}


def test_a_datetime_is_written_by_drfs_encoder():
    assert JSONRenderer().render({"at": AT}) == b'{"at":"2026-12-02T10:30:05.123456Z"}'


def test_indented_renderings_are_drfs():
    ours, theirs = JSONRenderer(), drf.JSONRenderer()
    document = {"a": [1, {"b": AT}]}
    for media_type, context in (("application/json; indent=4", None), (None, {"indent": 2})):
        assert ours.render(document, media_type, context) == theirs.render(
            document, media_type, context
        )
        assert b"\n" in ours.render(document, media_type, context)


def test_what_drf_cannot_encode_is_still_refused():
    with pytest.raises(UnicodeEncodeError):  # a lone surrogate: DRF's encode() refuses it
        JSONRenderer().render({"text": "\ud800"})
    with pytest.raises(TypeError):
        JSONRenderer().render({"object": object()})


def test_an_api_page_is_drfs_document(api, make_task):
    for index in range(3):
        make_task(name=f"task {index} \u2028", parameters={"n": index, "x": 0.1})
    response = api.get("/api/v1/tasks")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == drf.JSONRenderer().render(response.data)
    assert [item["task_name"] for item in json.loads(response.content)["items"]] == [
        f"task {index} \u2028" for index in (2, 1, 0)
    ]
