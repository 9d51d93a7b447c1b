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
from collections.abc import Mapping

SCHEMA = "classroom50/result/v1"


def whole(points: float) -> int:
    if points != int(points) or points < 0:
        raise ValueError(f"Classroom 50 needs whole, non-negative points; got {points}")
    return int(points)


def tests_of(grade: dict) -> list[dict]:
    return [{"test-name": f"{ex_id} / {check['id']}" + (" (bonus)" if ex.get("bonus", False) else ""),
             "passed": bool(check["passed"]), "score": whole(check["score"]), "max-score": whole(check["max_score"]),
             "message": check["message"]}
            for ex_id, ex in grade["exercises"].items() for check in ex["checks"]]


def core_tests(grade: dict) -> list[dict]:
    """The tests of the exercises that count in the total (not bonus), as tests_of writes them."""
    return tests_of({"exercises": {ex_id: ex for ex_id, ex in grade["exercises"].items() if not ex.get("bonus", False)}})


def result(grade: dict, env: Mapping[str, str], now: dt.datetime | None = None) -> dict:
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
