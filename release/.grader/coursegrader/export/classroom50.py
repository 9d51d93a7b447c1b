"""Classroom 50: the result.json (schema classroom50/result/v1) its runner reads from an autograder.

Identity and links come from the runner's environment (CLASSROOM, ASSIGNMENT, OWNER, SUBMISSION_TAG,
COMMIT_URL, RELEASE_URL, REVIEW_URL, and MODE: individual, group or team); the runner overwrites owner,
assignment_type and datetime itself. Scores must be integers: every check's points are (course.toml), so each check is one test
and partial credit per exercise is kept as the sum of its checks.

The top-level score and max-score are the core total only, as grade.json's score and max_score are:
a bonus exercise's checks are listed among the tests, named `<exercise> / <check> (bonus)` with their own
points, but never counted in the total.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from ..grade_file import ExerciseGrade, GradeFile

SCHEMA = "classroom50/result/v1"


def whole(points: float) -> int:
    if points != int(points) or points < 0:
        raise ValueError(f"Classroom 50 needs whole, non-negative points; got {points}")
    return int(points)


def _tests(exercises: Iterable[ExerciseGrade]) -> list[dict]:
    """One result.json test per graded cell of these exercises."""
    return [{"test-name": f"{ex.id} / {check.id}" + (" (bonus)" if ex.bonus else ""),
             "passed": bool(check.passed), "score": whole(check.score), "max-score": whole(check.max_score),
             "message": check.message}
            for ex in exercises for check in ex.checks]


def tests_of(grade: GradeFile) -> list[dict]:
    """Every graded cell's test, bonus exercises' included."""
    return _tests(grade.exercises.values())


def core_tests(grade: GradeFile) -> list[dict]:
    """The tests of the exercises that count in the total (not bonus), as tests_of writes them."""
    return _tests(ex for ex in grade.exercises.values() if not ex.bonus)


def result(grade: GradeFile, env: Mapping[str, str], now: dt.datetime | None = None) -> dict:
    tests, core = tests_of(grade), core_tests(grade)
    commit = env.get("COMMIT_URL", "")
    return {
        "schema": SCHEMA,
        "classroom": env.get("CLASSROOM", ""),
        "assignment": env.get("ASSIGNMENT", ""),
        "assignment_type": env.get("MODE") or env.get("ASSIGNMENT_TYPE") or "individual",  # the runner's MODE
        "owner": env.get("OWNER") or env.get("USERNAME", ""),
        "submission": env.get("SUBMISSION_TAG", ""),
        "commit": commit,
        "release": env.get("RELEASE_URL", ""),
        "review": env.get("REVIEW_URL") or commit,
        "datetime": (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "score": sum(t["score"] for t in core),  # bonus points are listed in tests, never in the total
        "max-score": sum(t["max-score"] for t in core),
        "tests": tests,
    }
