"""Every registered evidence check has unit tests: a passing and a failing case, by name.

Convention: in tests/unit/test_checks_<exercise>.py, a test function named `test_<check>_passes…` and one
named `test_<check>_fails…` (parametrized cases count once). A failing case must run in the fast set
(`-m "not slow"`); a passing case may be `slow` only for the checks listed in SLOW_ONLY_PASSING.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import autograder.checks as checks
from coursegrader.config import load_course

UNIT_DIR = Path(__file__).resolve().parent
CHECK_MODULES = sorted(p.stem for p in Path(checks.__file__).parent.glob("ex[0-9][0-9]*.py"))
# Checks whose passing case cannot run in about a second: it generates with the model or starts a process.
SLOW_ONLY_PASSING = {
    ("ex05", "gozaru_rate_heldout"),  # 48 generations (24 held-out prompts, with and without the adapter)
    ("ex06", "champion_alias"),       # loads the champion with mlflow.pyfunc in a fresh, sandboxed process
    ("ex06", "champion_served"),      # serves the champion with MLflow's scoring server in a fresh, sandboxed process
    ("ex06", "promotion_follows_criteria"),  # re-runs promote_if_ready in a fresh process that imports MLflow
}


def registry() -> dict[tuple[str, str], object]:
    for module in CHECK_MODULES:
        importlib.import_module(f"{checks.__name__}.{module}")
    return dict(checks._REGISTRY)


def _is_slow(decorator: ast.expr) -> bool:
    return "mark.slow" in ast.unparse(decorator)


def unit_tests(exercise_id: str) -> dict[str, bool]:
    """Test function name -> whether it is marked slow, in tests/unit/test_checks_<exercise>.py."""
    path = UNIT_DIR / f"test_checks_{exercise_id}.py"
    if not path.is_file():
        return {}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module_slow = any("mark.slow" in ast.unparse(n.value) for n in tree.body
                      if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in n.targets))
    return {n.name: module_slow or any(map(_is_slow, n.decorator_list))
            for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_exercise_has_a_check_module_and_a_unit_test_file():
    assert CHECK_MODULES == sorted(load_course().exercises)
    missing = [m for m in CHECK_MODULES if not (UNIT_DIR / f"test_checks_{m}.py").is_file()]
    assert not missing, f"no tests/unit/test_checks_<ex>.py for {missing}"


def test_every_check_course_toml_names_is_registered():
    registered = registry()
    named = {(ex.id, name) for ex in load_course().exercises.values() for cell in ex.cells for name in cell.evidence}
    assert named <= set(registered), f"course.toml names unregistered checks: {sorted(named - set(registered))}"


@pytest.mark.parametrize("exercise_id, name", sorted(registry()), ids=lambda v: v)
def test_check_has_a_passing_and_a_failing_unit_test(exercise_id, name):
    tests = unit_tests(exercise_id)
    where = f"tests/unit/test_checks_{exercise_id}.py"
    passing = {t: slow for t, slow in tests.items() if t.startswith(f"test_{name}_passes")}
    failing = {t: slow for t, slow in tests.items() if t.startswith(f"test_{name}_fails")}
    assert passing, f"{where} has no test_{name}_passes… test"
    assert failing, f"{where} has no test_{name}_fails… test"
    assert not all(failing.values()), f"{where}: every test_{name}_fails… test is slow"
    assert all(passing.values()) == ((exercise_id, name) in SLOW_ONLY_PASSING), \
        f"{where}: test_{name}_passes… is slow-only exactly when SLOW_ONLY_PASSING lists it"
