"""grade-all loses nobody: a student whose grading fails is recorded as grade_failed and the others
are still graded; progress is reported as each finishes; report --roster accounts for every student."""
import csv
import json
import shutil

import pytest

from autograder.batch import GRADE_FAILED_FILE, grade_one, grade_students
from autograder.collect import roster_ids
from autograder.dashboard.report import write_report
from autograder.samples import build_sample, load_catalog
from coursegrader.config import load_course

COURSE = load_course()


def test_a_vanished_submission_is_recorded_as_grade_failed_not_zero(tmp_path):
    name, code = grade_one(tmp_path / "gone", tmp_path / "out" / "gone", COURSE, ["ex01"])
    assert (name, code) == ("gone", 2)
    assert not (tmp_path / "out" / "gone" / "grade.json").exists()
    failed = json.loads((tmp_path / "out" / "gone" / GRADE_FAILED_FILE).read_text(encoding="utf-8"))
    assert failed["status"] == "grade_failed" and failed["exit_status"] == 2 and "no such folder" in failed["reason"]


def test_roster_ids_read_collect_and_classroom50_rosters(tmp_path):
    (tmp_path / "ours.csv").write_text("student_id,github_username,repository\ns1,u1,r1\ns2,u2,r2\n")
    with open(tmp_path / "c50.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["username", "first_name", "last_name", "email", "section", "github_id", "role"])
        writer.writerow(["octo-student", "Taro", "Yamada", "t@example.ac.jp", "A", "101", "student"])
        writer.writerow(["octo-ta", "Hanako", "Sato", "h@example.ac.jp", "A", "102", "teacher"])
    assert roster_ids(tmp_path / "ours.csv") == ["s1", "s2"]
    assert roster_ids(tmp_path / "c50.csv") == ["octo-student"]
    (tmp_path / "bad.csv").write_text("name\nx\n")
    with pytest.raises(ValueError, match="student_id or a username"):
        roster_ids(tmp_path / "bad.csv")


@pytest.mark.slow
def test_one_failure_loses_nobody_else_and_the_roster_accounts_for_everyone(tmp_path):
    catalog = load_catalog(COURSE)
    subs = tmp_path / "subs"
    students = [build_sample(catalog["blank"], subs / "alice", COURSE), subs / "carol",  # carol's folder vanished
                build_sample(catalog["solution"], subs / "bob", COURSE)]
    progress = []
    codes = grade_students(students, tmp_path / "graded", COURSE, jobs=2, exercises=["ex01"], on_graded=progress.append)
    assert codes == {"alice": 0, "bob": 0, "carol": 2}
    assert sorted(p.done for p in progress) == [1, 2, 3] and {p.total for p in progress} == {3}
    assert all(p.elapsed_s > 0 and p.eta_s >= 0 for p in progress) and progress[-1].eta_s == 0
    assert json.loads((tmp_path / "graded" / "bob" / "grade.json").read_text())["score"] == 10

    # erin: collect found nothing to grade (not graded, no zeros); frank: graded but not on the roster
    erin = subs / "erin"
    erin.mkdir()
    (erin / "submission.json").write_text(json.dumps({"student_id": "erin", "status": "clone_failed"}))
    assert grade_one(erin, tmp_path / "graded" / "erin", COURSE, ["ex01"]) == ("erin", 0)
    assert not (tmp_path / "graded" / "erin" / "grade.json").exists()
    shutil.copytree(tmp_path / "graded" / "bob", tmp_path / "graded" / "frank")

    (tmp_path / "roster.csv").write_text("student_id,github_username,repository\n"
                                         "alice,a,x\nbob,b,x\ncarol,c,x\ndave,d,x\nerin,e,x\n")
    summary = write_report(tmp_path / "graded", tmp_path / "report", tmp_path / "roster.csv", COURSE)
    assert summary["students"] == 3 and summary["skipped"] == []
    assert summary["accounted"] == {"alice": "graded", "bob": "graded", "carol": "grade_failed", "dave": "missing",
                                    "erin": "not_collected", "frank": "not_on_roster"}
    assert "erin" not in (tmp_path / "report" / "gradebook.csv").read_text()  # no zero for what was never collected
    index = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "grade_failed" in index and "missing" in index and "no such folder" in index


@pytest.mark.slow
def test_a_hostile_student_graded_beside_another_changes_nothing_of_the_others_grade(tmp_path):
    """`grade-all --jobs 2`: mallory's work folder holds a store that is not SQLite and folders nested past
    PATH_MAX (once: exit 1, no grade.json, the grader's temporary folder left behind); bob keeps his exact grade."""
    from coursegrader.config import SUBMISSIONS_DIR

    hostile = load_catalog(COURSE, SUBMISSIONS_DIR / "adversarial.toml")["hostile_work_folder"]
    subs = tmp_path / "subs"
    students = [build_sample(hostile, subs / "mallory", COURSE),
                build_sample(load_catalog(COURSE)["ex01_drops_history"], subs / "bob", COURSE)]
    assert grade_students(students, tmp_path / "graded", COURSE, jobs=2, exercises=["ex01"]) == {"mallory": 0, "bob": 0}
    grades = {s: json.loads((tmp_path / "graded" / s / "grade.json").read_text()) for s in ("mallory", "bob")}
    assert grades["bob"]["score"] == 8 and grades["mallory"]["score"] == 0
    assert {p["code"] for p in grades["mallory"]["exercises"]["ex01"]["problems"]} == set(hostile.expect_problems["ex01"])
