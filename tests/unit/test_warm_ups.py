"""Warm-ups: what an exercise's checks load the same for every student (the reference model, the
evaluation set), done while the student's kernel runs, from the instructor's inputs alone."""
import pytest

import builders
from autograder import checks, reference_lm
from autograder.checks import ex06
from coursegrader.config import load_course


@pytest.mark.slow
def test_warm_ups_load_what_the_checks_then_find_loaded(profile):
    reference_lm.load.cache_clear()
    ex06.eval_set.cache_clear()
    for exercise_id in load_course().exercises:
        checks.warm_up(exercise_id, builders.inputs(exercise_id), profile)
    assert reference_lm.load.cache_info().currsize == 1  # one base model, shared by ex04-ex06
    before = reference_lm.load.cache_info()
    reference_lm.ReferenceLM(profile.resolve(profile.model_id))  # what ex04's and ex05's checks construct
    ex06.eval_set(profile.resolve(profile.dataset), int(builders.inputs("ex06")["EVAL_SAMPLES"]))
    assert reference_lm.load.cache_info().hits == before.hits + 1
    assert ex06.eval_set.cache_info().hits >= 1


def test_a_failing_preparation_or_standby_never_stops_grading(capsys):
    from types import SimpleNamespace

    from coursegrader.grading.pipeline import _Meanwhile

    calls = []

    def prepare(run):
        calls.append("prepare")
        raise RuntimeError("no model here")

    def standby(run, kernel_dir):
        calls.append(("standby", kernel_dir))
        raise OSError("bwrap: cannot start")

    run = SimpleNamespace(tier=SimpleNamespace(prepare=prepare, standby=standby), standby={})
    with _Meanwhile(run) as meanwhile:
        meanwhile.start("kernel-dir")
    assert sorted(map(str, calls)) == sorted(map(str, ["prepare", ("standby", "kernel-dir")]))
    assert run.standby == {}  # no standby: each check starts its own fresh process
    said = capsys.readouterr().err
    assert "no model here" in said and "bwrap: cannot start" in said  # said, and the verifier does the work


def test_the_official_tier_warms_up_its_checks_and_the_feedback_tier_nothing():
    from autograder.official import OFFICIAL, warm_up_checks
    from coursegrader.grading.tier import FEEDBACK

    assert OFFICIAL.prepare is warm_up_checks and FEEDBACK.prepare is None
