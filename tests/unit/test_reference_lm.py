"""The grader's model: a logged answer is confirmed by one teacher-forced pass when it is exactly the greedy answer,
and generated otherwise, so confirming changes the speed of a check, never its verdict."""
import pytest

import builders as b

PROMPTS = ["人工知能について知っていることを話してください。", "北海道を分類するとどうなりますか？",
           "月についての短い説明文を書いてください。"]


def _user(text):
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def greedy(reference_lm, profile):
    return {p: reference_lm.generate(_user(p), profile.max_new_tokens) for p in PROMPTS}


def test_the_greedy_answer_is_confirmed(reference_lm, profile, greedy):
    assert all(reference_lm.confirms_greedy(_user(p), answer, profile.max_new_tokens)
               for p, (answer, _) in greedy.items())


@pytest.mark.parametrize("change", ["last_char", "prefix", "longer", "leading_space", "empty", "other_prompt"])
def test_anything_else_is_not_confirmed_and_the_answer_is_generated(reference_lm, profile, greedy, change):
    prompt, (answer, _) = PROMPTS[0], greedy[PROMPTS[0]]
    wrong = {"last_char": answer[:-1] + ("。" if answer[-1] != "。" else "！"),
             "prefix": answer[: len(answer) // 2],  # greedy decoding would not have stopped there
             "longer": answer + "また、",
             "leading_space": " " + answer,
             "empty": "",
             "other_prompt": greedy[PROMPTS[1]][0]}[change]
    assert not reference_lm.confirms_greedy(_user(prompt), wrong, profile.max_new_tokens)
    assert reference_lm.answer(_user(prompt), profile.max_new_tokens, expect=wrong) == answer


def test_an_answer_cut_at_the_token_limit_is_confirmed_only_for_that_limit(reference_lm, profile, greedy):
    prompt, (_, count) = PROMPTS[0], greedy[PROMPTS[0]]
    limit = count // 2
    cut, cut_count = reference_lm.generate(_user(prompt), limit)
    assert cut_count == limit
    assert reference_lm.confirms_greedy(_user(prompt), cut, limit)
    assert not reference_lm.confirms_greedy(_user(prompt), cut, profile.max_new_tokens)


def test_a_claim_that_is_not_text_is_generated(reference_lm, profile, greedy):
    assert reference_lm.answer(_user(PROMPTS[2]), profile.max_new_tokens, expect=["not", "text"]) == greedy[PROMPTS[2]][0]


def test_models_built_in_threads_at_once_are_the_model(reference_lm, profile, greedy):
    """The grader builds models in threads (its warm-up beside the checks, the suite's gradings side by side), and
    transformers builds under process-wide switches: unlocked, such loads left lm_head untied and random."""
    import threading

    from autograder.reference_lm import ReferenceLM, load

    built = []

    def build():
        lm = ReferenceLM.__new__(ReferenceLM)
        lm.tokenizer, lm.model = load.__wrapped__(profile.resolve(profile.model_id), None, b.machine_precision())
        built.append(lm)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 4
    for lm in built:
        assert lm.model.lm_head.weight.data_ptr() == lm.model.model.embed_tokens.weight.data_ptr()
        assert lm.generate(_user(PROMPTS[0]), profile.max_new_tokens) == greedy[PROMPTS[0]]
