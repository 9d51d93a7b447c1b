"""ex04 (local inference) evidence checks: claims computed as the solution computes them, on the tiny offline model.

The checks regenerate with autograder.reference_lm; `memoized_generation` (conftest) makes each greedy
answer cost one generation per module, so a pass and a fail case of a check share it.
"""
from __future__ import annotations

import time

import pytest
import torch

import builders as b
from autograder.checks import get_check

EX = "ex04"
INPUTS = b.inputs(EX)

pytestmark = pytest.mark.usefixtures("memoized_generation")


def user(text):
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def solution(reference_lm, profile):
    """Everything ex04's solution reports, computed its way (the notebook's code on the same model)."""
    from transformers import AutoTokenizer, pipeline

    model, n = reference_lm.model, profile.max_new_tokens
    tokenizer = AutoTokenizer.from_pretrained(profile.resolve(profile.model_id))  # its own: batch_generate mutates it

    def generate(messages):
        inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True,
                                               return_tensors="pt").to(model.device)
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=n, do_sample=False)
        new = output[0][inputs["input_ids"].shape[1]:]
        return tokenizer.decode(new, skip_special_tokens=True).strip(), int(new.shape[0]), inputs, output

    def batch_generate(prompts, padding_side):
        tokenizer.padding_side = padding_side
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        inputs = tokenizer.apply_chat_template([user(p) for p in prompts], add_generation_prompt=True, padding=True,
                                               return_dict=True, return_tensors="pt").to(model.device)
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=n, do_sample=False)
        texts = tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        return [t.strip() for t in texts]

    qa_messages = user(INPUTS["QA_QUESTION"])
    qa_answer, _, qa_inputs, qa_output = generate(qa_messages)
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
    result = generator(qa_messages, max_new_tokens=n, do_sample=False, return_full_text=False)
    conversation = qa_messages + [{"role": "assistant", "content": qa_answer}] + user(INPUTS["FOLLOWUP_QUESTION"])
    start = time.perf_counter()
    _, new_tokens, speed_inputs, speed_output = generate(user(INPUTS["SPEED_PROMPT"]))
    seconds = time.perf_counter() - start
    claims = {
        "ex04_load_report": {"model_info": {"class": type(model).__name__, "num_parameters": model.num_parameters()}},
        "ex04_chat_template_report": {"qa_prompt": tokenizer.apply_chat_template(qa_messages, tokenize=False,
                                                                                 add_generation_prompt=True)},
        "ex04_generate_report": {"qa_answer": qa_answer},
        "ex04_pipeline_report": {"pipeline_answer": result[0]["generated_text"].strip()},
        "ex04_multi_turn_report": {"followup_answer": generate(conversation)[0]},
        "ex04_tasks_report": {"task_answers": {k: generate(user(p))[0] for k, p in INPUTS["TASK_PROMPTS"].items()}},
        "ex04_speed_report": {"speed": {"new_tokens": new_tokens, "seconds": seconds, "tokens_per_s": new_tokens / seconds,
                                        "memory_mb": model.get_memory_footprint() / 2**20}},
        "ex04_batch_report": {"batch_answers": batch_generate(INPUTS["BATCH_PROMPTS"], "left")},
    }
    def full_decode(messages):  # generate_answer decoding the prompt too
        return tokenizer.decode(generate(messages)[3][0], skip_special_tokens=True).strip()

    def short(messages):  # generate_answer ignoring max_new_tokens for a tiny one
        inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True,
                                               return_tensors="pt").to(model.device)
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=2, do_sample=False)
        return tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()

    def decoding_mistake(decode):
        """What 4.3, 4.5 and 4.6 report when generate_answer decodes this way (4.5's history holds its answer)."""
        qa = decode(qa_messages)
        history = qa_messages + [{"role": "assistant", "content": qa}] + user(INPUTS["FOLLOWUP_QUESTION"])
        return {"qa_answer": qa, "followup_answer": decode(history),
                "task_answers": {k: decode(user(p)) for k, p in INPUTS["TASK_PROMPTS"].items()}}

    mistakes = {  # what the usual wrong solutions report
        "full_decode": tokenizer.decode(qa_output[0], skip_special_tokens=True).strip(),
        "decodes_prompt_too": decoding_mistake(full_decode),
        "fewer_new_tokens": decoding_mistake(short),
        "prompt_tokens_counted": int(speed_output.shape[1]),
        "without_history": generate(user(INPUTS["FOLLOWUP_QUESTION"]))[0],
        "questions_in_one_message": generate(user(INPUTS["QA_QUESTION"] + "\n" + INPUTS["FOLLOWUP_QUESTION"]))[0],
        "right_padded_batch": batch_generate(INPUTS["BATCH_PROMPTS"], "right"),
    }
    return claims, mistakes


