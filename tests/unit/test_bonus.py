"""Bonus exercises (course.toml `bonus = true`): graded and reported as bonus points, beside the core
total and never in it, in grade.json, grade.md, Classroom 50's result.json, the annotations and the
TA report. Fast: builds grades from synthetic runs; grades nothing."""
from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import jsonschema
import nbformat
import pytest

from autograder.dashboard.report import StudentResult, write_csv
from coursegrader.grade_file import GradeFile, read_grade
from coursegrader.config import FIXTURES_DIR, REPO_ROOT, Exercise, GradedCell, load_course
from coursegrader.export.classroom50 import result
from coursegrader.export.github import annotations
from coursegrader.grading.report import to_json, to_markdown
from coursegrader.grading.results import CheckResult, ExerciseRun, SubmissionGrade, TestOutcome
from coursegrader.grading.tier import FEEDBACK

GRADE_SCHEMA = json.loads((REPO_ROOT / "docs" / "grade.schema.json").read_text(encoding="utf-8"))
RESULT_SCHEMA = json.loads((FIXTURES_DIR / "classroom50" / "result-v1.schema.json").read_text(encoding="utf-8"))
ENV = {"CLASSROOM": "llm-2026", "ASSIGNMENT": "llm-handson", "OWNER": "octo-student", "MODE": "individual",
       "SUBMISSION_TAG": "submit/2026-12-18T10-00-00Z-abc1234", "COMMIT_URL": "https://github.com/o/r/commit/abc1234",
       "RELEASE_URL": "https://github.com/o/r/releases/tag/submit/x"}

CORE = Exercise("ex01", "Chat Completion API の基礎", "", (GradedCell("ex01_client", 1, ()), GradedCell("ex01_qa", 2, ())))
BONUS = Exercise("ex02_spark", "発展: Spark によるバッチ推論", "",
                 (GradedCell("ex02_spark_udf", 2, ()), GradedCell("ex02_spark_stream", 2, ())), bonus=True)


def run_of(exercise: Exercise, passed: set[str]) -> ExerciseRun:
    """A graded run whose cells in `passed` scored their points, the others 0."""
    nb = nbformat.v4.new_notebook()
    run = ExerciseRun(exercise, Path("sub"), Path("work"), nb, nb, [], 60, load_course(), load_course().profile("cpu"),
                      FEEDBACK)
    run.checks = [CheckResult(c.grade_id, float(c.points if c.grade_id in passed else 0), float(c.points),
                              c.grade_id in passed, "正解です。" if c.grade_id in passed else "不正解です。",
                              TestOutcome(c.grade_id in passed), [])
                  for c in exercise.cells]
    return run


def grade_of(*runs: ExerciseRun) -> SubmissionGrade:
    return SubmissionGrade(Path("s001"), list(runs), FEEDBACK, sandbox=False, profile="cpu")


def file_of(grade: SubmissionGrade) -> GradeFile:
    """The grade as the report's readers get it: its grade.json, read back."""
    return read_grade(to_json(grade))


@pytest.fixture
def bonus_grade() -> SubmissionGrade:  # not `graded`: that name marks a test slow (tests/conftest.py)
    """ex01 with 1 of its 3 points lost, and the bonus with 2 of its 4."""
    return grade_of(run_of(CORE, {"ex01_qa"}), run_of(BONUS, {"ex02_spark_udf"}))


def test_the_course_keeps_its_core_total():
    exercises = load_course().exercises.values()
    assert sum(e.max_score for e in exercises if not e.bonus) == 66


def test_bonus_points_are_beside_the_core_total_not_in_it(bonus_grade):
    assert (bonus_grade.score, bonus_grade.max_score) == (2, 3)
    assert (bonus_grade.bonus_score, bonus_grade.bonus_max_score) == (2, 4)


def test_without_a_bonus_exercise_the_bonus_is_zero():
    grade = grade_of(run_of(CORE, {"ex01_client", "ex01_qa"}))
    assert (grade.score, grade.max_score, grade.bonus_score, grade.bonus_max_score) == (3, 3, 0, 0)
    data = to_json(grade)
    assert (data["bonus_score"], data["bonus_max_score"]) == (0, 0) and data["exercises"]["ex01"]["bonus"] is False
    assert to_markdown(read_grade(data)).startswith("# 採点結果 / Grade report: 3 / 3\n")


def test_grade_json_reports_the_bonus_and_validates(bonus_grade):
    data = to_json(bonus_grade)
    jsonschema.Draft202012Validator(GRADE_SCHEMA).validate(data)
    assert (data["score"], data["max_score"], data["bonus_score"], data["bonus_max_score"]) == (2, 3, 2, 4)
    assert {ex_id: ex["bonus"] for ex_id, ex in data["exercises"].items()} == {"ex01": False, "ex02_spark": True}


def test_a_report_written_before_bonus_exercises_still_validates(bonus_grade):
    data = to_json(bonus_grade)
    for key in ("bonus_score", "bonus_max_score"):
        del data[key]
    for ex in data["exercises"].values():
        del ex["bonus"]
    jsonschema.Draft202012Validator(GRADE_SCHEMA).validate(data)
    assert not jsonschema.Draft202012Validator(GRADE_SCHEMA).is_valid({**data, "bonus_score": -1})


