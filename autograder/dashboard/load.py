"""A class's graded folders as typed records: each student's grade.json (coursegrader.grade_file), the gradings
that failed (grade-all's GRADE_FAILED_FILE), and what became of every student (StudentOutcome)."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path

from coursegrader.config import Course
from coursegrader.grade_file import GradeFile, read_grade
from coursegrader.statuses import CollectStatus, StudentOutcome

from ..batch import GRADE_FAILED_FILE, collected_status, student_folders
from .policy import days_late, late_penalty


@dataclass(frozen=True)
class StudentResult:
    """A student's grade and when the graded commit was made (None: no submission.json says)."""
    student_id: str
    grade: GradeFile
    committed_at: dt.datetime | None

    @property
    def raw_score(self) -> float:
        """The core total (bonus exercises are not in grade.json's score)."""
        return float(self.grade.score)

    @property
    def bonus_score(self) -> float:
        return float(self.grade.bonus_score)

    @property
    def bonus_max_score(self) -> float:
        return float(self.grade.bonus_max_score)

    def days_late(self, deadline: dt.datetime) -> int:
        return days_late(self.committed_at, deadline)

    def penalty(self, deadline: dt.datetime, course: Course) -> float:
        """The late penalty, by the course's policy (autograder/dashboard/policy.py)."""
        return late_penalty(self.raw_score, self.days_late(deadline), course)


@dataclass(frozen=True)
class Accounted:
    """What became of one student, and why where it was not graded."""
    id: str
    status: StudentOutcome
    detail: str = ""


def load_results(graded_dir: Path) -> tuple[list[StudentResult], list[str]]:
    """Every student folder with a readable grade.json; the unreadable ones are named (a failed
    grading is not unreadable: see load_failures)."""
    results, skipped = [], []
    for folder in student_folders(graded_dir):
        if (folder / GRADE_FAILED_FILE).is_file() or collected_status(folder) != CollectStatus.OK:
            continue  # see load_failures and accounted_for
        try:
            grade = read_grade(folder / "grade.json")
            meta_file = folder / "submission.json"
            meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
            committed = dt.datetime.fromisoformat(meta["committed_at"]) if meta.get("committed_at") else None
        except (OSError, ValueError, KeyError) as err:
            skipped.append(f"{folder.name}: {type(err).__name__}")
            continue
        results.append(StudentResult(folder.name, grade, committed))
    return results, skipped


def load_failures(graded_dir: Path) -> dict[str, str]:
    """student -> why their grading failed (grade-all's GRADE_FAILED_FILE)."""
    failures = {}
    for folder in student_folders(graded_dir):
        if (folder / GRADE_FAILED_FILE).is_file():
            try:
                failures[folder.name] = json.loads((folder / GRADE_FAILED_FILE).read_text(encoding="utf-8"))["reason"]
            except (OSError, ValueError, KeyError) as err:
                failures[folder.name] = f"{GRADE_FAILED_FILE}: {type(err).__name__}"
    return failures


def accounted_for(graded_dir: Path, results: list[StudentResult], skipped: list[str], failures: dict[str, str],
                  roster: list[str] | None = None) -> list[Accounted]:
    """One row per student: graded, grade_failed, not_collected (collect found nothing to grade, so
    nothing was), unreadable (grade.json), or missing (on the roster, no folder at all); with a roster,
    in its order, and the students found but not on it as not_on_roster."""
    unreadable = {entry.split(":", 1)[0]: entry for entry in skipped}
    found = {f.name for f in student_folders(graded_dir)}

    def row(sid: str) -> Accounted:
        collected = collected_status(Path(graded_dir) / sid) if sid in found else CollectStatus.OK
        if sid in failures:
            return Accounted(sid, StudentOutcome.GRADE_FAILED, failures[sid])
        if collected != CollectStatus.OK:
            return Accounted(sid, StudentOutcome.NOT_COLLECTED, collected)
        if sid in unreadable:
            return Accounted(sid, StudentOutcome.UNREADABLE, unreadable[sid])
        if sid in found:
            return Accounted(sid, StudentOutcome.GRADED)
        return Accounted(sid, StudentOutcome.MISSING, "no graded folder")

    rows = [row(sid) for sid in (roster if roster is not None else sorted(found))]
    if roster is not None:
        rows += [replace(row(sid), status=StudentOutcome.NOT_ON_ROSTER) for sid in sorted(found - set(roster))]
    return rows


def exercise_ids(results: list[StudentResult]) -> list[str]:
    """The exercises any student was graded on, sorted."""
    return sorted({ex for r in results for ex in r.grade.exercises})


def check_ids(results: list[StudentResult]) -> list[tuple[str, str]]:
    """(exercise, graded cell) of every cell any student was graded on, sorted."""
    return sorted({(ex.id, c.id) for r in results for ex in r.grade.exercises.values() for c in ex.checks})
