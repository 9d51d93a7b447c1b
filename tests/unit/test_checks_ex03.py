"""ex03 (Function Calling) evidence checks on synthetic request logs replayed from the ex03 cassette."""
from __future__ import annotations

import json

import pytest

import builders as b
from autograder.checks import get_check

EX = "ex03"
INPUTS = b.inputs(EX)
TOOL_CHOICES = {"auto": "auto", "required": "required", "none": "none",
                "check_inventory": {"type": "function", "function": {"name": "check_inventory"}}}


def run(name, log, claims=None, **fields):
    return get_check(EX, name)(b.evidence(EX, log, claims, **fields))


def opening(log, question, tool_choice="auto"):
    """The first request (system + user, with tools) for `question`, sent with this tool_choice."""
    return b.one(log, user=question, roles_are=["system", "user"],
                 where=lambda e: e.request.get("tool_choice") == tool_choice)


def followup(log, question):
    """The request that sends the tool results back for `question`."""
    return b.one(log, user=question, roles_are=["system", "user", "assistant", "tool"])


def tool_messages(log):
    return [m for e in log for m in b.messages(e) if m.get("role") == "tool"]


def solution_claims(log) -> dict:
    """tool_choice_results as the solution's first_tool_calls reports them."""
    results = {key: [c["function"]["name"] for c in b.reply(opening(log, INPUTS["TOOL_CHOICE_QUESTION"], choice)).get("tool_calls") or []]
               for key, choice in TOOL_CHOICES.items()}
    return {"ex03_tool_choice_report": {"tool_choice_results": results}}


def tools_of(entry) -> dict:
    return {t["function"]["name"]: t["function"] for t in entry.request["tools"]}


@pytest.fixture
def log():
    return b.cassette_log(EX)


def test_the_solution_claims_agree_with_the_notebooks_hidden_tests(log):
    results = solution_claims(log)["ex03_tool_choice_report"]["tool_choice_results"]
    assert results["none"] == [] and results["check_inventory"] == ["check_inventory"]
    assert sorted(results["auto"]) == ["check_inventory", "get_current_weather"]


# -- tool_definitions ----------------------------------------------------------------------------

def test_tool_definitions_passes_on_the_solution_log(log):
    assert run("tool_definitions", log).passed


@pytest.mark.parametrize("case, code", [
    ("no_tools", "ex03_no_tools_sent"),
    ("tool_renamed", "ex03_tool_names"),
    ("tool_missing", "ex03_tool_names"),
    ("unit_required", "ex03_tool_parameters"),
    ("parameters_not_object", "ex03_tool_parameters"),
    ("weight_integer", "ex03_argument_type"),
    ("location_missing", "ex03_argument_type"),
    ("unit_enum_incomplete", "ex03_argument_enum"),
    ("method_free_text", "ex03_argument_enum"),
    ("tool_undescribed", "ex03_description_missing"),
    ("argument_undescribed", "ex03_description_missing"),
])
def test_tool_definitions_fails(log, case, code):
    if case == "no_tools":
        for e in log:
            e.request.pop("tools", None)
            e.request.pop("tool_choice", None)
    else:
        first = next(e for e in log if e.request.get("tools"))
        tools = tools_of(first)
        weather, shipping = tools["get_current_weather"]["parameters"], tools["calculate_shipping_fee"]["parameters"]
        if case == "tool_renamed":
            tools["check_inventory"]["name"] = "get_inventory"
        elif case == "tool_missing":
            first.request["tools"] = [t for t in first.request["tools"] if t["function"]["name"] != "calculate_shipping_fee"]
        elif case == "unit_required":
            weather["required"] = ["location", "unit"]
        elif case == "parameters_not_object":
            tools["check_inventory"]["parameters"]["type"] = "string"
        elif case == "weight_integer":
            shipping["properties"]["weight_kg"]["type"] = "integer"
        elif case == "location_missing":
            del weather["properties"]["location"]
        elif case == "unit_enum_incomplete":
            weather["properties"]["unit"]["enum"] = ["celsius"]
        elif case == "method_free_text":
            del shipping["properties"]["method"]["enum"]
        elif case == "tool_undescribed":
            del tools["check_inventory"]["description"]
        else:
            shipping["properties"]["weight_kg"]["description"] = ""
    verdict = run("tool_definitions", log)
    assert not verdict.passed and verdict.code == code


