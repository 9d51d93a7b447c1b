"""ex04 local inference: the kernel's reported outputs against the grader's own generations."""
from __future__ import annotations

from coursegrader.config import Profile
from coursegrader.precision import Precision

from ..evidence import Evidence, Verdict, claim_matches, fail, ok
from ..reference_lm import ReferenceLM, use_cuda
from . import check, warms_up

EX = "ex04"


def _lm(ev: Evidence) -> ReferenceLM:
    return ReferenceLM(ev.profile.resolve(ev.profile.model_id), precision=ev.precision)


@warms_up(EX)
def load_reference_model(inputs: dict, profile: Profile, precision: Precision) -> None:
    ReferenceLM(profile.resolve(profile.model_id), precision=precision)


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _qa_answer(ev: Evidence) -> str:
    """The grader's greedy answer to QA_QUESTION, generated once per grading (4.3, 4.4 and 4.5 compare with it)."""
    return ev.shared.once("qa_answer", lambda: _lm(ev).answer(
        _user(ev.inputs["QA_QUESTION"]), ev.profile.max_new_tokens,
        expect=ev.claimed("ex04_generate_report", "qa_answer", str)))


@check(EX)
def model_loaded(ev: Evidence) -> Verdict:
    expected = {"class": "Gemma3ForCausalLM", "num_parameters": _lm(ev).model.num_parameters()}
    return claim_matches(ev, "ex04_load_report", "model_info", expected,
                         mismatch="ex04_model_mismatch", expected=expected)


@check(EX)
def prompt_is_chat_template(ev: Evidence) -> Verdict:
    expected = _lm(ev).prompt(_user(ev.inputs["QA_QUESTION"]))
    return claim_matches(ev, "ex04_chat_template_report", "qa_prompt", expected,
                         mismatch="ex04_prompt_mismatch")


@check(EX)
def greedy_answer(ev: Evidence) -> Verdict:
    expected = _qa_answer(ev)
    return claim_matches(ev, "ex04_generate_report", "qa_answer", expected,
                         mismatch="ex04_greedy_mismatch")


@check(EX)
def pipeline_answer(ev: Evidence) -> Verdict:
    expected = _qa_answer(ev)
    return claim_matches(ev, "ex04_pipeline_report", "pipeline_answer", expected,
                         mismatch="ex04_pipeline_mismatch")


def decoded_alike(answer, reference: str) -> bool:
    """`answer` differs from the grader's `reference` only as a decoding mistake makes it differ: the prompt or
    special tokens decoded too, whitespace kept, or fewer new tokens."""
    if not isinstance(answer, str) or not answer.strip():
        return False
    return reference in answer or reference.startswith(answer.strip())


def _inherited_decoding(ev: Evidence) -> bool:
    """4.3's generate_answer is off only in its decoding (charged there, to ex04_generate): the cells that call
    it afterwards (4.5, 4.6) are compared with the grader's answers modulo that decoding, not charged again."""
    try:
        qa_answer = ev.claim("ex04_generate_report", "qa_answer")
    except KeyError:
        return False
    expected = _qa_answer(ev)
    return qa_answer != expected and decoded_alike(qa_answer, expected)


@check(EX)
def multi_turn_answer(ev: Evidence) -> Verdict:
    lm, n = _lm(ev), ev.profile.max_new_tokens
    first = _qa_answer(ev)
    inherited = _inherited_decoding(ev)
    if inherited:  # the history holds the student's own first answer, as 4.5 dictates
        first = ev.claim("ex04_generate_report", "qa_answer")
    conversation = _user(ev.inputs["QA_QUESTION"]) + [{"role": "assistant", "content": first}] + _user(ev.inputs["FOLLOWUP_QUESTION"])
    followup = lm.answer(conversation, n, expect=ev.claimed("ex04_multi_turn_report", "followup_answer", str))
    return claim_matches(ev, "ex04_multi_turn_report", "followup_answer", followup,
                         mismatch="ex04_multi_turn_mismatch", alike=decoded_alike if inherited else None)


@check(EX)
def task_answers(ev: Evidence) -> Verdict:
    lm, n = _lm(ev), ev.profile.max_new_tokens
    claimed = ev.claimed("ex04_tasks_report", "task_answers", dict) or {}
    expected = {name: lm.answer(_user(p), n, expect=claimed.get(name)) for name, p in ev.inputs["TASK_PROMPTS"].items()}
    return claim_matches(ev, "ex04_tasks_report", "task_answers", expected, mismatch="ex04_task_answers_mismatch",
                         alike=decoded_alike if _inherited_decoding(ev) else None)


@check(EX)
def speed_consistent(ev: Evidence) -> Verdict:
    try:
        speed = ev.claim("ex04_speed_report", "speed")
        new_tokens, seconds, rate, memory = (speed[k] for k in ("new_tokens", "seconds", "tokens_per_s", "memory_mb"))
    except (KeyError, TypeError):
        return fail("ex04_speed_missing")
    _, expected_tokens = _lm(ev).generate(_user(ev.inputs["SPEED_PROMPT"]), ev.profile.max_new_tokens)
    if new_tokens != expected_tokens:
        return fail("ex04_new_tokens_wrong", expected=expected_tokens, recorded=new_tokens)
    if not (0 < seconds <= ev.course.cell_limit_s(EX) and memory > 0) or abs(rate - new_tokens / seconds) > 1e-6 * max(rate, 1e-9):
        return fail("ex04_speed_inconsistent")
    if not use_cuda():  # on a CPU the footprint is a fixed number: the model's parameters and buffers
        expected = _lm(ev).model.get_memory_footprint() / 2**20
        if abs(memory - expected) > 1e-6 * expected:
            return fail("ex04_memory_wrong", expected=round(expected, 3), recorded=memory)
    return ok()


@check(EX)
def batch_matches_unbatched(ev: Evidence) -> Verdict:
    lm, n = _lm(ev), ev.profile.max_new_tokens
    prompts, claimed = ev.inputs["BATCH_PROMPTS"], ev.claimed("ex04_batch_report", "batch_answers", list) or []
    expected = [lm.answer(_user(p), n, expect=claimed[i] if i < len(claimed) else None) for i, p in enumerate(prompts)]
    return claim_matches(ev, "ex04_batch_report", "batch_answers", expected,
                         mismatch="ex04_batch_mismatch")
