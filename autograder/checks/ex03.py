"""ex03 Function Calling: checks on tool definitions and the tool-call flow."""
from __future__ import annotations

import json
import math

from ..evidence import Evidence, Exchange, Verdict, claim_matches, fail, ok, same_messages
from . import check

EX = "ex03"
TOOL_SPECS = {
    "get_current_weather": {"required": {"location"}, "types": {"location": "string", "unit": "string"},
                            "enums": {"unit": {"celsius", "fahrenheit"}}},
    "check_inventory": {"required": {"product_id"}, "types": {"product_id": "string"}, "enums": {}},
    "calculate_shipping_fee": {"required": {"weight_kg", "method"}, "types": {"weight_kg": "number", "method": "string"},
                               "enums": {"method": {"standard", "express"}}},
}


def reference_tool_result(name: str, args: dict, inputs: dict) -> dict:
    """The local functions of 3.2, written independently of the solution."""
    if name == "get_current_weather":
        data = inputs["WEATHER_DATA"].get(args.get("location"))
        if data is None:
            return {"error": f"unknown location: {args.get('location')}"}
        unit = args.get("unit", "celsius")
        temp = data["temperature_c"] * 9 / 5 + 32 if unit == "fahrenheit" else data["temperature_c"]
        return {"location": args["location"], "temperature": temp, "unit": unit,
                "condition": data["condition"], "humidity": data["humidity"]}
    if name == "check_inventory":
        item = inputs["INVENTORY"].get(args.get("product_id"))
        if item is None:
            return {"error": f"unknown product: {args.get('product_id')}"}
        return {"product_id": args["product_id"], "name": item["name"], "stock": item["stock"],
                "price": item["price"], "in_stock": item["stock"] > 0}
    if name == "calculate_shipping_fee":
        rate = inputs["SHIPPING_RATES"].get(args.get("method"))
        if rate is None:
            return {"error": f"unknown method: {args.get('method')}"}
        return {"weight_kg": args["weight_kg"], "method": args["method"],
                "fee": int(rate["base"] + rate["per_kg"] * math.ceil(args["weight_kg"])), "days": rate["days"]}
    return {"error": f"unknown tool: {name}"}


def _opening(ev: Evidence, question: str, tool_choice=None) -> list[Exchange]:
    """Served first requests (system + user) for `question` that carried tools."""
    return ev.served(lambda x: bool(x.request.get("tools"))
                     and same_messages(x.messages, [("system", ev.inputs["SUPPORT_SYSTEM_PROMPT"]), ("user", question)])
                     and (tool_choice is None or x.request.get("tool_choice", "auto") == tool_choice))


def _flow(ev: Evidence, question: str) -> tuple[Verdict, list[str]]:
    """Check the whole tool-call round trip for `question`; also return the tools used."""
    openings = [x for x in _opening(ev, question) if x.reply.get("tool_calls")]
    if not openings:
        return fail("ex03_no_tool_request", question=question), []
    calls = openings[0].reply["tool_calls"]
    call_ids = [c["id"] for c in calls]
    followups = ev.served(lambda x: len(x.messages) > 2 and x.messages[:2] == openings[0].messages[:2]
                          and any(m.get("role") == "tool" for m in x.messages))
    if not followups:
        return fail("ex03_no_tool_result", question=question), []
    msgs = followups[0].messages
    assistant = msgs[2] if len(msgs) > 2 else {}
    if assistant.get("role") != "assistant" or [c.get("id") for c in assistant.get("tool_calls") or []] != call_ids:
        return fail("ex03_assistant_tool_calls_missing"), []
    tool_msgs = msgs[3:]
    if [m.get("tool_call_id") for m in tool_msgs] != call_ids or any(m.get("role") != "tool" for m in tool_msgs):
        return fail("ex03_tool_call_id_mismatch"), []
    for m in tool_msgs:
        try:
            json.loads(m.get("content") or "")
        except ValueError:
            return fail("ex03_tool_content_not_json"), []
    if not (followups[0].reply.get("content") or "").strip():
        return fail("ex03_no_final_answer"), []
    return ok(), [c["function"]["name"] for c in calls]


