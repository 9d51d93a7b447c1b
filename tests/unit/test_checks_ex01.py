"""ex01 (Chat Completion) evidence checks on synthetic request logs replayed from the ex01 cassette."""
from __future__ import annotations

import pytest

import builders as b
from autograder.checks import get_check

EX = "ex01"
INPUTS = b.inputs(EX)


def run(name, log, claims=None, **fields):
    return get_check(EX, name)(b.evidence(EX, log, claims, **fields))


def solution_claims(log) -> dict:
    """usage_summary as the solution's summarize_usage computes it from its responses."""
    summary = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for question in INPUTS["USAGE_QUESTIONS"]:
        usage = b.one(log, user=question, roles_are=["user"]).response["usage"]
        summary["calls"] += 1
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            summary[key] += usage[key]
    return {"ex01_usage_report": {"usage_summary": summary}}


@pytest.fixture
def log():
    return b.cassette_log(EX)


def qa(log):
    return b.one(log, user=INPUTS["QA_QUESTION"], roles_are=["user"])


def with_system(log):
    return b.one(log, user=INPUTS["SYSTEM_QUESTION"], roles_are=["system", "user"])


def baseline(log):
    return b.one(log, user=INPUTS["SYSTEM_QUESTION"], roles_are=["user"])


def temperature_trials(log, value):
    return b.select(log, user=INPUTS["TEMPERATURE_PROMPT"], where=lambda e: e.request.get("temperature") == value)


def turn(log, n):
    """The request of conversation turn n (1-based): system, then n user messages and n - 1 replies."""
    return b.one(log, user=INPUTS["CONVERSATION"][n - 1], roles_are=["system"] + ["user", "assistant"] * (n - 1) + ["user"])


# -- uses_sdk_client ---------------------------------------------------------------------------

def test_uses_sdk_client_passes_on_the_solution_log(log):
    assert run("uses_sdk_client", log).passed


@pytest.mark.parametrize("case", ["no_token", "empty_log", "only_rejected"])
def test_uses_sdk_client_fails(log, case):
    if case == "no_token":  # requests without the workspace token (e.g. raw HTTP): logged as 401s, unparsed
        log = [b.unauthorized_entry(seq=e.seq) for e in log]
    elif case == "empty_log":
        log = []
    else:  # sent with the token, but none succeeded
        log = [b.rejected(e) for e in log]
    verdict = run("uses_sdk_client", log)
    assert not verdict.passed and verdict.code == "ex01_no_authorized_request"


# -- qa_request ----------------------------------------------------------------------------------

def test_qa_request_passes_on_the_solution_log(log):
    assert run("qa_request", log).passed


@pytest.mark.parametrize("case, code", [
    ("dropped", "ex01_qa_request_missing"),
    ("rejected", "ex01_qa_request_missing"),
    ("extra_system_message", "ex01_qa_request_missing"),
    ("other_model", "ex01_wrong_model"),
    ("max_tokens_dropped", "ex01_request_settings"),
    ("other_max_tokens", "ex01_request_settings"),
    ("temperature_dropped", "ex01_request_settings"),
])
def test_qa_request_fails(log, case, code):
    entry = qa(log)
    if case == "dropped":
        log = b.without(log, [entry])
    elif case == "rejected":
        log[log.index(entry)] = b.rejected(entry)
    elif case == "extra_system_message":
        entry.request["messages"].insert(0, {"role": "system", "content": "簡潔に答えてください。"})
    elif case == "other_model":
        entry.request["model"] = "databricks-meta-llama-3-1-8b-instruct"
    elif case == "max_tokens_dropped":  # the server's default is not the MAX_TOKENS the exercise dictates
        del entry.request["max_tokens"]
    elif case == "other_max_tokens":
        entry.request["max_tokens"] = INPUTS["MAX_TOKENS"] + 1
    else:
        del entry.request["temperature"]
    verdict = run("qa_request", log)
    assert not verdict.passed and verdict.code == code


# -- system_prompt_request -----------------------------------------------------------------------

def test_system_prompt_request_passes_on_the_solution_log(log):
    assert run("system_prompt_request", log).passed


@pytest.mark.parametrize("case, code", [
    ("system_message_dropped", "ex01_system_prompt_missing"),
    ("other_system_prompt", "ex01_system_prompt_missing"),
    ("system_as_user", "ex01_system_prompt_missing"),
    ("baseline_dropped", "ex01_baseline_request_missing"),
])
def test_system_prompt_request_fails(log, case, code):
    entry = with_system(log)
    if case == "system_message_dropped":
        del entry.request["messages"][0]
    elif case == "other_system_prompt":
        entry.request["messages"][0]["content"] = "あなたは親切なアシスタントです。"
    elif case == "system_as_user":
        entry.request["messages"][0]["role"] = "user"
    else:
        log = b.without(log, [baseline(log)])
    verdict = run("system_prompt_request", log)
    assert not verdict.passed and verdict.code == code