def test_grade_md_shows_the_bonus_beside_the_core_total(bonus_grade):
    md = to_markdown(file_of(bonus_grade))
    assert md.startswith("# 採点結果 / Grade report: 2 / 3 (+ ボーナス / bonus: 2 / 4)\n")
    assert "| ex02_spark 発展: Spark によるバッチ推論（ボーナス / bonus） | 2 / 4 |" in md
    assert "| ex01 Chat Completion API の基礎 | 2 / 3 |" in md


def test_grade_md_reads_a_report_without_bonus_fields(bonus_grade):
    data = to_json(bonus_grade)
    old = {k: v for k, v in data.items() if not k.startswith("bonus_")}
    old["exercises"] = {ex_id: {k: v for k, v in ex.items() if k != "bonus"} for ex_id, ex in data["exercises"].items()}
    md = to_markdown(read_grade(old))
    assert md.startswith("# 採点結果 / Grade report: 2 / 3\n") and "ボーナス" not in md


def test_classroom50_counts_the_core_and_lists_the_bonus_tests(bonus_grade):
    doc = result(file_of(bonus_grade), ENV)
    jsonschema.validate(doc, RESULT_SCHEMA)
    assert (doc["score"], doc["max-score"]) == (2, 3)
    bonus = {t["test-name"]: (t["score"], t["max-score"]) for t in doc["tests"] if t["test-name"].endswith(" (bonus)")}
    assert bonus == {"ex02_spark / ex02_spark_udf (bonus)": (2, 2), "ex02_spark / ex02_spark_stream (bonus)": (0, 2)}
    assert [t["test-name"] for t in doc["tests"]][:2] == ["ex01 / ex01_client", "ex01 / ex01_qa"]


def test_classroom50_full_marks_on_the_bonus_alone_stay_within_max_score():
    """A blank core with the bonus done: score 0 of the core's max-score, whatever the bonus points."""
    doc = result(file_of(grade_of(run_of(CORE, set()), run_of(BONUS, {"ex02_spark_udf", "ex02_spark_stream"}))), ENV)
    jsonschema.validate(doc, RESULT_SCHEMA)
    assert (doc["score"], doc["max-score"]) == (0, 3) and sum(t["score"] for t in doc["tests"]) == 4


def test_annotations_say_which_points_are_bonus_points(bonus_grade):
    titles = [line.split("::")[1] for line in annotations(file_of(bonus_grade))]
    assert titles == ["warning file=ex01/ex01.ipynb,title=ex01%3A 2/3",
                      "warning file=ex02_spark/ex02_spark.ipynb,title=ex02_spark%3A 2/4 (bonus)"]


def test_the_gradebook_csv_has_the_bonus_beside_the_total(bonus_grade, tmp_path):
    old = to_json(grade_of(run_of(CORE, {"ex01_client", "ex01_qa"})))
    for key in ("bonus_score", "bonus_max_score"):
        del old[key]  # a grade.json written before bonus exercises
    deadline = dt.datetime.fromisoformat(load_course().deadline)
    results = [StudentResult("s001", file_of(bonus_grade), None), StudentResult("s002", read_grade(old), None)]
    write_csv(results, tmp_path / "gradebook.csv", load_course(), deadline)
    rows = list(csv.DictReader(open(tmp_path / "gradebook.csv", encoding="utf-8")))
    totals = [[float(r[k]) for k in ("raw_score", "score", "max_score", "bonus_score", "bonus_max_score")] for r in rows]
    assert totals == [[2, 2, 3, 2, 4], [3, 3, 3, 0, 0]]
    assert [r["ex02_spark"] for r in rows] == ["2.0", ""]


def test_the_late_penalty_is_taken_from_the_core_total_only(bonus_grade):
    deadline = dt.datetime.fromisoformat(load_course().deadline)
    course = load_course()
    late = StudentResult("s001", file_of(bonus_grade), deadline + dt.timedelta(hours=1))  # one day late
    assert late.penalty(deadline, course) == round(2 * min(course.late_penalty_per_day, course.late_penalty_max), 2)


def test_the_dashboard_pages_show_the_bonus_as_its_own_figure(bonus_grade, tmp_path):
    from autograder.dashboard.render import write_pages

    course = load_course()
    deadline = dt.datetime.fromisoformat(course.deadline)
    results = [StudentResult("s001", file_of(bonus_grade), None),
               StudentResult("s002", file_of(grade_of(run_of(CORE, {"ex01_client", "ex01_qa"}))), None)]
    (tmp_path / "students").mkdir()  # as write_report makes it
    write_pages(results, [], [], tmp_path / "graded", tmp_path, course, deadline)
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "平均 / mean 2.50 / 3" in index and "ボーナス / bonus 平均 / mean 1.00 / 4" in index
    header = index.split('id="students"')[1].split("</thead>")[0]
    assert header.index("合計 / total") < header.index("ボーナス / bonus") < header.index("問題 / problems")
    student = (tmp_path / "students" / "s001.html").read_text(encoding="utf-8")
    assert "2 / 3" in student and "(+ ボーナス / bonus: 2 / 4)" in student


def test_the_dashboard_without_a_bonus_has_no_bonus_column(tmp_path):
    from autograder.dashboard.render import write_pages

    course = load_course()
    results = [StudentResult("s001", file_of(grade_of(run_of(CORE, {"ex01_qa"}))), None)]
    (tmp_path / "students").mkdir()  # as write_report makes it
    write_pages(results, [], [], tmp_path / "graded", tmp_path, course, dt.datetime.fromisoformat(course.deadline))
    assert "ボーナス" not in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "ボーナス" not in (tmp_path / "students" / "s001.html").read_text(encoding="utf-8")
