"""The names shared between layers and written into files (grade.json, submission.json, the gradebook), as enums.

Each is a StrEnum: its members compare equal to, and serialise as, the strings the files have always held,
so a file written before is read the same; a misspelt name fails where it is written, not when a submission
is graded.
"""
from __future__ import annotations

from enum import StrEnum


class ExerciseStatus(StrEnum):
    """grade.json's exercise status."""
    GRADED = "graded"
    NOT_STARTED = "not_started"  # the code as released, not run
    ERROR = "error"  # another fatal problem stopped it


class TierName(StrEnum):
    FEEDBACK = "feedback"  # visible tests only: the student's own check
    OFFICIAL = "official"  # hidden tests and evidence checks, in the sandbox


class ProfileName(StrEnum):
    """course.toml's [profiles.*]: which model, data and training settings ex04-ex06 run with."""
    GPU = "gpu"
    GPU_DRY_RUN = "gpu-dry-run"
    CPU_REAL = "cpu-real"
    CPU_REAL_TINY = "cpu-real-tiny"
    CPU = "cpu"


class CollectStatus(StrEnum):
    """submission.json's status: what collect found for a student."""
    OK = "ok"
    NO_COMMIT_BEFORE_DEADLINE = "no_commit_before_deadline"
    CLONE_FAILED = "clone_failed"
    PUSH_TIMES_UNAVAILABLE = "push_times_unavailable"
    PUSHED_COMMIT_MISSING = "pushed_commit_missing"


class StudentOutcome(StrEnum):
    """What became of a student in a class's grading (the dashboard's accounting)."""
    GRADED = "graded"
    GRADE_FAILED = "grade_failed"  # the grader's failure: no grade.json, grade_failed.json says why
    NOT_COLLECTED = "not_collected"  # collect found nothing to grade, so nothing was
    UNREADABLE = "unreadable"  # grade.json
    MISSING = "missing"  # on the roster, no folder at all
    NOT_ON_ROSTER = "not_on_roster"
