"""Pagination: one class per envelope, all built on DRF's paginators with the house rules.

``NumberedPagination`` is DRF's page-number paginator made strict and forgiving in the right
places: page and size are plain whole numbers (anything else is a 400 naming the parameter) and a
page past the end is an empty page, not a 404, so clients walking pages stop on an empty page.
Each envelope subclasses it and only says how a page looks: ``PageSizePagination`` here (the
canonical API's ``{items, total, page, size, pages}``), the Go services' ``{tasks, pagination}``
in ``envelope``, and one in each dialect app that has its own.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.paginator import EmptyPage
from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
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


class NumberedPagination(PageNumberPagination):
    """``page`` (from 1) and a page size (default ``page_size``, at most ``max_page_size``)."""

    page_query_param = "page"
    page_size_query_param = "size"
    page_size = DEFAULT_SIZE
    max_page_size = MAX_SIZE

    number: int
    size: int
    total: int

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list:
        self.request = request
        number = _positive_int(request, self.page_query_param, 1, MAX_PAGE)
        size = _positive_int(
            request, self.page_size_query_param, self.page_size, self.max_page_size
        )
        return self.paginate(queryset, number=number, size=size)

    def paginate(self, queryset: QuerySet, *, number: int, size: int) -> list:
        """One page of ``queryset`` for a page number and size the caller has validated."""
        self.number, self.size = number, size
        paginator = self.django_paginator_class(queryset, size)
        self.total = paginator.count
        try:
            return list(paginator.page(number).object_list)
        except EmptyPage:  # past the end: an empty page
            return []

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.size) if self.total else 0


class PageSizePagination(NumberedPagination):
    """The canonical API's page: ``{items, total, page, size, pages}``.

    A size above the maximum is a 400 naming ``size``.
    """

    def get_paginated_response(self, data: list) -> Response:
        return Response(
            {
                "items": data,
                "total": self.total,
                "page": self.number,
                "size": self.size,
                "pages": self.pages,
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
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Items per page (default {DEFAULT_SIZE}, at most {MAX_SIZE}; "
                "a larger value is a 400 naming `size`).",
                "schema": whole_number_schema(1, MAX_SIZE, DEFAULT_SIZE),
            },
        ]
