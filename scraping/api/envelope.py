"""The XGet scraper API's envelope: the canonical one (``{"detail": ...}`` errors, through the
core's exception handler) and its page of results over ``skip``/``limit``."""

from __future__ import annotations

import math

from django.db.models import QuerySet
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response


class ResultPagination(LimitOffsetPagination):
    """DRF's offset paginator under the XGet names: ``skip``/``limit`` in, and out the same
    ``{items, total, page, size, pages}`` as every canonical page (``size`` is the limit,
    ``page`` is ``skip // limit + 1``). The view validates both numbers (a 400 naming them)."""

    offset_query_param = "skip"
    limit_query_param = "limit"

    skip: int
    size: int
    total: int

    def paginate(self, rows: QuerySet, *, skip: int, limit: int) -> list:
        self.offset = self.skip = skip
        self.limit = self.size = limit
        self.count = self.total = rows.count()
        return list(rows[skip : skip + limit]) if skip < self.total else []

    def get_paginated_response(self, data: list) -> Response:
        return Response(
            {
                "items": data,
                "total": self.total,
                "page": self.skip // self.size + 1,
                "size": self.size,
                "pages": math.ceil(self.total / self.size),
            }
        )
