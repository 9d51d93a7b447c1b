from coursegrader.fmapi.matchers import canonical_json, mismatches, normalize_text, signature

MODEL = "databricks-meta-llama-3-3-70b-instruct"


def body(**kw):
    return {"model": MODEL, "messages": [{"role": "user", "content": "こんにちは"}], **kw}


def test_text_normalisation_ignores_width_and_spacing():
    assert normalize_text("  ＡＢＣ\n  テスト  ") == "ABC テスト"
    assert normalize_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "ab"


def test_canonical_json_ignores_key_order_and_spacing():
    assert canonical_json('{"b": 1, "a": [1, 2]}') == canonical_json('{"a":[1,2],"b":1}')
    assert canonical_json("not json ") == "not json"


def test_equal_requests_match_and_irrelevant_fields_are_ignored():
    assert mismatches(signature(body()), signature(body(max_tokens=99, top_p=0.5))) == []


def test_each_field_that_matters_is_reported():
    rec = signature(body(temperature=0.0))
    assert any("model" in r for r in mismatches(rec, signature({**body(temperature=0.0), "model": "other"})))
    assert any("temperature" in r for r in mismatches(rec, signature(body(temperature=1.2))))
    live = signature({**body(temperature=0.0), "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "こんにちは"}]})
    assert any("expected 1 messages" in r for r in mismatches(rec, live))


def test_schema_name_tools_and_tool_choice_are_matched():
    rf = lambda name: {"type": "json_schema", "json_schema": {"name": name, "schema": {}}}
    assert mismatches(signature(body(response_format=rf("a"))), signature(body(response_format=rf("b"))))
    tool = lambda n: {"type": "function", "function": {"name": n}}
    assert mismatches(signature(body(tools=[tool("x")])), signature(body(tools=[tool("y")])))
    # tool_choice defaults to "auto" when tools are given
    assert not mismatches(signature(body(tools=[tool("x")])), signature(body(tools=[tool("x")], tool_choice="auto")))
    named = {"type": "function", "function": {"name": "x"}}
    assert mismatches(signature(body(tools=[tool("x")], tool_choice=named)), signature(body(tools=[tool("x")], tool_choice="required")))


def test_tool_call_arguments_compare_as_json():
    call = lambda args: {"role": "assistant", "content": None,
                         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": args}}]}
    a = signature({"model": MODEL, "messages": [call('{"a": 1, "b": 2}')]})
    b = signature({"model": MODEL, "messages": [call('{"b":2,"a":1}')]})
    assert mismatches(a, b) == []
