"""GitHub annotations and the TA report, from real graded samples."""
import csv
import datetime as dt
import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from coursegrader.config import REPO_ROOT, load_course
from coursegrader.export.github import annotations
from coursegrader.grade_file import read_grade
from autograder.dashboard.report import copy_with_csp, write_report
from coursegrader.grading.report import CSP_META, csp_comes_first, with_csp
from commands import coursegrader

CLASS_SAMPLES = ["solution", "blank", "ex01_drops_history", "ex02_ge_constraint", "malformed_notebook", "kernel_dies"]


def test_annotations_list_each_lost_point_once_per_exercise(graded):
    data = json.loads((graded("ex01_drops_history")[2] / "grade.json").read_text())
    lines = annotations(read_grade(data))
    lost = [c for c in data["exercises"]["ex01"]["checks"] if c["score"] < c["max_score"]]
    assert lost and len(lines) == 1 + len(data["exercises"]["ex01"]["problems"])
    (warning,) = [line for line in lines if line.startswith("::warning")]
    assert warning.startswith("::warning file=ex01/ex01.ipynb,title=ex01%3A 8/10::")
    assert all(f"{c['id']} -{c['max_score'] - c['score']:g}: " in warning for c in lost)
    assert annotations(read_grade(graded("solution")[2] / "grade.json")) == []


def test_annotations_escape_what_workflow_commands_reserve():
    grade = read_grade({
        "schema_version": 1, "grader_version": "0", "submission": "s", "tier": "official", "sandbox": True,
        "score": 0, "max_score": 1, "exercises": {"ex01": {
            "title": "t", "score": 0, "max_score": 1, "status": "error",
            "problems": [{"code": "x", "message_ja": "100%\n次", "message_en": "a, b: c", "fatal": True}],
            "checks": [{"id": "ex01_qa", "score": 0, "max_score": 1, "passed": False, "message": "50%\r\nok",
                        "test": {"passed": False, "error": None}, "evidence": []}]}}})
    assert annotations(grade) == [
        "::error file=ex01/ex01.ipynb,title=ex01%3A x::100%25%0A次 / a, b: c",
        "::warning file=ex01/ex01.ipynb,title=ex01%3A 0/1::ex01_qa -1: 50%25%0D%0Aok"]


