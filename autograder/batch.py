"""grade-all: every collected submission, in parallel worker processes.

Each student is graded by its own `python -m autograder grade` process (nothing one
submission does can reach another's grading). Regrading replaces a student's results.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from coursegrader.config import REPO_ROOT


def grade_one(submission: Path, out: Path, exercises=None, profile: str | None = None,
              cell_timeout_s: int | None = None, sandbox: bool = True) -> tuple[str, int]:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "autograder", "grade", str(submission), "--out", str(out)]
    if not sandbox:
        cmd.append("--no-sandbox")
    for ex in exercises or []:
        cmd += ["--exercise", ex]
    if profile:
        cmd += ["--profile", profile]
    if cell_timeout_s:
        cmd += ["--cell-timeout", str(cell_timeout_s)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    if (submission / "submission.json").exists():
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(submission / "submission.json", out / "submission.json")
    (out / "grader.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    return submission.name, proc.returncode


def students_in(submissions: Path, shard: tuple[int, int] = (0, 1)) -> list[Path]:
    """The collected students, sorted; shard (K, N) keeps every N-th from the K-th."""
    index, count = shard
    students = sorted(p for p in Path(submissions).iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    return students[index::count]


def grade_all(submissions: Path, out: Path, jobs: int = 2, exercises=None, profile: str | None = None,
              shard: tuple[int, int] = (0, 1), sandbox: bool = True) -> dict[str, int]:
    students = students_in(submissions, shard)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = pool.map(lambda s: grade_one(s, Path(out) / s.name, exercises, profile, sandbox=sandbox), students)
        return dict(results)