@check(EX)
def tool_definitions(ev: Evidence) -> Verdict:
    sent = ev.served(lambda x: bool(x.request.get("tools")))
    if not sent:
        return fail("ex03_no_tools_sent")
    tools = {t.get("function", {}).get("name"): t.get("function", {}) for t in sent[0].request["tools"]}
    if set(tools) != set(TOOL_SPECS):
        return fail("ex03_tool_names", names=sorted(n for n in tools if n))
    for name, spec in TOOL_SPECS.items():
        params = tools[name].get("parameters") or {}
        props = params.get("properties") or {}
        if params.get("type") != "object" or set(params.get("required") or ()) != spec["required"]:
            return fail("ex03_tool_parameters", tool=name)
        for arg, typ in spec["types"].items():
            if (props.get(arg) or {}).get("type") != typ:
                return fail("ex03_argument_type", tool=name, argument=arg, type=typ)
        for arg, values in spec["enums"].items():
            if set((props.get(arg) or {}).get("enum") or ()) != values:
                return fail("ex03_argument_enum", tool=name, argument=arg, values=sorted(values))
        # the model chooses tools and fills arguments from these descriptions
        for what, described in [("", tools[name]), *((f".{arg}", prop) for arg, prop in props.items())]:
            if not str((described or {}).get("description") or "").strip():
                return fail("ex03_description_missing", tool=name + what)
    return ok()


@check(EX)
def tool_results_correct(ev: Evidence) -> Verdict:
    checked = 0
    for x in ev.exchanges:  # a rejected request still shows what the local functions returned
        calls, pending = {}, []
        for m in x.messages:
            if m.get("tool_calls"):
                pending = [c.get("function") or {} for c in m["tool_calls"]]
                calls = {c.get("id"): c.get("function") or {} for c in m["tool_calls"]}
            if m.get("role") == "tool" and pending:
                fn = calls.get(m.get("tool_call_id")) or pending[0]  # without an id: by position
                pending = [p for p in pending if p is not fn]
                expected = reference_tool_result(fn.get("name"), json.loads(fn.get("arguments") or "{}"), ev.inputs)
                try:
                    actual = json.loads(m.get("content") or "")
                except ValueError:
                    actual = None
                if actual != expected:
                    return fail("ex03_tool_result_wrong", tool=fn.get("name"), expected=json.dumps(expected, ensure_ascii=False))
                checked += 1
    if not checked:
        return fail("ex03_no_tool_results")
    return ok()


@check(EX)
def tool_call_flow(ev: Evidence) -> Verdict:
    return _flow(ev, ev.inputs["WEATHER_QUESTION"])[0]


@check(EX)
def multi_tool_flow(ev: Evidence) -> Verdict:
    used = set()
    for question in ev.inputs["MULTI_TOOL_QUESTIONS"]:
        verdict, tools = _flow(ev, question)
        if not verdict.passed:
            return verdict
        used.update(tools)
    if used != {"check_inventory", "calculate_shipping_fee", "get_current_weather"}:
        return fail("ex03_tools_not_distinct")
    return ok()


@check(EX)
def tool_choice_modes(ev: Evidence) -> Verdict:
    question = ev.inputs["TOOL_CHOICE_QUESTION"]
    modes = {"auto": "auto", "required": "required", "none": "none",
             "check_inventory": {"type": "function", "function": {"name": "check_inventory"}}}
    served = {}
    for key, choice in modes.items():
        hits = _opening(ev, question, choice)
        if not hits:
            return fail("ex03_tool_choice_missing", tool_choice=json.dumps(choice, ensure_ascii=False))
        served[key] = [c["function"]["name"] for c in hits[0].reply.get("tool_calls") or []]
    return claim_matches(ev, "ex03_tool_choice_report", "tool_choice_results", served)
