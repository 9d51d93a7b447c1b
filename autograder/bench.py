"""bench: grading time per exercise vs plain nbclient execution of the same notebooks."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from .config import SOURCE_DIR, load_course
from .execute import course_kernel_env, run_notebook
from .fmapi import FixtureServer
from .grade import grade_submission
from .grade.pipeline import gradable_exercises
from .samples import build_sample, load_catalog


def plain_execution_s(exercise_id: str) -> float:
    """Run the solution notebook once with nbclient against the fixture server (no grading)."""
    exercise = load_course().exercises[exercise_id]
    with FixtureServer() as server, tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_notebook(SOURCE_DIR / exercise_id / exercise.notebook, cwd=Path(tmp), env=course_kernel_env(server.env(), Path(tmp)))
        return time.perf_counter() - start


def report_seconds(graded_dirs: list[Path], out: Path, students: int = 300) -> float:
    """Time `report` over `students` copies of one submission graded exercise by exercise."""
    import json
    import shutil

    from .export.report import write_report

    merged = {"schema_version": 1, "score": 0.0, "max_score": 0.0, "exercises": {}}
    for d in graded_dirs:
        grade = json.loads((d / "grade.json").read_text(encoding="utf-8"))
        merged["exercises"].update(grade["exercises"])
        merged["score"] += grade["score"]
        merged["max_score"] += grade["max_score"]
    class_dir = out / "class"
    shutil.rmtree(class_dir, ignore_errors=True)
    for i in range(students):
        student = class_dir / f"s{i:03d}"
        for d in graded_dirs:
            shutil.copytree(d, student, dirs_exist_ok=True)
        (student / "grade.json").write_text(json.dumps(merged, ensure_ascii=False), encoding="utf-8")
    start = time.perf_counter()
    write_report(class_dir, out / "class_report")
    return time.perf_counter() - start


def run_bench(exercise_ids=None, out: Path = Path("out/bench")) -> list[dict]:
    submission = build_sample(load_catalog()["solution"], out / "solution")
    rows = []
    for exercise in gradable_exercises(exercise_ids):
        start = time.perf_counter()
        grade = grade_submission(submission, [exercise.id], out / "graded" / exercise.id)
        graded_s = time.perf_counter() - start
        plain_s = plain_execution_s(exercise.id)
        rows.append({"exercise": exercise.id, "grade_s": graded_s, "plain_s": plain_s,
                     "ratio": graded_s / plain_s, "score": grade.score, "max_score": grade.max_score})
    print(f"{'exercise':<9}{'grade (s)':>10}{'plain (s)':>10}{'ratio':>7}  score")
    for r in rows:
        print(f"{r['exercise']:<9}{r['grade_s']:>10.1f}{r['plain_s']:>10.1f}{r['ratio']:>7.2f}  {r['score']:g}/{r['max_score']:g}")
    graded = [out / "graded" / r["exercise"] for r in rows]
    print(f"report for 300 graded students: {report_seconds(graded, out):.1f} s")
    return rows
