"""Each sample submission scores exactly what the catalog says: the solution full
marks, the blank release 0, every mistake exactly its points, bad input a named problem."""
import json

import jsonschema
import pytest

from autograder.samples import load_catalog
from coursegrader.config import REPO_ROOT, load_course

from expectations import assert_graded_as_expected

CATALOG = load_catalog(load_course())
GRADE_SCHEMA = json.loads((REPO_ROOT / "docs" / "grade.schema.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", list(CATALOG))
def test_sample_loses_exactly_its_points(graded, name):
    sample, grade, _ = graded(name)
    assert_graded_as_expected(sample, grade)


@pytest.mark.parametrize("name", list(CATALOG))
def test_grade_json_follows_its_published_schema(graded, name):
    _, _, out = graded(name)
    jsonschema.validate(json.loads((out / "grade.json").read_text(encoding="utf-8")), GRADE_SCHEMA,
                        cls=jsonschema.Draft202012Validator)


def test_solution_is_full_marks_and_blank_is_zero(graded):
    _, solution, _ = graded("solution")
    _, blank, _ = graded("blank")
    assert solution.score == solution.max_score > 0
    assert blank.score == 0 and blank.max_score == solution.max_score


def test_catalog_covers_the_required_cases():
    assert {"solution", "blank", "malformed_notebook", "missing_notebook", "deleted_test_cell",
            "edited_test_cell", "infinite_loop", "kernel_dies", "forged_kernel"} <= set(CATALOG)
    partial = [s for s in CATALOG.values() if s.base == "solution" and s.expect_failed and not s.expect_problems]
    assert len(partial) >= 3


def test_forged_kernel_passes_nbgrader_but_scores_zero(graded):
    """The adversary fools every in-kernel test; the evidence from outside gives nothing."""
    _, grade, _ = graded("forged_kernel")
    checks = grade.runs[0].checks
    assert all(c.test.passed for c in checks)
    assert grade.score == 0


def test_mistakes_explain_the_cause(graded):
    _, grade, _ = graded("ex01_drops_history")
    check = next(c for c in grade.runs[0].checks if c.id == "ex01_multi_turn")
    # after the hidden tests began, an API error is shown by its code (its message quotes the request)
    assert "ex01_multi_turn_impl" in check.message and "Error code: 400 (NO_MATCHING_FIXTURE)" in check.message
    assert "会話履歴" in check.evidence[0].message  # the grader's own explanation, from the request log
    _, grade, _ = graded("ex05_bad_target_modules")  # a crash cascade names the cell to fix first
    check = next(c for c in grade.runs[0].checks if c.id == "ex05_train")
    assert "NameError" in check.message and "原因は前のセル ex05_lora_impl" in check.message
    _, grade, _ = graded("ex02_ge_constraint")
    check = next(c for c in grade.runs[0].checks if c.id == "ex02_detailed")
    assert "INVALID_PARAMETER_VALUE" in check.message  # the service's words ("do not support") are on the TA's page


def test_blank_is_not_run_and_the_report_says_not_started(graded):
    _, grade, out = graded("blank")
    assert [run.status for run in grade.runs] == ["not_started"] * len(load_course().exercises)
    assert all(run.autograded is None and not run.log for run in grade.runs)  # no kernel, no API request
    assert "未着手" in (out / "grade.md").read_text(encoding="utf-8")
    qa = next(c for c in grade.runs[0].checks if c.id == "ex01_qa")
    assert "未着手" in qa.message


def test_a_started_blank_runs_and_points_at_the_unimplemented_cell(graded):
    _, grade, _ = graded("blank_started")
    assert [run.status for run in grade.runs] == ["graded"]
    qa = next(c for c in grade.runs[0].checks if c.id == "ex01_qa")
    assert "ex01_qa_impl" in qa.message and "NotImplementedError" in qa.message
