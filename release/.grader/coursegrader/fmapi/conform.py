"""What strict mode guarantees, kept on replay: the answer is an instance of the schema that was sent.

An answer is recorded for the assignment's schema. A student whose schema declares another type (a `str`
rating) would get, from the real service's constrained decoder, the same value written in that type ("4",
not 4). Replaying the recorded text instead would crash the student's next cell offline, charging one
mistake twice. So scalar values are rewritten to the sent schema's type where that is a plain conversion;
anything else (missing fields, other enums) stays as recorded.
"""
from __future__ import annotations

import json


def conform_answer(body: dict, response: dict) -> dict:
    """The response with its message content conformed to the request's strict json_schema (in place)."""
    spec = (body.get("response_format") or {}).get("json_schema") or {}
    if (body.get("response_format") or {}).get("type") != "json_schema" or not spec.get("strict"):
        return response
    schema = spec.get("schema")
    for choice in response.get("choices") or []:
        message = choice.get("message") or {}
        try:
            value = json.loads(message.get("content"))
        except (TypeError, ValueError):
            continue
        conformed = conform(value, schema, schema)
        if conformed != value or type(conformed) is not type(value):
            message["content"] = json.dumps(conformed, ensure_ascii=False)
    return response


def conform(value, schema, root):
    """value written as `schema` would have it (a JSON Schema as pydantic makes them: $ref into $defs)."""
    if not isinstance(schema, dict):
        return value
    if "$ref" in schema:
        return conform(value, _resolve(schema["$ref"], root), root)
    kind = schema.get("type")
    if kind == "object" and isinstance(value, dict):
        properties = schema.get("properties") or {}
        return {k: conform(v, properties.get(k), root) for k, v in value.items()}
    if kind == "array" and isinstance(value, list):
        return [conform(v, schema.get("items"), root) for v in value]
    return _scalar(value, kind)


def _resolve(ref: str, root):
    node = root
    for part in ref.removeprefix("#/").split("/") if ref.startswith("#/") else []:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _scalar(value, kind):
    if kind == "string" and isinstance(value, (bool, int, float)):
        return json.dumps(value)
    if kind == "integer" and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if kind == "number" and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value