def run(name, claims, **fields):
    return get_check(EX, name)(b.evidence(EX, claims=claims, **fields))


def set_claim(claims, grade_id, name, value):
    claims[grade_id] = {name: value}
    return claims


# -- model_loaded --------------------------------------------------------------------------------

def test_model_loaded_passes_with_the_solutions_model_info(claims):
    assert run("model_loaded", claims).passed


@pytest.mark.parametrize("case, code", [
    ("the_real_gemma", "ex04_model_mismatch"),
    ("another_class", "ex04_model_mismatch"),
    ("claim_missing", "claim_missing"),
])
def test_model_loaded_fails(claims, case, code):
    info = claims["ex04_load_report"]["model_info"]
    if case == "the_real_gemma":  # MODEL_ID hard-coded instead of the profile's model
        info["num_parameters"] = 268_098_176
    elif case == "another_class":
        info["class"] = "Gemma3ForConditionalGeneration"
    else:
        del claims["ex04_load_report"]
    verdict = run("model_loaded", claims)
    assert not verdict.passed and verdict.code == code


# -- prompt_is_chat_template ---------------------------------------------------------------------

def test_prompt_is_chat_template_passes_with_the_solutions_prompt(claims):
    assert run("prompt_is_chat_template", claims).passed


@pytest.mark.parametrize("case, code", [
    ("no_generation_prompt", "ex04_prompt_mismatch"),
    ("plain_question", "ex04_prompt_mismatch"),
    ("claim_missing", "claim_missing"),
])
def test_prompt_is_chat_template_fails(claims, reference_lm, case, code):
    grade_id = "ex04_chat_template_report"
    if case == "no_generation_prompt":
        prompt = reference_lm.tokenizer.apply_chat_template(user(INPUTS["QA_QUESTION"]), tokenize=False)
        assert prompt != claims[grade_id]["qa_prompt"]
        set_claim(claims, grade_id, "qa_prompt", prompt)
    elif case == "plain_question":
        set_claim(claims, grade_id, "qa_prompt", INPUTS["QA_QUESTION"])
    else:
        del claims[grade_id]
    verdict = run("prompt_is_chat_template", claims)
    assert not verdict.passed and verdict.code == code


# -- greedy_answer -------------------------------------------------------------------------------

def test_greedy_answer_passes_with_the_solutions_answer(claims):
    assert run("greedy_answer", claims).passed


@pytest.mark.parametrize("case, code", [
    ("prompt_decoded_too", "ex04_greedy_mismatch"),
    ("not_stripped", "ex04_greedy_mismatch"),
    ("claim_missing", "claim_missing"),
])
def test_greedy_answer_fails(claims, mistakes, case, code):
    grade_id = "ex04_generate_report"
    if case == "prompt_decoded_too":
        set_claim(claims, grade_id, "qa_answer", mistakes["full_decode"])
    elif case == "not_stripped":
        claims[grade_id]["qa_answer"] += "\n"
    else:
        del claims[grade_id]
    verdict = run("greedy_answer", claims)
    assert not verdict.passed and verdict.code == code


# -- pipeline_answer -----------------------------------------------------------------------------

def test_pipeline_answer_passes_with_the_solutions_answer(claims):
    assert claims["ex04_pipeline_report"]["pipeline_answer"] == claims["ex04_generate_report"]["qa_answer"]
    assert run("pipeline_answer", claims).passed


