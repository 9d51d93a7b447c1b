"""collect and grade-all against local bare git repositories standing in for GitHub."""
import datetime as dt
import json
import os
import shutil
import subprocess
import sys

import pytest

from autograder.collect import _auth_header, collect
from coursegrader.config import REPO_ROOT, load_course
from autograder.dashboard.report import write_report
from autograder.batch import grade_all
from autograder.samples import build_sample, load_catalog
from commands import autograder

COURSE = load_course()
DEADLINE = dt.datetime.fromisoformat(COURSE.deadline)


def commit(work, bare, sample_dir, when: dt.datetime, message: str):
    subprocess.run(["rm", "-rf", *[str(p) for p in work.iterdir() if p.name != ".git"]], check=True)
    subprocess.run(["cp", "-r", f"{sample_dir}/.", str(work)], check=True)
    env = {**os.environ, "GIT_AUTHOR_DATE": when.isoformat(), "GIT_COMMITTER_DATE": when.isoformat(),
           "GIT_AUTHOR_NAME": "s", "GIT_AUTHOR_EMAIL": "s@example.com", "GIT_COMMITTER_NAME": "s",
           "GIT_COMMITTER_EMAIL": "s@example.com"}
    for cmd in (["add", "-A"], ["commit", "-q", "-m", message], ["push", "-q", str(bare), "HEAD:main"]):
        subprocess.run(["git", *cmd], cwd=work, env=env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    root = tmp_path_factory.mktemp("classroom")
    catalog = load_catalog(COURSE)
    samples = {n: build_sample(catalog[n], root / "samples" / n, COURSE)
               for n in ("solution", "blank", "ex01_drops_history")}
    plan = {  # student -> [(sample, commit time)]
        "alice": [("ex01_drops_history", DEADLINE - dt.timedelta(days=2)), ("solution", DEADLINE - dt.timedelta(hours=1)),
                  ("blank", DEADLINE + dt.timedelta(hours=1))],
        "bob": [("solution", DEADLINE + dt.timedelta(hours=20))],
        "carol": [("ex01_drops_history", DEADLINE - dt.timedelta(days=1))],
    }
    rows = ["student_id,github_username,repository"]
    for student, commits in plan.items():
        bare, work = root / "remote" / f"{student}.git", root / "work" / student
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
        for sample, when in commits:
            commit(work, bare, samples[sample], when, sample)
        rows.append(f"{student},{student}-gh,{bare}")
    rows.append(f"dave,dave-gh,{root / 'remote' / 'missing.git'}")
    (root / "roster.csv").write_text("\n".join(rows) + "\n")
    return root


def test_collect_takes_the_last_commit_before_the_deadline(classroom):
    collected = {c.student_id: c for c in collect(classroom / "roster.csv", DEADLINE, classroom / "subs")}
    assert collected["alice"].status == "ok"
    assert dt.datetime.fromisoformat(collected["alice"].committed_at) == DEADLINE - dt.timedelta(hours=1)
    assert collected["bob"].status == "no_commit_before_deadline"
    assert collected["carol"].status == "ok" and collected["dave"].status == "clone_failed"
    assert not (classroom / "subs" / "alice" / ".git").exists()
    assert json.loads((classroom / "subs" / "bob" / "submission.json").read_text())["status"] == "no_commit_before_deadline"


def test_grace_period_collects_late_work(classroom):
    collected = {c.student_id: c for c in collect(classroom / "roster.csv", DEADLINE, classroom / "late", grace_days=2)}
    assert collected["bob"].status == "ok"
    assert dt.datetime.fromisoformat(collected["bob"].committed_at) > DEADLINE
    # alice's blank commit after the deadline is now the last one inside the grace period
    assert dt.datetime.fromisoformat(collected["alice"].committed_at) == DEADLINE + dt.timedelta(hours=1)


@pytest.mark.slow
def test_grade_all_in_parallel_is_idempotent_and_feeds_the_report(classroom):
    subs, graded = classroom / "subs2", classroom / "graded"
    collect(classroom / "roster.csv", DEADLINE, subs, grace_days=2)
    codes = grade_all(subs, graded, COURSE, jobs=2, exercises=["ex01"])
    assert codes == {"alice": 0, "bob": 0, "carol": 0, "dave": 0}
    assert not (graded / "dave" / "grade.json").exists()  # dave's clone failed: nothing to grade, no zeros
    scores = {s: json.loads((graded / s / "grade.json").read_text())["score"] for s in ("alice", "bob", "carol")}
    assert scores == {"alice": 0.0, "bob": 10.0, "carol": 8.0}
    before = sorted(p.relative_to(graded) for p in graded.rglob("*") if p.name != "grader.log")
    grade_all(subs, graded, COURSE, jobs=2, exercises=["ex01"])  # regrade: replaces, never duplicates
    assert sorted(p.relative_to(graded) for p in graded.rglob("*") if p.name != "grader.log") == before
    summary = write_report(graded, classroom / "report", None, COURSE)
    assert summary["students"] == 3 and summary["late"] == 2  # alice (blank, 1 h late) and bob (20 h late)
    assert summary["accounted"]["dave"] == "not_collected"


def test_token_is_only_a_clone_header(monkeypatch, classroom):
    monkeypatch.setenv("COLLECT_TOKEN", "ghp_secret123")
    assert any("Authorization: Basic" in a for a in _auth_header("https://github.com/org/repo"))
    assert _auth_header(str(classroom / "remote" / "alice.git")) == []
    collect(classroom / "roster.csv", DEADLINE, classroom / "subs3")
    assert not [p for p in (classroom / "subs3").rglob("*") if p.is_file() and "ghp_secret123" in p.read_text(errors="ignore")]


def test_collect_cli_rejects_a_bad_roster(tmp_path):
    (tmp_path / "roster.csv").write_text("name,repo\nx,y\n")
    run = autograder("collect", "--roster", str(tmp_path / "roster.csv"),
                          "--dest", str(tmp_path / "d"))
    assert run.returncode == 2 and "student_id" in run.stderr


def _cli(*args, env=None):
    run = autograder(*args, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


@pytest.mark.slow
def test_sharded_grading_merges_into_one_nbgrader_gradebook(classroom, tmp_path):
    """The official workflow's commands: shards -> grade-all --shard K/N per job -> merge -> report."""
    from nbgrader.api import Gradebook, Grade

    subs = tmp_path / "subs"
    collect(classroom / "roster.csv", DEADLINE, subs, grace_days=2)
    shards = json.loads(_cli("shards", str(subs), "--count", "3"))
    assert shards == [0, 1, 2]
    assert json.loads(_cli("shards", str(subs), "--count", "50")) == [0, 1, 2, 3]  # never more jobs than students
    # the matrix jobs run at once, each writing its own folder; download-artifact puts them side by side
    jobs = [subprocess.Popen([sys.executable, "-m", "autograder", "grade-all", str(subs), "--out",
                              str(tmp_path / "shards" / f"graded-{k}"), "--jobs", "1", "--profile", "auto",
                              "--exercise", "ex01", "--shard", f"{k}/{len(shards)}"],
                             cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for k in shards]
    for job in jobs:
        out, _ = job.communicate(timeout=600)
        assert job.returncode == 0, out
    # a shard that wrote another shard's student (alice is shard 0's) contributes nothing for them
    forged = tmp_path / "shards" / "graded-2" / "alice"
    shutil.copytree(tmp_path / "shards" / "graded-1" / "bob", forged)
    graded = tmp_path / "graded"
    merged = _cli("merge", str(tmp_path / "shards"), "--submissions", str(subs), "--count", str(len(shards)),
                  "--out", str(graded))
    assert "left out (not that shard's student): graded-2/alice" in merged
    assert sorted(p.name for p in graded.iterdir()) == ["alice", "bob", "carol", "dave"]
    _cli("report", str(graded), "--out", str(tmp_path / "report"))
    _cli("report", str(graded), "--out", str(tmp_path / "report"))  # regrade/re-export: replaces, never duplicates
    with Gradebook(f"sqlite:///{tmp_path / 'report' / 'gradebook.db'}") as gb:
        scores = {s.id: gb.find_submission("ex01", s.id).score for s in gb.students}
        assert scores == {"alice": 0.0, "bob": 10.0, "carol": 8.0}  # dave was not collected: no row of zeros
        assert gb.db.query(Grade).count() == 3 * len(COURSE.exercises["ex01"].cells)
        assert gb.find_assignment("ex01").duedate is not None


def test_grade_all_rejects_a_bad_shard(tmp_path):
    run = autograder("grade-all", str(tmp_path), "--shard", "3/2")
    assert run.returncode == 2 and "--shard 3/2" in run.stderr


def test_collect_drops_links_and_says_so(tmp_path):
    """A committed symlink (git stores them) never reaches the grader as a link."""
    sample = build_sample(load_catalog(COURSE)["solution"], tmp_path / "sample", COURSE)
    (sample / "ex02" / "ex02.ipynb").unlink()
    (sample / "ex02" / "ex02.ipynb").symlink_to("../../../source/ex02/ex02.ipynb")
    (sample / "everything").symlink_to("/", target_is_directory=True)
    bare, work = tmp_path / "erin.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    commit(work, bare, sample, DEADLINE - dt.timedelta(days=1), "links")
    (tmp_path / "roster.csv").write_text(f"student_id,github_username,repository\nerin,erin-gh,{bare}\n")
    [collected] = collect(tmp_path / "roster.csv", DEADLINE, tmp_path / "subs")
    target = tmp_path / "subs" / "erin"
    assert collected.status == "ok"
    assert sorted(collected.dropped) == ["everything (symlink)", "ex02/ex02.ipynb (symlink)"]
    assert not (target / "everything").exists() and not (target / "ex02" / "ex02.ipynb").exists()
    assert (target / "ex01" / "ex01.ipynb").is_file()
    assert json.loads((target / "submission.json").read_text())["dropped"] == collected.dropped
