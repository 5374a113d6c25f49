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

    def paginate(self, rows: QuerySet, *, skip: int, limit: int) -> list:
        self.offset, self.limit = skip, limit
        self.count = rows.count()
        return list(rows[skip : skip + limit]) if skip < self.count else []

    def get_paginated_response(self, data: list) -> Response:
        return Response(
            {
                "items": data,
                "total": self.count,
                "page": self.offset // self.limit + 1,
                "size": self.limit,
                "pages": math.ceil(self.count / self.limit),
            }
        )