# -- tool_results_correct ------------------------------------------------------------------------

def test_tool_results_correct_passes_on_the_solution_log(log):
    assert run("tool_results_correct", log).passed


def test_tool_results_correct_passes_when_results_are_matched_by_position(log):
    """A tool message without tool_call_id is matched to its call by position (the flow checks fail it)."""
    for m in tool_messages(log):
        del m["tool_call_id"]
    assert run("tool_results_correct", log).passed


@pytest.mark.parametrize("case, code", [
    ("fahrenheit_not_converted", "ex03_tool_result_wrong"),
    ("fee_without_ceil", "ex03_tool_result_wrong"),
    ("in_stock_wrong", "ex03_tool_result_wrong"),
    ("content_not_json", "ex03_tool_result_wrong"),
    ("no_results_sent", "ex03_no_tool_results"),
])
def test_tool_results_correct_fails(log, case, code):
    if case == "fahrenheit_not_converted":
        m = followup(log, "大阪の天気を華氏で教えてください。").request["messages"][3]
        m["content"] = json.dumps({**json.loads(m["content"]), "temperature": 21}, ensure_ascii=False)
    elif case == "fee_without_ceil":
        m = followup(log, INPUTS["MULTI_TOOL_QUESTIONS"][1]).request["messages"][3]
        result = json.loads(m["content"])
        m["content"] = json.dumps({**result, "fee": result["fee"] + 1}, ensure_ascii=False)
    elif case == "in_stock_wrong":
        m = followup(log, INPUTS["MULTI_TOOL_QUESTIONS"][0]).request["messages"][3]
        m["content"] = json.dumps({**json.loads(m["content"]), "in_stock": True}, ensure_ascii=False)
    elif case == "content_not_json":
        m = followup(log, INPUTS["WEATHER_QUESTION"]).request["messages"][3]
        m["content"] = str(json.loads(m["content"]))  # str(dict) instead of json.dumps
    else:
        log = [e for e in log if "tool" not in b.roles(e)]
    verdict = run("tool_results_correct", log)
    assert not verdict.passed and verdict.code == code


# -- tool_call_flow ------------------------------------------------------------------------------

def test_tool_call_flow_passes_on_the_solution_log(log):
    assert run("tool_call_flow", log).passed


@pytest.mark.parametrize("case, code", [
    ("no_opening", "ex03_no_tool_request"),
    ("opening_without_tools", "ex03_no_tool_request"),
    ("opening_without_system", "ex03_no_tool_request"),
    ("no_followup", "ex03_no_tool_result"),
    ("assistant_message_dropped", "ex03_assistant_tool_calls_missing"),
    ("assistant_tool_calls_dropped", "ex03_assistant_tool_calls_missing"),
    ("tool_call_id_removed", "ex03_tool_call_id_mismatch"),
    ("tool_call_id_changed", "ex03_tool_call_id_mismatch"),
    ("tool_content_not_json", "ex03_tool_content_not_json"),
    ("no_final_answer", "ex03_no_final_answer"),
])
def test_tool_call_flow_fails(log, case, code):
    question = INPUTS["WEATHER_QUESTION"]
    first, second = opening(log, question), followup(log, question)
    msgs = second.request["messages"]
    if case == "no_opening":
        log = b.without(log, [first])
    elif case == "opening_without_tools":
        del first.request["tools"], first.request["tool_choice"]
    elif case == "opening_without_system":
        del first.request["messages"][0]
    elif case == "no_followup":
        log = b.without(log, [second])
    elif case == "assistant_message_dropped":
        del msgs[2]
    elif case == "assistant_tool_calls_dropped":
        msgs[2] = {"role": "assistant", "content": ""}
    elif case == "tool_call_id_removed":
        del msgs[3]["tool_call_id"]
    elif case == "tool_call_id_changed":
        msgs[3]["tool_call_id"] = "call_0"
    elif case == "tool_content_not_json":
        msgs[3]["content"] = "晴れ、18度"
    else:
        b.reply(second)["content"] = ""
    verdict = run("tool_call_flow", log)
    assert not verdict.passed and verdict.code == code


