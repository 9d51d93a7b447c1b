"""The official tier: hidden tests from source/, and the evidence checks (checks/) as its verifier."""
from __future__ import annotations

from pathlib import Path

from coursegrader.config import SOURCE_DIR, load_course
from coursegrader.grading import grade_into
from coursegrader.grading.results import ExerciseRun, SubmissionGrade, Verdict
from coursegrader.grading.tier import Tier
from coursegrader.notebook import code_literals, inputs_cell_id, inputs_of

from . import checks
from .evidence import Evidence, claims_in, fail


def evidence_of(run: ExerciseRun) -> Evidence:
    """What the checks may read: the request log and the instructor's notebook (trusted), the kernel's
    claims and saved files (untrusted), as this run saw them."""
    source_literals = code_literals(run.source_nb)
    return Evidence(
        log=run.log,
        inputs=source_literals.get(inputs_cell_id(run.exercise.id), {}),
        source_literals=source_literals,
        claims=claims_in(run.autograded.notebook),
        chat_model=load_course().chat_model,
        profile=run.profile,
        work_dir=run.autograded.work_dir,
        errors=run.autograded.errors_by_cell(),
        adapter_dir=run.adapter_dir,
        notebook=run.autograded.notebook,
        sandboxed=run.sandboxed,
    )


def warm_up_checks(run: ExerciseRun) -> None:
    """While the kernel runs: what this exercise's checks compute the same for every student."""
    checks.warm_up(run.exercise.id, inputs_of(run.source_nb, run.exercise.id), run.profile)


def verify_with_checks(run: ExerciseRun) -> dict[str, Verdict]:
    """Every evidence check course.toml names for this exercise's cells, each run once."""
    evidence = evidence_of(run)
    verdicts = {}
    for name in sorted({n for cell in run.exercise.cells for n in cell.evidence}):
        try:
            verdicts[name] = checks.get_check(run.exercise.id, name)(evidence)
        except Exception as err:  # noqa: BLE001 - malformed evidence fails the check, never the grader
            verdicts[name] = fail("check_crashed", error_type=type(err).__name__, error=str(err))
    return verdicts


OFFICIAL = Tier("official", SOURCE_DIR, passed_message="正解です。", verify=verify_with_checks, sandboxed=True,
                prepare=warm_up_checks)


def grade_official(submission_dir: Path, exercises=None, out_dir: Path | None = None, **options) -> SubmissionGrade:
    """The official grade of one repository (reports into out_dir when given)."""
    return grade_into(out_dir, Path(submission_dir), exercises, tier=OFFICIAL, **options)