@pytest.mark.parametrize("case, code", [
    ("return_full_text", "ex04_pipeline_mismatch"),
    ("claim_missing", "claim_missing"),
])
def test_pipeline_answer_fails(claims, mistakes, case, code):
    grade_id = "ex04_pipeline_report"
    if case == "return_full_text":
        set_claim(claims, grade_id, "pipeline_answer", mistakes["full_decode"])
    else:
        del claims[grade_id]
    verdict = run("pipeline_answer", claims)
    assert not verdict.passed and verdict.code == code


# -- multi_turn_answer ---------------------------------------------------------------------------

def test_multi_turn_answer_passes_with_the_solutions_answer(claims):
    assert run("multi_turn_answer", claims).passed


@pytest.mark.parametrize("case, code", [
    ("questions_in_one_message", "ex04_multi_turn_mismatch"),
    ("first_answer_repeated", "ex04_multi_turn_mismatch"),
    ("claim_missing", "claim_missing"),
])
def test_multi_turn_answer_fails(claims, mistakes, case, code):
    grade_id = "ex04_multi_turn_report"
    if case == "questions_in_one_message":
        assert mistakes["questions_in_one_message"] != claims[grade_id]["followup_answer"]
        set_claim(claims, grade_id, "followup_answer", mistakes["questions_in_one_message"])
    elif case == "first_answer_repeated":
        set_claim(claims, grade_id, "followup_answer", claims["ex04_generate_report"]["qa_answer"])
    else:
        del claims[grade_id]
    verdict = run("multi_turn_answer", claims)
    assert not verdict.passed and verdict.code == code


@pytest.mark.xfail(reason="known gap: on the cpu profile the tiny model answers FOLLOWUP_QUESTION identically with "
                          "and without the history, so a solution that drops the history is not caught", strict=False)
def test_multi_turn_answer_rejects_a_followup_generated_without_history(claims, mistakes):
    set_claim(claims, "ex04_multi_turn_report", "followup_answer", mistakes["without_history"])
    assert not run("multi_turn_answer", claims).passed


@pytest.mark.parametrize("mistake", ["decodes_prompt_too", "fewer_new_tokens"])
def test_a_decoding_mistake_of_generate_answer_is_charged_to_ex04_generate_once(claims, mistakes, mistake):
    """4.5 and 4.6 call 4.3's generate_answer as dictated: its decoding mistake costs ex04_generate only."""
    reported = mistakes[mistake]
    set_claim(claims, "ex04_generate_report", "qa_answer", reported["qa_answer"])
    set_claim(claims, "ex04_multi_turn_report", "followup_answer", reported["followup_answer"])
    set_claim(claims, "ex04_tasks_report", "task_answers", reported["task_answers"])
    assert run("greedy_answer", claims).code == "ex04_greedy_mismatch"
    assert run("multi_turn_answer", claims).passed
    assert run("task_answers", claims).passed


def test_multi_turn_answer_fails_after_a_decoding_mistake_when_the_history_is_dropped(claims, mistakes):
    reported = mistakes["decodes_prompt_too"]
    set_claim(claims, "ex04_generate_report", "qa_answer", reported["qa_answer"])
    set_claim(claims, "ex04_multi_turn_report", "followup_answer", reported["task_answers"]["qa"])
    verdict = run("multi_turn_answer", claims)
    assert not verdict.passed and verdict.code == "ex04_multi_turn_mismatch"


def test_task_answers_fails_after_a_decoding_mistake_when_answers_are_swapped(claims, mistakes):
    reported = mistakes["decodes_prompt_too"]
    set_claim(claims, "ex04_generate_report", "qa_answer", reported["qa_answer"])
    answers = dict(reported["task_answers"])
    answers["qa"], answers["classification"] = answers["classification"], answers["qa"]
    set_claim(claims, "ex04_tasks_report", "task_answers", answers)
    verdict = run("task_answers", claims)
    assert not verdict.passed and verdict.code == "ex04_task_answers_mismatch"


# -- task_answers --------------------------------------------------------------------------------

