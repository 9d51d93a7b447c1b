"""Every source notebook runs against the fixture server with all its tests passing."""
import pytest

from autograder.plain_run import run_source_notebook
from coursegrader.config import SOURCE_DIR, load_course
from coursegrader.fmapi import FixtureServer
from coursegrader.notebook import error_outputs, is_test

EXERCISES = [e for e in load_course().exercises if (SOURCE_DIR / e).is_dir()]


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_source_notebook_passes_its_own_tests(exercise_id, tmp_path):
    with FixtureServer() as server:
        nb = run_source_notebook(load_course().exercises[exercise_id], tmp_path, server)  # raises on a failing cell
        log = server.log.snapshot()
    assert not [e for e in log if e.get("status", 200) >= 400], "every API call must match a fixture"
    tests = [c for c in nb.cells if is_test(c)]
    assert tests and not any(error_outputs(c) for c in tests)
