"""grade.json, grade.md and feedback as the Classroom reporter and TAs read them."""
import json

from coursegrader.grading.report import to_json

from test_release import secret_lines
from commands import autograder


def test_grade_json_schema(graded):
    _, grade, out = graded("solution")
    data = json.loads((out / "grade.json").read_text())
    assert data["schema_version"] == 1
    assert data["score"] == data["max_score"] == grade.max_score
    for ex_id, ex in data["exercises"].items():
        assert {"title", "score", "max_score", "status", "problems", "checks"} <= set(ex)
        assert ex["score"] == sum(c["score"] for c in ex["checks"])
        for c in ex["checks"]:
            assert {"id", "score", "max_score", "passed", "message"} <= set(c)
            assert c["id"].startswith(ex_id)
    assert "| ex01" in (out / "grade.md").read_text()


def test_feedback_html_hides_hidden_tests(graded):
    for name in ("solution", "blank_started"):  # the blank itself is not run (not started): no page
        _, grade, out = graded(name)
        for run in grade.runs:
            html = (out / run.exercise.id / "feedback.html").read_text()
            assert "BEGIN HIDDEN TESTS" not in html
            for line in secret_lines(run.exercise.id):
                if line.startswith("assert"):
                    assert line.replace('"', "&quot;") not in html and line not in html, line


def test_problems_are_in_both_languages_in_markdown(graded):
    _, _, out = graded("malformed_notebook")
    md = (out / "grade.md").read_text()
    assert "壊れた .ipynb" in md and "malformed .ipynb" in md


def test_grading_is_deterministic(graded, tmp_path):
    from autograder.official import grade_official
    from coursegrader.config import load_course

    sample, first, _ = graded("ex01_drops_history")
    again = grade_official(first.submission, sample.exercises, course=load_course())
    assert to_json(again) == to_json(first)


def test_cli_exit_codes(tmp_path):
    run = autograder
    typo = run("grade", str(tmp_path / "nobody"), "--exercise", "ex01", "--out", str(tmp_path / "out"))
    assert typo.returncode == 2 and "no such folder" in typo.stderr  # a mistyped path is not a 0
    (tmp_path / "empty").mkdir()
    missing = run("grade", str(tmp_path / "empty"), "--exercise", "ex01", "--out", str(tmp_path / "out"))
    assert missing.returncode == 0, missing.stderr  # grading completed, with a problem in the report
    assert json.loads((tmp_path / "out" / "grade.json").read_text())["exercises"]["ex01"]["problems"][0]["code"] == "notebook_missing"
    bad = run("grade", str(tmp_path), "--exercise", "ex99")
    assert bad.returncode == 2 and "ex99" in bad.stderr


def test_an_exercise_that_is_a_file_gets_its_own_code_and_the_rest_is_graded(tmp_path):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "ex01").write_text("a file where the folder should be")
    run = autograder("grade", tmp_path / "repo", "--exercise", "ex01", "--exercise", "ex02", "--out", tmp_path / "out")
    assert run.returncode == 0, run.stderr[-2000:]
    exercises = json.loads((tmp_path / "out" / "grade.json").read_text())["exercises"]
    assert [p["code"] for p in exercises["ex01"]["problems"]] == ["exercise_not_a_folder"]
    assert [p["code"] for p in exercises["ex02"]["problems"]] == ["notebook_missing"]