# -- multi_tool_flow -----------------------------------------------------------------------------

def test_multi_tool_flow_passes_on_the_solution_log(log):
    assert run("multi_tool_flow", log).passed


@pytest.mark.parametrize("case, code", [
    ("one_question_unanswered", "ex03_no_tool_result"),
    ("one_question_not_asked", "ex03_no_tool_request"),
    ("one_id_missing", "ex03_tool_call_id_mismatch"),
    ("same_tool_twice", "ex03_tools_not_distinct"),
    ("only_the_first_of_two_calls", "ex03_tool_call_id_mismatch"),
])
def test_multi_tool_flow_fails(log, case, code):
    questions = INPUTS["MULTI_TOOL_QUESTIONS"]
    if case == "one_question_unanswered":
        log = b.without(log, [followup(log, questions[1])])
    elif case == "one_question_not_asked":
        log = b.without(log, [opening(log, questions[2]), followup(log, questions[2])])
    elif case == "one_id_missing":
        del followup(log, questions[0]).request["messages"][3]["tool_call_id"]
    elif case == "same_tool_twice":  # the shipping question answered with the inventory tool: one tool never used
        for call in (b.reply(opening(log, questions[1]))["tool_calls"][0],
                     followup(log, questions[1]).request["messages"][2]["tool_calls"][0]):
            call["function"]["name"] = "check_inventory"
    else:  # the two-call response handled as tool_calls[0] only: one tool result sent back
        two_calls = b.one(log, user=questions[3], roles_are=["system", "user", "assistant", "tool", "tool"]).request["messages"]
        assert len(b.reply(opening(log, questions[3]))["tool_calls"]) == 2
        del two_calls[4]
    verdict = run("multi_tool_flow", log)
    assert not verdict.passed and verdict.code == code


# -- tool_choice_modes ---------------------------------------------------------------------------

def test_tool_choice_modes_passes_with_the_solutions_results(log):
    assert run("tool_choice_modes", log, solution_claims(log)).passed


@pytest.mark.parametrize("case, code", [
    ("none_not_sent", "ex03_tool_choice_missing"),
    ("forced_tool_as_string", "ex03_tool_choice_missing"),
    ("required_rejected", "ex03_tool_choice_missing"),
    ("auto_reported_as_none", "claim_mismatch"),
    ("mode_missing_from_claim", "claim_mismatch"),
    ("claim_missing", "claim_missing"),
])
def test_tool_choice_modes_fails(log, case, code):
    claims = solution_claims(log)
    results = claims["ex03_tool_choice_report"]["tool_choice_results"]
    question = INPUTS["TOOL_CHOICE_QUESTION"]
    if case == "none_not_sent":
        log = b.without(log, [opening(log, question, "none")])
    elif case == "forced_tool_as_string":
        opening(log, question, TOOL_CHOICES["check_inventory"]).request["tool_choice"] = "check_inventory"
    elif case == "required_rejected":
        entry = opening(log, question, "required")
        log[log.index(entry)] = b.rejected(entry)
    elif case == "auto_reported_as_none":
        results["auto"] = []
    elif case == "mode_missing_from_claim":
        del results["required"]
    else:
        claims = {}
    verdict = run("tool_choice_modes", log, claims)
    assert not verdict.passed and verdict.code == code