def test_task_answers_passes_with_the_solutions_answers(claims):
    assert run("task_answers", claims).passed


@pytest.mark.parametrize("case, code", [
    ("answers_swapped", "ex04_task_answers_mismatch"),
    ("task_missing", "ex04_task_answers_mismatch"),
    ("claim_missing", "claim_missing"),
])
def test_task_answers_fails(claims, case, code):
    answers = claims["ex04_tasks_report"]["task_answers"]
    if case == "answers_swapped":
        answers["qa"], answers["classification"] = answers["classification"], answers["qa"]
    elif case == "task_missing":
        del answers["summarization"]
    else:
        del claims["ex04_tasks_report"]
    verdict = run("task_answers", claims)
    assert not verdict.passed and verdict.code == code


# -- speed_consistent ----------------------------------------------------------------------------

def test_speed_consistent_passes_with_the_solutions_measurement(claims):
    assert run("speed_consistent", claims).passed


@pytest.mark.parametrize("case, code", [
    ("claim_missing", "ex04_speed_missing"),
    ("key_missing", "ex04_speed_missing"),
    ("not_a_dict", "ex04_speed_missing"),
    ("prompt_tokens_counted", "ex04_new_tokens_wrong"),
    ("rate_not_from_seconds", "ex04_speed_inconsistent"),
    ("zero_seconds", "ex04_speed_inconsistent"),
    ("no_memory", "ex04_speed_inconsistent"),
    ("seconds_from_a_timestamp", "ex04_speed_inconsistent"),
    ("memory_in_bytes", "ex04_memory_wrong"),
    ("memory_in_mb", "ex04_memory_wrong"),
])
def test_speed_consistent_fails(claims, mistakes, case, code):
    speed = claims["ex04_speed_report"]["speed"]
    if case == "claim_missing":
        del claims["ex04_speed_report"]
    elif case == "key_missing":
        del speed["memory_mb"]
    elif case == "not_a_dict":
        claims["ex04_speed_report"]["speed"] = [speed["new_tokens"], speed["seconds"]]
    elif case == "prompt_tokens_counted":
        speed["new_tokens"] = mistakes["prompt_tokens_counted"]
        speed["tokens_per_s"] = speed["new_tokens"] / speed["seconds"]
    elif case == "rate_not_from_seconds":
        speed["tokens_per_s"] = speed["new_tokens"] / (speed["seconds"] + 1)
    elif case == "zero_seconds":
        speed["seconds"], speed["tokens_per_s"] = 0.0, 0.0
    elif case == "seconds_from_a_timestamp":  # perf_counter() + start: not a duration
        speed["seconds"] = 2 * time.perf_counter()
        speed["tokens_per_s"] = speed["new_tokens"] / speed["seconds"]
    elif case == "memory_in_bytes":  # deterministic on a CPU, so checked for its value, not its sign
        speed["memory_mb"] *= 2**20
    elif case == "memory_in_mb":
        speed["memory_mb"] *= 2**20 / 10**6
    else:
        speed["memory_mb"] = 0
    verdict = run("speed_consistent", claims)
    assert not verdict.passed and verdict.code == code


# -- batch_matches_unbatched ---------------------------------------------------------------------

def test_batch_matches_unbatched_passes_with_the_solutions_left_padded_batch(claims):
    assert run("batch_matches_unbatched", claims).passed


@pytest.mark.parametrize("case, code", [
    ("right_padded", "ex04_batch_mismatch"),
    ("order_reversed", "ex04_batch_mismatch"),
    ("claim_missing", "claim_missing"),
])
def test_batch_matches_unbatched_fails(claims, mistakes, case, code):
    grade_id = "ex04_batch_report"
    if case == "right_padded":
        assert mistakes["right_padded_batch"] != claims[grade_id]["batch_answers"]
        set_claim(claims, grade_id, "batch_answers", mistakes["right_padded_batch"])
    elif case == "order_reversed":
        claims[grade_id]["batch_answers"].reverse()
    else:
        del claims[grade_id]
    verdict = run("batch_matches_unbatched", claims)
    assert not verdict.passed and verdict.code == code
