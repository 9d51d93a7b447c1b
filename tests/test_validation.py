from typing import Literal

import pytest
from pydantic import BaseModel, Field

from coursegrader.fmapi.validation import RequestRejected, check_messages, check_response_format, unsupported_keywords


def fmt(model, strict=True):
    return {"response_format": {"type": "json_schema",
                                "json_schema": {"name": "x", "schema": model.model_json_schema(), "strict": strict}}}


class Plain(BaseModel):
    rating: int = Field(description="1〜5")
    sentiment: Literal["positive", "negative"]


class Bounded(BaseModel):
    rating: int = Field(ge=1, le=5)


class Inner(BaseModel):
    name: str = Field(min_length=1)


class Nested(BaseModel):
    items: list[Inner]


def test_pydantic_schema_without_constraints_passes_strict_mode():
    check_response_format(fmt(Plain))


def test_ge_le_is_rejected_like_databricks():
    with pytest.raises(RequestRejected, match="integer types do not support minimum"):
        check_response_format(fmt(Bounded))


def test_constraints_inside_defs_are_found():
    assert ("$.$defs.Inner.properties.name", "minLength", "string") in unsupported_keywords(Nested.model_json_schema())


def test_non_strict_requests_are_not_checked():
    check_response_format(fmt(Bounded, strict=False))


def test_a_property_named_like_a_keyword_is_not_a_keyword():
    assert unsupported_keywords({"type": "object", "properties": {"pattern": {"type": "string"}}}) == []


def test_tool_message_needs_a_matching_tool_call_id():
    call = {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    check_messages({"messages": [{"role": "user", "content": "q"}, call, {"role": "tool", "tool_call_id": "call_1", "content": "{}"}]})
    with pytest.raises(RequestRejected, match="tool_call_id"):
        check_messages({"messages": [{"role": "user", "content": "q"}, call, {"role": "tool", "content": "{}"}]})
    with pytest.raises(RequestRejected, match="does not answer"):
        check_messages({"messages": [{"role": "user", "content": "q"}, call, {"role": "tool", "tool_call_id": "zzz", "content": "{}"}]})
