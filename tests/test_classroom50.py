"""Classroom 50: the bundle `release --classroom50` writes, and its autograder run the way Classroom
50's runner runs it (the student's checkout as working directory, no arguments, its environment);
result.json validates against the vendored result-v1 schema."""
import json
import shutil
import subprocess
import sys
import time

import jsonschema
import pytest

from autograder.samples import build_sample, load_catalog
from autograder.template_repo import write_classroom50_bundle
from coursegrader.config import FIXTURES_DIR, RELEASE_DIR, load_course
from coursegrader.export.classroom50 import result, whole
from coursegrader.grade_file import read_grade

SCHEMA = json.loads((FIXTURES_DIR / "classroom50" / "result-v1.schema.json").read_text())
COURSE = load_course()
ASSIGNMENT = COURSE.classroom50["assignment"]
RUNNER_ENV = {"CLASSROOM": "llm-2026", "ASSIGNMENT": ASSIGNMENT, "ASSIGNMENT_TYPE": "individual",
              "USERNAME": "octo-student", "OWNER": "octo-student", "MODE": "individual",
              "SUBMISSION_TAG": "submit/2026-12-18T10-00-00Z-abc1234",
              "COMMIT_URL": "https://github.com/org/llm-2026-llm-handson-octo-student/commit/abc1234",
              "RELEASE_URL": "https://github.com/org/llm-2026-llm-handson-octo-student/releases/tag/submit/x",
              "REVIEW_URL": "https://github.com/org/llm-2026-llm-handson-octo-student/compare/a...b"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("c50") / "bundle"
    write_classroom50_bundle(RELEASE_DIR, out, COURSE)
    return out


def test_the_bundle_has_a_template_without_workflows_and_one_autograder(bundle):
    template = bundle / "template"
    assert not (template / ".github").exists()  # Classroom 50 installs its own autograde.yaml
    assert (template / ".grader" / "coursegrader").is_dir() and (template / "requirements.txt").is_file()
    assert sorted(p.relative_to(bundle).as_posix() for p in (bundle / "config").rglob("*") if p.is_file()) == [
        f"config/autograders/{ASSIGNMENT}/autograder.py"]
    text = (bundle / "config" / "autograders" / ASSIGNMENT / "autograder.py").read_text()
    assert "{title}" not in text and load_course().classroom50["python"] in text


def test_the_bundle_has_the_image_that_caches_the_environment(bundle):
    """The Dockerfile installs exactly the template's pins on the runtime's Python, so the autograder's install finds
    them satisfied."""
    dockerfile = (bundle / "image" / "Dockerfile").read_text()
    assert (bundle / "image" / "requirements.txt").read_bytes() == (RELEASE_DIR / "requirements.txt").read_bytes()
    lines = [line for line in dockerfile.splitlines() if line and not line.startswith("#")]
    assert lines[0] == f"FROM python:{load_course().classroom50['python']}-slim-bookworm"
    assert "COPY requirements.txt /tmp/requirements.txt" in lines
    assert "-r /tmp/requirements.txt" in dockerfile and "{" not in dockerfile


# The assignment types the runner accepts (runner.py at 0c49903, validate_result: "individual"/"group"/"team").
# The newest published schema we could vendor (6e593c79) lists only the first two; see fixtures/classroom50/README.md.
RUNNER_ASSIGNMENT_TYPES = ("individual", "group", "team")


def runner_schema() -> dict:
    """The vendored schema, with assignment_type as the runner checks it."""
    schema = json.loads(json.dumps(SCHEMA))
    schema["properties"]["assignment_type"]["enum"] = list(RUNNER_ASSIGNMENT_TYPES)
    return schema


@pytest.mark.parametrize("mode", RUNNER_ASSIGNMENT_TYPES)
def test_every_mode_the_runner_sets_is_written_and_valid(mode):
    assert set(SCHEMA["properties"]["assignment_type"]["enum"]) <= set(RUNNER_ASSIGNMENT_TYPES)
    grade = read_grade({
        "schema_version": 1, "grader_version": "0", "submission": "s", "tier": "feedback", "sandbox": False,
        "score": 1, "max_score": 1, "exercises": {"ex01": {
            "title": "t", "score": 1, "max_score": 1, "status": "graded", "problems": [],
            "checks": [{"id": "ex01_qa", "passed": True, "score": 1, "max_score": 1, "message": "正解です。",
                        "test": {"passed": True, "error": None}, "evidence": []}]}}})
    doc = result(grade, {**RUNNER_ENV, "MODE": mode, "ASSIGNMENT_TYPE": ""})
    assert doc["assignment_type"] == mode
    jsonschema.validate(doc, runner_schema())
    if mode in SCHEMA["properties"]["assignment_type"]["enum"]:
        jsonschema.validate(doc, SCHEMA)


def test_scores_are_whole_points_and_the_schema_holds_for_any_grade(graded):
    data = json.loads((graded("ex01_drops_history")[2] / "grade.json").read_text())
    doc = result(read_grade(data), RUNNER_ENV)
    jsonschema.validate(doc, SCHEMA)
    assert (doc["score"], doc["max-score"]) == (8, 10)  # partial credit kept as the sum of its checks
    assert {t["passed"] for t in doc["tests"]} == {True, False}
    with pytest.raises(ValueError):
        whole(2.5)


@pytest.mark.slow
def test_the_autograder_runs_as_classroom50s_runner_runs_it(bundle, tmp_path):
    checkout = tmp_path / "llm-2026-llm-handson-octo-student"
    shutil.copytree(bundle / "template", checkout)
    built = build_sample(load_catalog(COURSE)["solution"], tmp_path / "sample", COURSE)
    shutil.copytree(built / "ex01", checkout / "ex01", dirs_exist_ok=True)  # the wrapper on ex01; the rest blank
    entry = bundle / "config" / "autograders" / ASSIGNMENT / "autograder.py"
    outputs = tmp_path / "github_output"
    outputs.write_text("head-sha=abc1234\n")  # the runner writes its own outputs first
    env = {"PATH": f"{sys.executable.rsplit('/', 1)[0]}:/usr/bin:/bin", "HOME": str(tmp_path / "home"),
           "GITHUB_OUTPUT": str(outputs), **RUNNER_ENV}
    start = time.perf_counter()
    run = subprocess.run([sys.executable, str(entry)], cwd=checkout, env=env, capture_output=True, text=True,
                         timeout=15 * 60)  # Classroom 50's grade job limit
    elapsed = time.perf_counter() - start
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    doc = json.loads((checkout / "result.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert (doc["score"], doc["max-score"]) == (10, 66)
    assert (doc["classroom"], doc["assignment"], doc["owner"]) == ("llm-2026", ASSIGNMENT, "octo-student")
    assert doc["submission"] == RUNNER_ENV["SUBMISSION_TAG"] and doc["commit"] == RUNNER_ENV["COMMIT_URL"]
    assert "途中経過" in (checkout / "release-body.md").read_text()
    # status= present: the runner keeps it (it derives "failure" below full marks only when none is written)
    lines = outputs.read_text().splitlines()
    assert lines[0] == "head-sha=abc1234" and "status=success" in lines
    assert [line for line in lines if line.startswith("summary=")] == [
        "summary=10/66 (preview: visible tests only; the official grade comes later)"]
    print(f"classroom50 autograder on the solution: {elapsed:.0f} s")
