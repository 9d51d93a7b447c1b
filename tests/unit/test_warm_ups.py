"""Warm-ups: what an exercise's checks compute the same for every student (the reference model and
its answers), done while the student's kernel runs, from the instructor's inputs alone."""
import pytest

import builders
from autograder import checks
from autograder.checks import ex05, ex06
from coursegrader.config import load_course


@pytest.mark.slow
def test_warm_ups_fill_the_caches_the_checks_read(profile):
    for exercise_id in load_course().exercises:
        checks.warm_up(exercise_id, builders.inputs(exercise_id), profile)
    model_id = profile.resolve(profile.model_id)
    assert ex05.base_heldout_rate.cache_info().currsize == 1
    questions = tuple(q for q, _ in ex06.eval_set(profile.resolve(profile.dataset),
                                                   int(builders.inputs("ex06")["EVAL_SAMPLES"])))
    before = ex06.base_answers.cache_info()
    answers = ex06.base_answers(model_id, questions, profile.max_new_tokens)  # what metrics_recomputed asks
    assert ex06.base_answers.cache_info().hits == before.hits + 1
    assert len(answers) == len(questions) and all(isinstance(a, str) for a in answers)
