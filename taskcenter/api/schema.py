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
        assert schema is not None  # None only for OpenApiTypes.NONE
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


# Answered before the view runs, by the web server (414) or the size-limit middleware (413), so
# the body's shape is not the operation's own: documented by description only.
URI_TOO_LONG = {"description": "The request line is longer than the web server accepts."}
TOO_LARGE = {"description": "The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE."}


def document_auth_errors(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """Postprocessing hook: every authenticated operation can also answer 401, 414 and 429,
    and every operation that takes a body 413."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, description in AUTH_ERRORS.items():
                operation["responses"].setdefault(
                    code, {"description": description, "content": error}
                )
            operation["responses"].setdefault("414", URI_TOO_LONG)
            if "requestBody" in operation:
                operation["responses"].setdefault("413", TOO_LARGE)
    return result


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def document_json_bodies(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """Postprocessing hook: where an operation takes JSON, document only JSON.

    The form encodings stay accepted (seed clients send them) but cannot carry the JSON objects
    (``parameters``, ``credentials``, ``argument``) that the generated form schemas would show
    as fields, so documenting them would describe requests the server refuses. Multipart-only
    operations (uploads) keep their multipart body.
    """
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            content = (
                operation.get("requestBody", {}).get("content")
                if isinstance(operation, dict)
                else None
            )
            if content and "application/json" in content:
                for media_type in FORM_TYPES:
                    content.pop(media_type, None)
    return result
