"""ex01 Chat Completion: checks on the request log."""
from __future__ import annotations

from ..evidence import Evidence, Verdict, claim_matches, fail, ok, same_messages
from . import check

EX = "ex01"
# The temperature 1.2, 1.5 and 1.6 dictate (ask's default); 1.4 sends LOW_TEMPERATURE and HIGH_TEMPERATURE.
# 1.3 only calls ask(), whose settings 1.2 is charged for.
ANSWER_TEMPERATURE = 0.0


def dictated_settings(ev: Evidence, hits, temperature: float = ANSWER_TEMPERATURE) -> Verdict | None:
    """A failure when a request was sent without the settings the exercise dictates."""
    expected = {"max_tokens": ev.inputs["MAX_TOKENS"], "temperature": temperature}
    for x in hits:
        for setting, value in expected.items():
            sent = x.request.get(setting)
            if not isinstance(sent, (int, float)) or float(sent) != float(value):
                return fail("ex01_request_settings", setting=setting, expected=value, sent=sent)
    return None


@check(EX)
def uses_sdk_client(ev: Evidence) -> Verdict:
    if not ev.served(lambda x: x.authorized):
        return fail("ex01_no_authorized_request")
    return ok()


@check(EX)
def qa_request(ev: Evidence) -> Verdict:
    hits = ev.served(lambda x: same_messages(x.messages, [("user", ev.inputs["QA_QUESTION"])]))
    if not hits:
        return fail("ex01_qa_request_missing")
    if any(x.request.get("model") != ev.chat_model for x in hits):
        return fail("ex01_wrong_model", model=ev.chat_model)
    return dictated_settings(ev, hits) or ok()


@check(EX)
def system_prompt_request(ev: Evidence) -> Verdict:
    question = ev.inputs["SYSTEM_QUESTION"]
    with_system = ev.served(lambda x: same_messages(x.messages, [("system", ev.inputs["SYSTEM_PROMPT"]), ("user", question)]))
    without = ev.served(lambda x: same_messages(x.messages, [("user", question)]))
    if not with_system:
        return fail("ex01_system_prompt_missing")
    if not without:
        return fail("ex01_baseline_request_missing")
    return ok()  # ask()'s settings are ex01_qa's (qa_request): charged there once


@check(EX)
def temperature_requests(ev: Evidence) -> Verdict:
    trials = ev.inputs["TEMPERATURE_TRIALS"]
    for label in ("LOW_TEMPERATURE", "HIGH_TEMPERATURE"):
        value = float(ev.inputs[label])
        n = len(ev.served(lambda x: same_messages(x.messages, [("user", ev.inputs["TEMPERATURE_PROMPT"])])
                          and x.request.get("temperature") is not None
                          and float(x.request["temperature"]) == value))
        if n < trials:
            return fail("ex01_temperature_trials", temperature=value, count=n, trials=trials)
    return ok()


@check(EX)
def multi_turn_history(ev: Evidence) -> Verdict:
    history = [("system", ev.inputs["CHAT_SYSTEM_PROMPT"])]
    for turn, message in enumerate(ev.inputs["CONVERSATION"], start=1):
        expected = history + [("user", message)]
        hits = ev.served(lambda x: same_messages(x.messages, expected))
        if not hits:
            return fail("ex01_history_missing", turn=turn)
        if failed := dictated_settings(ev, hits):
            return failed
        reply = hits[0].reply.get("content") or ""
        history = expected + [("assistant", reply)]
    return ok()


@check(EX)
def usage_total(ev: Evidence) -> Verdict:
    questions = ev.inputs["USAGE_QUESTIONS"]
    served = ev.served(lambda x: any(same_messages(x.messages, [("user", q)]) for q in questions))
    if len(served) < len(questions):
        return fail("ex01_usage_requests_missing")
    if failed := dictated_settings(ev, served):
        return failed
    expected = {"calls": len(served)}
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        expected[key] = sum(int(x.response["usage"][key]) for x in served)
    return claim_matches(ev, "ex01_usage_report", "usage_summary", expected)
