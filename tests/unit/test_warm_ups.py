"""Warm-ups: what an exercise's checks load the same for every student (the reference model, the
evaluation set), done while the student's kernel runs, from the instructor's inputs alone."""
import pytest

import builders
from autograder import checks, reference_lm
from autograder.checks import ex06
from coursegrader.config import load_course
from coursegrader.precision import machine_precision


@pytest.mark.slow
def test_warm_ups_load_what_the_checks_then_find_loaded(profile):
    reference_lm.load.cache_clear()
    ex06.eval_set.cache_clear()
    course = load_course()
    precision = machine_precision(course.bf16_min_capability)
    for exercise_id in course.exercises:
        checks.warm_up(exercise_id, builders.inputs(exercise_id), profile, precision)
    assert reference_lm.load.cache_info().currsize == 1  # one base model, shared by ex04-ex06
    before = reference_lm.load.cache_info()
    reference_lm.ReferenceLM(profile.resolve(profile.model_id), precision=precision)  # what ex04's and ex05's checks construct
    ex06.eval_set(profile.resolve(profile.dataset), int(builders.inputs("ex06")["EVAL_SAMPLES"]))
    assert reference_lm.load.cache_info().hits == before.hits + 1
    assert ex06.eval_set.cache_info().hits >= 1


def test_a_failing_warm_up_or_standby_never_stops_grading(capsys, monkeypatch):
    import nbformat

    from autograder.executor import CheckExecutor
    from coursegrader.config import SOURCE_DIR
    from coursegrader.grading.tier import RunSetup

    calls = []

    def warm_up(exercise_id, inputs, profile, precision):
        calls.append("warm_up")
        raise RuntimeError("no model here")

    def standby(exercise_id, kernel_dir, setup):
        calls.append(("standby", kernel_dir))
        raise OSError("bwrap: cannot start")

    monkeypatch.setattr(checks, "warm_up", warm_up)
    monkeypatch.setattr(checks, "standby", standby)
    course = load_course()
    exercise = course.exercises["ex06"]
    source = nbformat.read(SOURCE_DIR / "ex06" / exercise.notebook, as_version=4)
    executor = CheckExecutor(RunSetup(exercise, source, course, course.profile("cpu"), False, None))
    executor.start("kernel-dir")
    executor.close()
    assert sorted(map(str, calls)) == sorted(map(str, ["warm_up", ("standby", "kernel-dir")]))
    assert executor.processes.take("load", None, None) is None  # no standby: each check starts its own process
    said = capsys.readouterr().err
    assert "no model here" in said and "bwrap: cannot start" in said  # said, and the checks do the work


def test_the_official_tier_verifies_with_its_checks_and_the_feedback_tier_not_at_all():
    from autograder.executor import CheckExecutor
    from autograder.official import OFFICIAL
    from coursegrader.grading.tier import FEEDBACK

    assert OFFICIAL.verifier is CheckExecutor and FEEDBACK.verifier is None
