"""The task input serializers' own field loop gives what DRF's loop gives, value for value and
error for error: it only passes over fields that DRF would skip."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import QueryDict
from rest_framework import serializers

from taskcenter.api.serializers import (
    BATCH_MAX,
    TaskCloneInput,
    TaskCreateInput,
    TaskUpdateInput,
)

BODIES: list[Any] = [
    {"task_type": "demo.noop"},
    {"task_type": "demo.noop", "task_name": "n", "start": True, "parameters": {"a": [1, 2]}},
    {
        "task_type": "USER_TWEETS",
        "task_name": None,
        "describe": "",
        "parameters": None,
        "account_id": "acc",
        "proxy_id": None,
        "priority": 5,
        "max_attempts": 3,
        "platform": "x",
        "action": "scrape",
        "batch_id": "b1",
        "run_after": "2026-12-02T10:00:00Z",
        "user_id": "7",
    },
    {},  # task_type missing
    {"task_type": 5, "priority": "5", "max_attempts": 0, "start": "yes", "run_after": "soon"},
    {"task_type": "demo.noop", "task_name": "x" * 201, "parameters": {"bad": "\x00"}},
    {"task_type": "demo.noop", "unknown": 1},
    [],
    "text",
    None,
]


def _drf_result(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any):
    """What DRF's own Serializer.to_internal_value makes of ``data``."""
    serializer = serializer_class(data=data, **kwargs)
    own = serializer_class.to_internal_value
    try:
        serializer_class.to_internal_value = serializers.Serializer.to_internal_value  # type: ignore[method-assign]
        return _result(serializer)
    finally:
        serializer_class.to_internal_value = own  # type: ignore[method-assign]


def _result(serializer: serializers.Serializer) -> tuple[bool, Any]:
    if serializer.is_valid():
        return True, serializer.validated_data
    return False, serializer.errors


@pytest.mark.parametrize("serializer_class", [TaskCreateInput, TaskUpdateInput, TaskCloneInput])
@pytest.mark.parametrize("partial", [False, True])
@pytest.mark.parametrize("body", BODIES)
def test_the_field_loop_matches_drfs(serializer_class, partial, body):
    expected = _drf_result(serializer_class, body, partial=partial)

    assert _result(serializer_class(data=body, partial=partial)) == expected


def test_a_batch_validates_each_item_as_drf_would():
    items = [body for body in BODIES if isinstance(body, dict)]

    def validate() -> tuple[bool, Any]:
        return _result(TaskCreateInput(many=True, data=items, max_length=BATCH_MAX))

    fast = validate()
    own = TaskCreateInput.to_internal_value
    try:
        TaskCreateInput.to_internal_value = serializers.Serializer.to_internal_value  # type: ignore[method-assign]
        assert validate() == fast
    finally:
        TaskCreateInput.to_internal_value = own  # type: ignore[method-assign]
    assert fast[0] is False
    assert set(fast[1]) == {3, 4, 5}  # the errors, keyed by the items' indexes


def test_a_form_body_takes_drfs_path():
    form = QueryDict("task_type=demo.noop&priority=3&start=true&task_name=")

    assert _result(TaskCreateInput(data=form)) == _drf_result(TaskCreateInput, form)
    assert _result(TaskCreateInput(data=form))[1]["priority"] == 3
