"""bench: grading time per exercise against plain nbclient execution, with and without the
sandbox (each grading its own `grade` process, as grade-all runs it), and what the sandboxed
kernels used (the figures behind course.toml [sandbox])."""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

from coursegrader.config import Course, Profile
from coursegrader.fmapi import FixtureServer
from coursegrader.grade_file import GradeFile, read_grade
from coursegrader.grading.pipeline import gradable_exercises
from coursegrader.sandbox.launch import UID_BASE

from .batch import grade_one
from .official import OFFICIAL
from .plain_run import run_source_notebook
from .samples import build_sample, load_catalog


def plain_execution_s(exercise_id: str, course: Course, profile: Profile | None = None) -> float:
    """Run the solution notebook once with nbclient against the fixture server (no grading)."""
    exercise = course.exercises[exercise_id]
    with FixtureServer(course=course) as server, tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_source_notebook(exercise, Path(tmp), server, course, profile)
        return time.perf_counter() - start


class SandboxUsage:
    """Peaks over sandboxed processes while it runs: one process's data segment (what RLIMIT_DATA limits)
    and the tasks of all of them together (what RLIMIT_NPROC limits). Sandboxes have private uids
    only when the grader is root; otherwise nothing is seen."""

    def __init__(self, every_s: float = 0.2):
        self.every_s, self.peak_data_mb, self.peak_tasks = every_s, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "SandboxUsage":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.every_s):
            tasks = 0
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    if os.stat(f"/proc/{pid}").st_uid < UID_BASE:
                        continue
                    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
                except (OSError, ValueError):
                    continue
                tasks += int(status.get("Threads", "0"))
                self.peak_data_mb = max(self.peak_data_mb, int(status.get("VmData", "0 kB").split()[0]) // 1024)
            self.peak_tasks = max(self.peak_tasks, tasks)


def _grade_json(grade: GradeFile) -> dict:
    """grade.json's content for a GradeFile, as grading/report.py writes it."""
    data = asdict(grade)
    for exercise in data["exercises"].values():
        del exercise["id"]  # the key it is filed under
    if data["profile"] is None:  # a file written before profiles
        del data["profile"]
    return data


def _merged_grade(grades: list[GradeFile]) -> GradeFile:
    """One submission's grades of different exercises as one grade.json would hold them."""
    return replace(grades[0], score=sum(g.score for g in grades), max_score=sum(g.max_score for g in grades),
                   bonus_score=sum(g.bonus_score for g in grades),
                   bonus_max_score=sum(g.bonus_max_score for g in grades),
                   exercises={ex_id: ex for g in grades for ex_id, ex in g.exercises.items()})


def report_seconds(graded_dirs: list[Path], out: Path, course: Course, students: int = 300) -> float:
    """Time `report` over `students` copies of one submission graded exercise by exercise."""
    import shutil

    from .dashboard.report import write_report

    merged = _grade_json(_merged_grade([read_grade(d / "grade.json") for d in graded_dirs]))
    class_dir = out / "class"
    shutil.rmtree(class_dir, ignore_errors=True)
    for i in range(students):
        student = class_dir / f"s{i:03d}"
        for d in graded_dirs:
            shutil.copytree(d, student, dirs_exist_ok=True)
        (student / "grade.json").write_text(json.dumps(merged, ensure_ascii=False), encoding="utf-8")
    start = time.perf_counter()
    write_report(class_dir, out / "class_report", None, course)
    return time.perf_counter() - start


def _timed_grade(submission: Path, exercise_id: str, out: Path, sandbox: bool, profile: Profile | None,
                 course: Course) -> tuple[float, GradeFile]:
    """One `grade` process, as grade-all runs it (nothing cached from an earlier grading)."""
    start = time.perf_counter()
    grade_one(submission, out, course, [exercise_id], profile=profile.name if profile else None, sandbox=sandbox)
    return time.perf_counter() - start, read_grade(out / "grade.json")


def run_bench(exercise_ids, out: Path, course: Course, repeat: int = 2, profile: Profile | None = None) -> list[dict]:
    """Each grading in its own process, sandboxed and not, and a plain run, in turn, `repeat` times (a machine
    whose speed drifts over minutes slows all three alike); the best of each. With a profile, by default only
    the exercises that run its model."""
    submission = build_sample(load_catalog(course)["solution"], out / "solution", course)
    exercises = gradable_exercises(course, exercise_ids, OFFICIAL)
    if profile and not exercise_ids:
        exercises = [e for e in exercises if e.local_model]
    rows = []
    for exercise in exercises:
        sandboxed, unsandboxed, plain = [], [], []
        with SandboxUsage() as usage:  # sees sandboxed processes only
            for _ in range(repeat):
                sandboxed.append(_timed_grade(submission, exercise.id, out / "graded" / exercise.id, True, profile,
                                              course))
                unsandboxed.append(_timed_grade(submission, exercise.id, out / "unsandboxed" / exercise.id, False,
                                                profile, course))
                plain.append(plain_execution_s(exercise.id, course, profile))
        graded_s, grade = min(sandboxed, key=lambda r: r[0])
        unsandboxed_s, plain_s = min(s for s, _ in unsandboxed), min(plain)
        rows.append({"exercise": exercise.id, "grade_s": graded_s, "unsandboxed_s": unsandboxed_s,
                     "sandbox_ratio": graded_s / unsandboxed_s, "plain_s": plain_s, "ratio": graded_s / plain_s,
                     "score": grade.score, "max_score": grade.max_score,
                     "peak_data_mb": usage.peak_data_mb, "peak_tasks": usage.peak_tasks})
    limits = course.sandbox
    print(f"profile: {(profile or course.profile()).name}")
    print(f"{'exercise':<9}{'grade (s)':>10}{'no sandbox':>11}{'sandbox x':>10}{'plain (s)':>10}{'grade x':>8}"
          f"{'data MB':>9}{'tasks':>7}  score")
    for r in rows:
        print(f"{r['exercise']:<9}{r['grade_s']:>10.1f}{r['unsandboxed_s']:>11.1f}{r['sandbox_ratio']:>10.2f}"
              f"{r['plain_s']:>10.1f}{r['ratio']:>8.2f}{r['peak_data_mb']:>9}{r['peak_tasks']:>7}"
              f"  {r['score']:g}/{r['max_score']:g}")
    print(f"sandbox limits (course.toml): {limits['memory_mb']} MB data per process, {limits['processes']} tasks")
    graded = [out / "graded" / r["exercise"] for r in rows]
    print(f"report for 300 graded students: {report_seconds(graded, out, course):.1f} s")
    return rows
