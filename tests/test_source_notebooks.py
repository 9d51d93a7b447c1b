"""Every source notebook's solution runs against the fixture server with all its tests passing.

The official grading of the `solution` sample (graded once per session) runs exactly that: the release with
the source solutions, the source's hidden tests restored. It is read here rather than run again (ex05 and
ex06 take minutes). A plain run (no grading, as bench and record mode run it) is checked on ex01 by an nbmake
item: `python -m pytest -p tests.nbmake_plugin --nbmake source/ex01/ex01.ipynb` (tests/nbmake_plugin.py, .ci/run)."""
import pytest

from coursegrader.config import SOURCE_DIR, load_course
from coursegrader.notebook import error_outputs, grade_id, is_test

EXERCISES = [e for e in load_course().exercises if (SOURCE_DIR / e).is_dir()]


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_source_solution_runs_every_cell_cleanly_and_matches_every_fixture(graded, exercise_id):
    _, grade, _ = graded("solution")
    run = next(r for r in grade.runs if r.exercise.id == exercise_id)
    nb = run.autograded.notebook
    assert not [(grade_id(c), error_outputs(c)) for c in nb.cells if error_outputs(c)]
    assert not [e for e in run.log if e.status >= 400], "every API call must match a fixture"
    tests = [c for c in nb.cells if is_test(c)]
    assert tests and {grade_id(c) for c in tests} == {c.grade_id for c in run.exercise.cells}