def test_annotate_cli_prints_workflow_commands(graded):
    out = graded("ex01_drops_history")[2]
    run = coursegrader("annotate", str(out / "grade.json"), env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("::warning file=ex01/ex01.ipynb,title=ex01%3A 8/10::")


@pytest.fixture(scope="module")
def class_report(graded, tmp_path_factory):
    """300 students built from the graded samples; every tenth committed two days late."""
    root = tmp_path_factory.mktemp("class")
    graded_dir, deadline = root / "graded", dt.datetime.fromisoformat(load_course().deadline)
    for i in range(300):
        sid = f"s{i:03d}"
        shutil.copytree(graded(CLASS_SAMPLES[i % len(CLASS_SAMPLES)])[2], graded_dir / sid)
        late = i % 10 == 0
        at = deadline + (dt.timedelta(days=1, hours=3) if late else -dt.timedelta(hours=1))
        (graded_dir / sid / "submission.json").write_text(json.dumps({"committed_at": at.isoformat(), "commit": "abc"}))
    (graded_dir / "broken").mkdir()
    (graded_dir / "broken" / "grade.json").write_text("{not json")
    summary = write_report(graded_dir, root / "report", None, load_course())
    return root / "report", summary


def test_gradebook_csv(class_report):
    out, summary = class_report
    assert {k: summary[k] for k in ("students", "skipped", "late")} == {
        "students": 300, "skipped": ["broken: JSONDecodeError"], "late": 30}
    assert summary["accounted"]["broken"] == "unreadable" and summary["accounted"]["s000"] == "graded"
    rows = list(csv.DictReader(open(out / "gradebook.csv", encoding="utf-8")))
    assert len(rows) == 300
    assert {"assignment", "duedate", "timestamp", "student_id", "raw_score", "late_submission_penalty", "score",
            "max_score", "ex01", "ex05", "ex01_multi_turn", "ex05_gozaru"} <= set(rows[0])
    first = rows[0]  # s000: the solution, two started days late -> 20 %
    assert first["student_id"] == "s000" and float(first["raw_score"]) == float(first["max_score"])
    assert float(first["late_submission_penalty"]) == pytest.approx(0.2 * float(first["raw_score"]))
    drops = rows[2]  # s002: ex01_drops_history, on time
    assert drops["ex01_multi_turn"] == "0.0" and drops["ex01"] == "8.0" and drops["late_submission_penalty"] == "0.0"


def test_dashboard_pages(class_report):
    out, _ = class_report
    index = (out / "index.html").read_text()
    assert index.split('id="students"')[1].count('<tr><td><a href="students/') == 300
    assert index.split("遅延提出")[1].split("学生一覧")[0].count("<tr><td>") == 30
    assert "ex01_multi_turn" in index and "遅延提出" in index and "<svg" in index
    student = (out / "students" / "s002.html").read_text()
    assert "ex01_multi_turn" in student and "ex01_multi_turn_impl" in student  # why the point was lost
    assert (out / "students" / "s002" / "ex01" / "feedback.html").exists()


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Debian's chromium is needed for the dashboard test (.ci/run installs it)")
    return path


def run_chromium(*args, tmp) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp}", *args], capture_output=True, text=True, timeout=120)


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_dashboard_renders_in_chromium(class_report, tmp_path):
    out, _ = class_report
    shot = tmp_path / "dashboard.png"
    run = run_chromium(f"--screenshot={shot}", "--window-size=1400,1600", "--hide-scrollbars",
                       (out / "index.html").as_uri(), tmp=tmp_path / "profile")
    assert shot.exists(), run.stderr[-2000:]
    width, height, raw = png_pixels(shot)
    assert (width, height) == (1400, 1600)
    # not a blank page: many distinct byte values, and dark (text) as well as light pixels
    assert len(set(raw[::7])) > 50 and min(raw) < 60 and max(raw) > 200


def test_dashboard_sorts_in_chromium(class_report, tmp_path):
    out, _ = class_report
    exercises = [e for e in load_course().exercises if (REPO_ROOT / "source" / e).is_dir()]
    total_column = 1 + len(exercises) + 1  # student, one column per exercise, penalty, then total
    run = run_chromium("--dump-dom", "--virtual-time-budget=3000", (out / "index.html").as_uri() + f"#sort={total_column}",
                       tmp=tmp_path / "profile")
    table = run.stdout.split('id="students"')[1]
    totals = [float(v) for v in re.findall(r'data-value="([\d.]+)"', table)]
    assert len(totals) == 300 and totals == sorted(totals) and totals[0] < totals[-1]


@pytest.mark.parametrize("page, copied_as_is", [
    (f"<html><head>{CSP_META}<title>t</title></head><body>x</body></html>", True),  # as grade writes it
    ("<html><head><title>t</title></head><body>x</body></html>", False),
    (f"<html><head><title>t</title></head><body><p>{CSP_META}</p></body></html>", False),  # not in force there
    (f"<html><header>{CSP_META}</header><body>x</body></html>", False),  # a <header> is no <head>
])
def test_a_feedback_page_reaches_the_dashboard_with_its_policy_first(tmp_path, page, copied_as_is):
    source, dest = tmp_path / "feedback.html", tmp_path / "students" / "s1" / "ex01" / "feedback.html"
    source.write_text(page, encoding="utf-8")
    copy_with_csp(source, dest)
    copied = dest.read_text(encoding="utf-8")
    assert csp_comes_first(copied) or copied.startswith(f"<head>{CSP_META}</head>")
    assert (copied == page) is copied_as_is
    assert with_csp(copied) == copied  # idempotent
