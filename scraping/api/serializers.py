"""The XGet scraper API's result shapes: a result row, a page of them, an export's row."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from scraping.models import ScrapeResult

# skip/limit bounds of a page of results, and of the data_type filter.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_SKIP = 1_000_000_000
MAX_DATA_TYPE_LENGTH = 50


class ResultSerializer(serializers.ModelSerializer):
    task_id = serializers.IntegerField(read_only=True)
    # `data` is the XGet scraper API's field name. DRF's serializer metaclass takes declared
    # fields out of the class, so it does not hide Serializer.data; the stubs cannot see that.
    data = serializers.JSONField(read_only=True)  # type: ignore[assignment]  # a field, not Serializer.data
    metadata = serializers.JSONField(read_only=True)

    class Meta:
        model = ScrapeResult
        fields = ["id", "task_id", "data_type", "data", "metadata", "created_at"]
        read_only_fields = fields


class ResultPage(serializers.Serializer):
    items = ResultSerializer(many=True)
    total = serializers.IntegerField()
    page = serializers.IntegerField(help_text="skip // limit + 1")
    size = serializers.IntegerField(help_text="The limit asked for.")
    pages = serializers.IntegerField()


class ExportItem(serializers.Serializer):
    id = serializers.IntegerField()
    data = serializers.JSONField()  # type: ignore[assignment]  # a field, not Serializer.data
    created_at = serializers.DateTimeField()


class ExportResponse(serializers.Serializer):
    data = ExportItem(many=True)  # type: ignore[assignment]  # a field, not Serializer.data
    total = serializers.IntegerField()


# --- paged views ------------------------------------------------------------------------------

PAGE_PARAMETERS = [
    OpenApiParameter(
        "skip",
        {"type": "integer", "minimum": 0, "maximum": MAX_SKIP, "default": 0},
        description="Rows to skip (default 0; negative is a 400 naming `skip`).",
    ),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        description=f"Rows to return (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}; more is a "
        "400 naming `limit`).",
    ),
    OpenApiParameter(
        "data_type",
        {"type": "string", "maxLength": MAX_DATA_TYPE_LENGTH},
        description="Only rows of this data type (exact).",
    ),
]
TASK_ID = OpenApiParameter(
    "id",
    {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999},
    OpenApiParameter.PATH,
    description="The task's id.",
)
