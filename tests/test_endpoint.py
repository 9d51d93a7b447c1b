"""`python -m autograder endpoint NAME`: the course moves to another Foundation Model endpoint, and the solution
still grades full marks, end to end, in a copy of this checkout."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder.endpoint import EndpointError, relabel, switch_endpoint
from coursegrader.config import CASSETTE_DIR, COURSE_TOML, REPO_ROOT, SOURCE_DIR, load_course
from coursegrader.fmapi import matchers
from coursegrader.fmapi.persister import load_cassette
from commands import autograder

NEW = "databricks-llama-4-maverick"
API_EXERCISES = [e.id for e in load_course().exercises.values() if e.cassette]


def test_relabel_changes_the_requests_and_keeps_the_answers():
    old = load_course().chat_model
    cassette = load_cassette(CASSETTE_DIR / "ex06_llm_judge.json")
    answers = [i.responses for i in cassette.interactions]
    changed = relabel(cassette, old, NEW)
    assert changed == len(cassette.interactions) + len(cassette.scripted) > 0
    assert {i.request["body"]["model"] for i in cassette.interactions} == {NEW}
    assert [i.responses for i in cassette.interactions] == answers
    assert cassette.meta["relabelled"][-1]["from"] == old and cassette.meta["relabelled"][-1]["to"] == NEW
    judge = cassette.scripted[0]  # a scripted rule answers the new name only
    live = matchers.signature(judge.request["body"])
    assert judge.matches(live)
    assert not judge.matches({**live, "model": old})


@pytest.mark.parametrize("name, why", [("bad name!", "not a serving endpoint name"), ("x" * 64, "not a serving endpoint name"),
                                       (load_course().chat_model, "already uses")])
def test_a_switch_it_cannot_make_changes_nothing(tmp_path, name, why):
    before = {p: p.read_bytes() for p in (COURSE_TOML, *SOURCE_DIR.glob("*/*.ipynb"), *CASSETTE_DIR.glob("*.json"))}
    with pytest.raises(EndpointError, match=why):
        switch_endpoint(name, load_course(), course_toml=tmp_path / "course.toml", source_dir=tmp_path,
                        cassette_dir=tmp_path)
    assert before == {p: p.read_bytes() for p in before}


def _checkout_copy(dest: Path) -> Path:
    """This checkout's files as a fresh clone would have them (tracked, and new files not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = REPO_ROOT / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    return dest


def _autograder(copy: Path, *args, timeout=900):
    return autograder(*args, cwd=copy, timeout=timeout)


@pytest.fixture(scope="module")
def switched(tmp_path_factory):
    """A copy of the checkout moved to NEW; the solution and a notebook still naming the old endpoint, graded there."""
    tmp = tmp_path_factory.mktemp("endpoint")
    copy = _checkout_copy(tmp / "repo")
    run = _autograder(copy, "endpoint", NEW)
    assert run.returncode == 0, run.stderr[-3000:]
    build = ("from pathlib import Path; from autograder.samples import build_sample, load_catalog; "
             "from coursegrader.config import load_course; course = load_course(); "
             f"build_sample(load_catalog(course)['solution'], Path({str(tmp / 'solution')!r}), course)")
    subprocess.run([sys.executable, "-c", build], cwd=copy, check=True, timeout=300)
    # A student who began before the switch: the notebook still holds the old constant (a locked cell, which the
    # grader restores from the release), and one who typed the old name into their own code.
    variants = {"stale": ("MODEL_NAME = \\\"{new}\\\"", "MODEL_NAME = \\\"{old}\\\""),
                "hard_coded": ("model=MODEL_NAME, messages=messages", "model=\\\"{old}\\\", messages=messages")}
    for name, (before, after) in variants.items():
        shutil.copytree(tmp / "solution", tmp / name)
        nb = tmp / name / "ex01" / "ex01.ipynb"
        text = nb.read_text(encoding="utf-8")
        before, after = (t.format(new=NEW, old=load_course().chat_model) for t in (before, after))
        assert text.count(before) == 1, (name, before)
        nb.write_text(text.replace(before, after), encoding="utf-8")
    def grade(name, exercises):
        out = tmp / "graded" / f"{name}-{'-'.join(exercises)}"
        graded = _autograder(copy, "grade", str(tmp / name), "--out", str(out),
                             *[a for ex in exercises for a in ("--exercise", ex)])
        assert graded.returncode == 0, graded.stderr[-3000:]
        return name, json.loads((out / "grade.json").read_text(encoding="utf-8"))

    # The solution in two jobs of about the same length, so that both cores stay busy: ex06 (MLflow, the local
    # model) alone, beside the other API exercises; then the two ex01 variants where ex06 finished.
    rest = [e for e in API_EXERCISES if e != "ex06"]
    jobs = (("solution", ["ex06"]), ("solution", rest), ("stale", ["ex01"]), ("hard_coded", ["ex01"]))
    grades = {}
    with ThreadPoolExecutor(2) as pool:  # two at a time, as grade-all --jobs 2 grades students
        for name, grade_json in pool.map(lambda job: grade(*job), jobs):
            if name in grades:
                grades[name]["exercises"].update(grade_json["exercises"])
                for key in ("score", "max_score"):
                    grades[name][key] += grade_json[key]
            else:
                grades[name] = grade_json
    return {"copy": copy, "stdout": run.stdout, **grades}


def test_the_switch_reaches_course_toml_notebooks_cassettes_and_the_release(switched):
    copy, old = switched["copy"], load_course().chat_model
    assert f'chat_model = "{NEW}"' in (copy / "coursegrader" / "course.toml").read_text(encoding="utf-8")
    for ex in API_EXERCISES:
        for folder in ("source", "release"):
            text = (copy / folder / ex / f"{ex}.ipynb").read_text(encoding="utf-8")
            assert text.count(f'\\"{NEW}\\"') == 1 and old not in text, (folder, ex)
    shipped = (copy / "release" / ".grader" / "coursegrader" / "course.toml").read_text(encoding="utf-8")
    assert f'chat_model = "{NEW}"' in shipped  # the preflight cell asks the new endpoint
    for path in (copy / "fixtures" / "fmapi").glob("ex*.json"):
        cassette = load_cassette(path)
        assert {i.request["body"]["model"] for i in [*cassette.interactions, *cassette.scripted]} == {NEW}
    assert "re-labelled" in switched["stdout"]


def test_the_solution_grades_full_marks_with_the_new_endpoint(switched):
    grade = switched["solution"]
    failed = {ex: [c["id"] for c in e["checks"] if not c["passed"]] for ex, e in grade["exercises"].items()}
    assert grade["score"] == grade["max_score"] > 0, failed
    assert sorted(grade["exercises"]) == sorted(API_EXERCISES)


def test_a_notebook_begun_before_the_switch_grades_as_the_release_says(switched):
    """The constant sits in a locked cell, restored from the release: starting early costs nothing."""
    ex01 = switched["stale"]["exercises"]["ex01"]
    assert ex01["score"] == ex01["max_score"], [c["id"] for c in ex01["checks"] if not c["passed"]]


def test_code_that_names_the_old_endpoint_itself_loses_the_points_of_those_requests(switched):
    ex01 = switched["hard_coded"]["exercises"]["ex01"]
    failed = {c["id"]: c["message"] for c in ex01["checks"] if not c["passed"]}
    assert sorted(failed) == ["ex01_qa", "ex01_system_prompt", "ex01_temperature"], failed
