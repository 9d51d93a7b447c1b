"""Graded end to end in another editor's shape (tests/shapes.py): a submission as Databricks commits it grades like
the same work in the release's shape, and the alignment cannot be turned against the grader
(fixtures/submissions/reshaped.toml). The feedback tier grades the whole solution in Databricks's Source format
(exNN.py) in tests/test_template_repo.py.

tests/test_align.py shows, without running anything, that every early catalog sample in every shape hands
nbgrader the same notebook; here a few of them are graded for real and compared with their release-shaped twin
(graded once per session by the `graded` fixture)."""
import pytest

from autograder.samples import load_catalog
from coursegrader.config import SUBMISSIONS_DIR, load_course

from expectations import assert_graded_as_expected

RESHAPED = load_catalog(load_course(), SUBMISSIONS_DIR / "reshaped.toml")
INFO = "cells_matched_by_content"
# (catalog sample, shape, exercises): graded in that shape, compared with the release-shaped grading
TWINS = [
    ("deleted_test_cell", "databricks", ["ex01"]),
    ("edited_test_cell", "extra_cells", ["ex01"]),
    ("blank", "databricks", ["ex01", "ex02", "ex03", "ex04", "ex05", "ex06"]),  # the template, committed untouched
    ("blank_started", "no_metadata", ["ex01"]),
    ("ex03_first_tool_call_only", "md_as_code", ["ex03"]),
    ("ex02_ge_constraint", "source_py", ["ex02"]),
]


@pytest.mark.parametrize("name", list(RESHAPED))
def test_reshaped_sample_scores_exactly_what_it_says(shaped, name):
    sample = RESHAPED[name]
    assert_graded_as_expected(sample, shaped(sample, sample.shape, sample.exercises))


@pytest.mark.parametrize("name, shape, exercises", TWINS, ids=[f"{n}-{s}" for n, s, _ in TWINS])
def test_a_catalog_sample_grades_alike_in_another_shape(graded, shaped, name, shape, exercises):
    sample, twin, _ = graded(name)
    grade = shaped(sample, shape, exercises)
    for run in grade.runs:
        expected = next(r for r in twin.runs if r.exercise.id == run.exercise.id)
        assert run.score == expected.score
        assert [(c.id, c.passed, c.score) for c in run.checks] == [(c.id, c.passed, c.score) for c in expected.checks]
        assert [p.code for p in run.problems] == [INFO] + [p.code for p in expected.problems], run.exercise.id


def test_the_report_says_what_happened_and_never_deleted(shaped):
    sample = RESHAPED["solution_databricks"]
    grade = shaped(sample, sample.shape, sample.exercises)
    for run in grade.runs:
        info = next(p for p in run.problems if p.code == INFO)
        assert "Databricks" in info.message_ja and "対応は不要" in info.message_ja
        assert "Nothing for you to do" in info.message_en
        assert not any("削除" in p.message_ja or "deleted" in p.message_en.lower() for p in run.problems)
