"""The seed-003 page envelope: ``{items, total, page, size, pages}``."""

from __future__ import annotations

import math
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

DEFAULT_SIZE = 20
MAX_SIZE = 100
MAX_PAGE = 1_000_000_000


def _positive_int(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    # Plain ASCII digits only: int() would also accept " 7", "+7" and other scripts' digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ValidationError({name: [f"Must be a whole number from 1 to {maximum}."]})
    value = int(raw)
    if value < 1:
        raise ValidationError({name: ["Must be at least 1."]})
    if value > maximum:
        raise ValidationError({name: [f"Must be at most {maximum}."]})
    return value


def whole_number_schema(minimum: int, maximum: int, default: int) -> dict:
    """A query integer within bounds; empty (``size=``) means the default, as in every filter."""
    return {
        "anyOf": [
            {"type": "integer", "minimum": minimum, "maximum": maximum},
            {"type": "string", "maxLength": 0},
        ],
        "default": default,
    }


class PageSizePagination(BasePagination):
    """``page`` (from 1) and ``size`` (default 20, at most 100; more is a 400 naming ``size``).

    A page past the end is an empty page, not a 404: clients walking pages stop on
    ``page >= pages`` or an empty ``items``.
    """

    page_query_param = "page"
    size_query_param = "size"

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list:
        self.page = _positive_int(request, self.page_query_param, 1, MAX_PAGE)
        self.size = _positive_int(request, self.size_query_param, DEFAULT_SIZE, MAX_SIZE)
        self.total = queryset.count()
        offset = (self.page - 1) * self.size
        if offset >= self.total:
            return []
        return list(queryset[offset : offset + self.size])

    def get_paginated_response(self, data: list) -> Response:
        return Response(
            {
                "items": data,
                "total": self.total,
                "page": self.page,
                "size": self.size,
                "pages": math.ceil(self.total / self.size) if self.total else 0,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["items", "total", "page", "size", "pages"],
            "properties": {
                "items": schema,
                "total": {"type": "integer", "example": 42},
                "page": {"type": "integer", "example": 1},
                "size": {"type": "integer", "example": DEFAULT_SIZE},
                "pages": {"type": "integer", "example": 3},
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "Page number, from 1. A page past the end is empty.",
                "schema": whole_number_schema(1, MAX_PAGE, 1),
            },
            {
                "name": self.size_query_param,
                "required": False,
                "in": "query",
                "description": f"Items per page (default {DEFAULT_SIZE}, at most {MAX_SIZE}; "
                "a larger value is a 400 naming `size`).",
                "schema": whole_number_schema(1, MAX_SIZE, DEFAULT_SIZE),
            },
        ]
