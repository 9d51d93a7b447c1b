"""Every source notebook runs against the fixture server with all its tests passing."""
import pytest

from autograder.config import SOURCE_DIR, load_course
from autograder.execute import course_kernel_env, run_notebook
from autograder.fmapi import FixtureServer

EXERCISES = [e for e in load_course().exercises if (SOURCE_DIR / e).is_dir()]


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_source_notebook_passes_its_own_tests(exercise_id, tmp_path):
    with FixtureServer() as server:
        nb = run_notebook(SOURCE_DIR / exercise_id / f"{exercise_id}.ipynb", cwd=tmp_path,
                          env=course_kernel_env(server.env(), tmp_path))  # raises on the first failing cell
        log = server.log.snapshot()
    assert not [e for e in log if e.get("status", 200) >= 400], "every API call must match a fixture"
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded and all(not any(o.output_type == "error" for o in c.outputs) for c in graded)