def test_system_prompt_request_leaves_asks_settings_to_qa_request(log):
    """ask() is 1.2's function: a wrong max_tokens in it is charged to ex01_qa once, not again here."""
    for entry in (with_system(log), baseline(log)):
        del entry.request["max_tokens"]
    assert run("system_prompt_request", log).passed


# -- temperature_requests ------------------------------------------------------------------------

def test_temperature_requests_passes_on_the_solution_log(log):
    assert len(temperature_trials(log, INPUTS["HIGH_TEMPERATURE"])) == INPUTS["TEMPERATURE_TRIALS"]
    assert run("temperature_requests", log).passed


@pytest.mark.parametrize("case", ["one_high_trial_fewer", "low_temperature_omitted", "one_high_trial_other_value",
                                  "one_low_trial_rejected"])
def test_temperature_requests_fails(log, case):
    high, low = (temperature_trials(log, INPUTS[k]) for k in ("HIGH_TEMPERATURE", "LOW_TEMPERATURE"))
    if case == "one_high_trial_fewer":
        log = b.without(log, high[-1:])
    elif case == "low_temperature_omitted":  # the server default is not the low temperature asked for
        for e in low:
            del e.request["temperature"]
    elif case == "one_high_trial_other_value":
        high[0].request["temperature"] = 1.0
    else:
        log[log.index(low[0])] = b.rejected(low[0])
    verdict = run("temperature_requests", log)
    assert not verdict.passed and verdict.code == "ex01_temperature_trials"
    assert verdict.fields["trials"] == INPUTS["TEMPERATURE_TRIALS"]


# -- multi_turn_history --------------------------------------------------------------------------

def test_multi_turn_history_passes_on_the_solution_log(log):
    assert run("multi_turn_history", log).passed


@pytest.mark.parametrize("case, failing_turn", [
    ("turn2_without_previous_reply", 2),
    ("turn3_reply_rewritten", 3),
    ("turn1_without_system", 1),
    ("turn3_missing", 3),
])
def test_multi_turn_history_fails(log, case, failing_turn):
    if case == "turn2_without_previous_reply":  # the classic bug: only user messages are kept
        msgs = turn(log, 2).request["messages"]
        msgs[:] = [m for m in msgs if m["role"] != "assistant"]
    elif case == "turn3_reply_rewritten":  # the history must hold the replies as served
        turn(log, 3).request["messages"][4]["content"] = "2日目がおすすめです。"
    elif case == "turn1_without_system":
        del turn(log, 1).request["messages"][0]
    else:
        log = b.without(log, [turn(log, 3)])
    verdict = run("multi_turn_history", log)
    assert not verdict.passed and verdict.code == "ex01_history_missing"
    assert verdict.fields["turn"] == failing_turn


def test_multi_turn_history_fails_without_the_dictated_settings(log):
    turn(log, 2).request["temperature"] = 0.7
    verdict = run("multi_turn_history", log)
    assert not verdict.passed and verdict.code == "ex01_request_settings"
    assert verdict.fields == {"setting": "temperature", "expected": 0.0, "sent": 0.7}


# -- usage_total ---------------------------------------------------------------------------------

def test_usage_total_passes_with_the_solutions_summary(log):
    claims = solution_claims(log)
    assert run("usage_total", log, claims).passed
    claims["ex01_usage_report"]["usage_summary"]["note"] = "extra keys are allowed"
    assert run("usage_total", log, claims).passed


@pytest.mark.parametrize("case, code", [
    ("total_off_by_one", "claim_mismatch"),
    ("calls_miscounted", "claim_mismatch"),
    ("qa_usage_included", "claim_mismatch"),
    ("claim_missing", "claim_missing"),
    ("claim_in_another_cell", "claim_missing"),
    ("question_not_sent", "ex01_usage_requests_missing"),
    ("max_tokens_dropped", "ex01_request_settings"),
])
def test_usage_total_fails(log, case, code):
    claims = solution_claims(log)
    summary = claims["ex01_usage_report"]["usage_summary"]
    if case == "total_off_by_one":
        summary["total_tokens"] += 1
    elif case == "calls_miscounted":
        summary["calls"] = 1
    elif case == "qa_usage_included":  # summed over a request that is not one of USAGE_QUESTIONS
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            summary[key] += qa(log).response["usage"][key]
    elif case == "claim_missing":
        claims = {}
    elif case == "claim_in_another_cell":
        claims = {"ex01_usage": claims["ex01_usage_report"]}
    elif case == "max_tokens_dropped":
        del b.one(log, user=INPUTS["USAGE_QUESTIONS"][0]).request["max_tokens"]
    else:
        log = b.without(log, [b.one(log, user=INPUTS["USAGE_QUESTIONS"][-1])])
    verdict = run("usage_total", log, claims)
    assert not verdict.passed and verdict.code == code
