"""What the real service rejects, emulated so students meet the same errors offline."""
from __future__ import annotations

# Keywords that Databricks strict mode rejects, in the order errors name them.
UNSUPPORTED_STRICT_KEYWORDS = (
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern",
    "minItems", "maxItems", "uniqueItems",
    "minProperties", "maxProperties", "patternProperties",
)


class RequestRejected(Exception):
    """The real service would answer 400 with this message."""

    def __init__(self, message: str, code: str = "INVALID_PARAMETER_VALUE"):
        super().__init__(message)
        self.message = message
        self.code = code


def unsupported_keywords(schema, path: str = "$") -> list[tuple[str, str, str]]:
    """(json path, keyword, the node's type) for every keyword strict mode rejects."""
    found = []
    if isinstance(schema, dict):
        node_type = schema.get("type", "schema")
        found.extend((path, k, str(node_type)) for k in UNSUPPORTED_STRICT_KEYWORDS if k in schema)
        for key, value in schema.items():
            if key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(value, dict):
                for name, sub in value.items():
                    found.extend(unsupported_keywords(sub, f"{path}.{key}.{name}"))
            elif isinstance(value, (dict, list)):
                found.extend(unsupported_keywords(value, f"{path}.{key}"))
    elif isinstance(schema, list):
        for i, sub in enumerate(schema):
            found.extend(unsupported_keywords(sub, f"{path}[{i}]"))
    return found


def check_response_format(body: dict) -> None:
    rf = body.get("response_format")
    if not rf or rf.get("type") != "json_schema":
        return
    spec = rf.get("json_schema") or {}
    if not spec.get("name"):
        raise RequestRejected("Invalid response_format: json_schema.name is required")
    if not isinstance(spec.get("schema"), dict):
        raise RequestRejected("Invalid response_format: json_schema.schema must be an object")
    if spec.get("strict"):
        bad = unsupported_keywords(spec["schema"])
        if bad:
            path, keyword, node_type = bad[0]
            raise RequestRejected(
                f"Invalid JSON schema - {node_type} types do not support {keyword} (at {path}). "
                "Strict mode does not support this keyword; describe the constraint in "
                "'description' and validate it in your code instead."
            )


def check_messages(body: dict) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestRejected("'messages' must be a non-empty list")
    open_calls: set[str] = set()
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in {"system", "user", "assistant", "tool"}:
            raise RequestRejected(f"messages[{i}]: invalid role {msg.get('role') if isinstance(msg, dict) else msg!r}")
        if msg["role"] == "assistant":
            open_calls = {c.get("id") for c in msg.get("tool_calls") or []}
        elif msg["role"] == "tool":
            call_id = msg.get("tool_call_id")
            if not call_id:
                raise RequestRejected(f"messages[{i}]: a message with role 'tool' must have a 'tool_call_id'")
            if call_id not in open_calls:
                raise RequestRejected(
                    f"messages[{i}]: tool_call_id {call_id!r} does not answer a tool call of the "
                    "preceding assistant message"
                )
            if not isinstance(msg.get("content"), str):
                raise RequestRejected(f"messages[{i}]: tool message content must be a string")
        else:
            open_calls = set()


def check_request(body: dict) -> None:
    check_messages(body)
    check_response_format(body)
