"""What grading produces: verdicts of evidence checks, per-cell results, exercise runs, the submission's grade.

The pipeline fills these in; reports and exports only read them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from ..config import Course, Exercise, Profile
from ..fmapi.log import LogEntry
from ..grade_file import CellGrade, EvidenceOutcome, TestOutcome  # noqa: F401 - re-exported
from ..problems import Problem
from ..statuses import ExerciseStatus

from .tier import RunSetup, Tier, Verifier
from .verdict import Verdict

if TYPE_CHECKING:
    from ..execution.nbgrader_course import AutogradeResult


# One graded cell: its points, and why (its tests in the kernel, then its evidence checks outside it). The grader
# produces the same record grade.json's reader gives back.
CheckResult = CellGrade


@dataclass
class ExerciseRun:
    """One exercise of one submission, as the pipeline's steps fill it in."""
    exercise: Exercise
    submission_dir: Path
    work_dir: Path
    source_nb: nbformat.NotebookNode
    release_nb: nbformat.NotebookNode
    cassettes: list
    cell_timeout_s: int
    course: Course  # the course graded for (passed in from the command line, never read again below it)
    profile: Profile
    tier: Tier
    sandboxed: bool = True  # student code runs in the sandbox (False only with --no-sandbox or the feedback tier)
    adapter_dir: str | None = None  # the LoRA adapter this exercise evaluates (exercise.adapter_from)
    render_feedback: bool = True  # nbgrader's feedback HTML, where someone reads it
    notebook_path: Path | None = None  # the file read: <ex>/<ex>.ipynb, or Databricks's Source <ex>/<ex>.py
    student_nb: nbformat.NotebookNode | None = None  # as read, then as aligned with the release (align_cells)
    problems: list[Problem] = field(default_factory=list)
    autograded: "AutogradeResult | None" = None
    log: list[LogEntry] = field(default_factory=list)  # the fixture server's request log
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    verifier: Verifier | None = None  # the tier's, for this run (None: the tests alone decide); closed when it ends

    def setup(self) -> RunSetup:
        """What the tier's verifier knows of this run before the kernel runs."""
        return RunSetup(self.exercise, self.source_nb, self.course, self.profile, self.sandboxed, self.adapter_dir)

    @property
    def stopped(self) -> bool:
        return any(p.fatal for p in self.problems)

    @property
    def status(self) -> ExerciseStatus:
        """grade.json's exercise status: not_started (code as released, not run), error (another fatal problem
        stopped it) or graded."""
        if any(p.code == "exercise_not_started" for p in self.problems):
            return ExerciseStatus.NOT_STARTED
        return ExerciseStatus.ERROR if self.stopped else ExerciseStatus.GRADED

    @property
    def score(self) -> float:
        return sum(c.score for c in self.checks)

    def check(self, grade_id: str) -> CheckResult | None:
        return next((c for c in self.checks if c.id == grade_id), None)


@dataclass
class SubmissionGrade:
    submission: Path
    runs: list[ExerciseRun]
    tier: Tier
    sandbox: bool = True
    profile: str = ""  # the model profile ex04-ex06 ran with (a ProfileName; "" where none ran)

    @property
    def core_runs(self) -> list[ExerciseRun]:
        return [r for r in self.runs if not r.exercise.bonus]

    @property
    def bonus_runs(self) -> list[ExerciseRun]:
        return [r for r in self.runs if r.exercise.bonus]

    @property
    def score(self) -> float:
        """The core total: bonus exercises never count in it (see bonus_score)."""
        return sum(r.score for r in self.core_runs)

    @property
    def max_score(self) -> float:
        return sum(r.exercise.max_score for r in self.core_runs)

    @property
    def bonus_score(self) -> float:
        """Points of the bonus exercises, reported beside the core total (0 when none was graded)."""
        return sum(r.score for r in self.bonus_runs)

    @property
    def bonus_max_score(self) -> float:
        return sum(r.exercise.max_score for r in self.bonus_runs)
