"""Every source notebook's solution runs against the fixture server with all its tests passing.

The official grading of the `solution` sample (graded once per session) runs exactly that: the release with
the source solutions, the source's hidden tests restored. It is read here rather than run again (ex05 and
ex06 take minutes); the plain nbclient run of bench and record mode is checked on ex01."""
import pytest

from autograder.plain_run import run_source_notebook
from coursegrader.config import SOURCE_DIR, load_course
from coursegrader.fmapi import FixtureServer
from coursegrader.notebook import error_outputs, grade_id, is_test

EXERCISES = [e for e in load_course().exercises if (SOURCE_DIR / e).is_dir()]


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_source_solution_runs_every_cell_cleanly_and_matches_every_fixture(graded, exercise_id):
    _, grade, _ = graded("solution")
    run = next(r for r in grade.runs if r.exercise.id == exercise_id)
    nb = run.autograded.notebook
    assert not [(grade_id(c), error_outputs(c)) for c in nb.cells if error_outputs(c)]
    assert not [e for e in run.log if e.get("status", 200) >= 400], "every API call must match a fixture"
    tests = [c for c in nb.cells if is_test(c)]
    assert tests and {grade_id(c) for c in tests} == {c.grade_id for c in run.exercise.cells}


def test_the_plain_run_of_bench_and_record_mode_passes_its_own_tests(tmp_path):
    with FixtureServer() as server:
        nb = run_source_notebook(load_course().exercises["ex01"], tmp_path, server)  # raises on a failing cell
        log = server.log.snapshot()
    assert not [e for e in log if e.get("status", 200) >= 400], "every API call must match a fixture"
    tests = [c for c in nb.cells if is_test(c)]
    assert tests and not any(error_outputs(c) for c in tests)
