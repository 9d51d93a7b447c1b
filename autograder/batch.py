"""grade-all: every collected submission, in parallel worker processes.

Each student is graded by its own `python -m autograder grade` process (nothing one
submission does can reach another's grading). Regrading replaces a student's results.
A student whose grading failed (the grader's failure, not the student's) gets GRADE_FAILED_FILE
instead of a grade.json, and the others are still graded.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from coursegrader.config import REPO_ROOT, Course
from coursegrader.grading.untrusted import remove_unsafe
from coursegrader.protocol import ChildResult, ExitCode
from coursegrader.statuses import CollectStatus

GRADE_FAILED_FILE = "grade_failed.json"
GRADER_CRASHED = -1  # exit status recorded when grade_one itself raised


@dataclass
class Progress:
    done: int
    total: int
    student: str
    exit_status: int
    elapsed_s: float

    @property
    def eta_s(self) -> float:
        return self.elapsed_s / self.done * (self.total - self.done)


def collected_status(submission: Path) -> str:
    """collect's status for this folder ("ok" when collect did not write one: a folder made by hand)."""
    try:
        meta = json.loads((Path(submission) / "submission.json").read_text(encoding="utf-8"))
        return meta.get("status", CollectStatus.OK)
    except (OSError, ValueError, AttributeError):
        return CollectStatus.OK


def grade_one(submission: Path, out: Path, course: Course, exercises=None, profile: str | None = None,
              cell_timeout_s: int | None = None, sandbox: bool = True) -> tuple[str, int]:
    """Grade one student's folder into out. A folder collect found nothing for (not_collected) is not
    graded: it gets its submission.json and no grade.json, so no zeros reach the gradebook."""
    shutil.rmtree(out, ignore_errors=True)
    if not Path(submission).is_dir():  # it vanished since it was listed: nothing to run `grade` on
        _record_failure(out, ExitCode.USAGE, f"no such folder: {submission}")
        return submission.name, ExitCode.USAGE
    if collected_status(submission) != CollectStatus.OK:
        out.mkdir(parents=True)
        shutil.copy(submission / "submission.json", out / "submission.json")
        return submission.name, 0
    said_file = Path(tempfile.mkdtemp(prefix="grade-one-")) / "result.json"
    cmd = [sys.executable, "-m", "autograder", "grade", str(submission), "--out", str(out),
           "--result-file", str(said_file)]
    if not sandbox:
        cmd.append("--no-sandbox")
    for ex in exercises or []:
        cmd += ["--exercise", ex]
    if profile:
        cmd += ["--profile", profile]
    if cell_timeout_s:
        cmd += ["--cell-timeout", str(cell_timeout_s)]
    limit = student_timeout_s(course, exercises)
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: on timeout, all of it goes
    try:
        stdout, stderr = proc.communicate(timeout=limit)
        reason = None
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        reason = f"grading_timeout: this student's grading took over {limit} s and was stopped"
    out.mkdir(parents=True, exist_ok=True)
    if (submission / "submission.json").exists():
        shutil.copy(submission / "submission.json", out / "submission.json")
    (out / "grader.log").write_text(stdout + stderr, encoding="utf-8")
    said = ChildResult.read(said_file)
    shutil.rmtree(said_file.parent, ignore_errors=True)
    if reason or proc.returncode != 0 or not (out / "grade.json").is_file():
        _record_failure(out, proc.returncode, reason or (said.reason if said else _said_nothing(proc.returncode)))
    return submission.name, proc.returncode


def student_timeout_s(course: Course, exercises=None) -> int:
    """How long one student's `grade` may take: each exercise's own limit, and the grader's start on top."""
    return (len(exercises or course.exercises) * course.exercise_timeout_s) + course.kernel_start_timeout_s


def _record_failure(out: Path, exit_status: int, reason: str) -> None:
    """No grade.json (so no zeros the student did not earn), and why."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "grade.json").unlink(missing_ok=True)
    (out / GRADE_FAILED_FILE).write_text(json.dumps(
        {"status": "grade_failed", "exit_status": exit_status, "reason": reason}, ensure_ascii=False, indent=1) + "\n",
        encoding="utf-8")


def _said_nothing(exit_status: int) -> str:
    return f"grader_error: the grading process ended with exit status {exit_status} and gave no reason (see grader.log)"


def student_folders(root: Path) -> list[Path]:
    """The student folders in root (collected submissions or graded ones), sorted: every folder but hidden ones
    and `_`-prefixed ones (such as report's _report)."""
    return sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def students_in(submissions: Path, shard: tuple[int, int] = (0, 1)) -> list[Path]:
    """The collected students, sorted; shard (K, N) keeps every N-th from the K-th."""
    index, count = shard
    return student_folders(submissions)[index::count]


def grade_all(submissions: Path, out: Path, course: Course, jobs: int = 2, exercises=None, profile: str | None = None,
              shard: tuple[int, int] = (0, 1), sandbox: bool = True,
              on_graded: Callable[[Progress], None] | None = None) -> dict[str, int]:
    """Every collected student of the shard (see grade_students)."""
    return grade_students(students_in(submissions, shard), out, course, jobs, exercises, profile, sandbox, on_graded)


def grade_students(students: list[Path], out: Path, course: Course, jobs: int = 2, exercises=None,
                   profile: str | None = None, sandbox: bool = True,
                   on_graded: Callable[[Progress], None] | None = None) -> dict[str, int]:
    """Each student's folder into out/<name>, `jobs` at a time; a failure is that student's and the
    rest go on. on_graded(progress) is called as each student finishes."""
    start, codes = time.perf_counter(), {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(grade_one, s, Path(out) / s.name, course, exercises, profile, sandbox=sandbox): s
                   for s in students}
        for future in as_completed(futures):
            name = futures[future].name
            try:
                code = future.result()[1]
            except Exception as err:  # noqa: BLE001 - this student's grading broke; the others go on
                code = GRADER_CRASHED
                _record_failure(Path(out) / name, code, f"{type(err).__name__}: {err}")
            codes[name] = code
            if on_graded:
                on_graded(Progress(len(codes), len(students), name, code, time.perf_counter() - start))
    return dict(sorted(codes.items()))


def merge_shards(shards_dir: Path, submissions: Path, count: int, out: Path) -> list[str]:
    """Copy each shard's graded folders (shards_dir/graded-K/<student>) into out, only for the students
    that shard K was given; anything else found in a shard is left out and named."""
    strays = []
    for k in range(count):
        shard = Path(shards_dir) / f"graded-{k}"
        mine = {s.name for s in students_in(submissions, (k, count))}
        for folder in sorted(shard.iterdir()) if shard.is_dir() else []:
            if folder.name in mine and folder.is_dir() and not folder.is_symlink():
                shutil.copytree(folder, Path(out) / folder.name, symlinks=True, dirs_exist_ok=False)
                remove_unsafe(Path(out) / folder.name)  # a link in an artifact would lead the report anywhere
            else:
                strays.append(f"graded-{k}/{folder.name}")
    return strays
