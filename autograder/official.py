"""The official tier: hidden tests from source/, and the evidence checks (checks/), run by executor.py, as its
verifier."""
from __future__ import annotations

from pathlib import Path

from coursegrader.config import SOURCE_DIR
from coursegrader.grading import grade_into
from coursegrader.grading.results import SubmissionGrade
from coursegrader.grading.tier import Tier
from coursegrader.statuses import TierName

from .executor import CheckExecutor


OFFICIAL = Tier(TierName.OFFICIAL, SOURCE_DIR, passed_message="正解です。", verifier=CheckExecutor, sandboxed=True,
                hidden_tests_mark="### BEGIN HIDDEN TESTS")


def grade_official(submission_dir: Path, exercises=None, out_dir: Path | None = None, **options) -> SubmissionGrade:
    """The official grade of one repository (reports into out_dir when given)."""
    return grade_into(out_dir, Path(submission_dir), exercises, tier=OFFICIAL, **options)
