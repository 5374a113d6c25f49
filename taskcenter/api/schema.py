"""OpenAPI details drf-spectacular cannot infer: known task kinds, the NUL ban, error shapes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes

from ..kinds import all_kinds

NO_NUL = "^[^\\x00]*$"


class TaskTypeFieldExtension(OpenApiSerializerFieldExtension):
    """List the registered kinds as an enum, read when the schema is generated."""

    target_class = "taskcenter.api.serializers.TaskTypeField"

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict:
        schema = build_basic_type(OpenApiTypes.STR)
        schema["enum"] = list(all_kinds())
        schema["description"] = "A registered task kind."
        return schema


def _forbid_nul(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "string" and not ({"format", "enum", "pattern"} & node.keys()):
            node["pattern"] = NO_NUL
        for value in node.values():
            _forbid_nul(value)
    elif isinstance(node, list):
        for value in node:
            _forbid_nul(value)


def forbid_nul_in_strings(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """Postprocessing hook: PostgreSQL cannot store NUL, so every free-text string says so."""
    _forbid_nul(result)
    return result


AUTH_ERRORS = {
    "401": "Missing or invalid credentials.",
    "429": "Too many requests; retry after the `Retry-After` header's seconds.",
}


def document_auth_errors(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """Postprocessing hook: every authenticated operation can also answer 401 and 429."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, description in AUTH_ERRORS.items():
                operation["responses"].setdefault(
                    code, {"description": description, "content": error}
                )
    return result
