"""The official tier: hidden tests from source/, and the evidence checks (checks/) as its verifier."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
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
        standby=run.standby,
    )


def warm_up_checks(run: ExerciseRun) -> None:
    """While the kernel runs: what this exercise's checks compute the same for every student."""
    checks.warm_up(run.exercise.id, inputs_of(run.source_nb, run.exercise.id), run.profile)


def start_standby(run: ExerciseRun, kernel_dir: Path) -> dict:
    """As the kernel starts: the fresh processes this exercise's checks will need, importing meanwhile."""
    return checks.standby(run.exercise.id, kernel_dir, run.profile, run.sandboxed)


def verify_with_checks(run: ExerciseRun) -> dict[str, Verdict]:
    """Every evidence check course.toml names for this exercise's cells, each run once; the checks that wait
    for a fresh process run in threads beside the others."""
    evidence = evidence_of(run)
    names = sorted({n for cell in run.exercise.cells for n in cell.evidence})
    apart = [n for n in names if checks.runs_apart(run.exercise.id, n)]
    with ThreadPoolExecutor(max_workers=max(1, len(apart)), thread_name_prefix="check") as pool:
        waiting = {name: pool.submit(_verdict, run.exercise.id, name, evidence) for name in apart}
        verdicts = {name: _verdict(run.exercise.id, name, evidence) for name in names if name not in waiting}
        verdicts.update((name, future.result()) for name, future in waiting.items())
    return {name: verdicts[name] for name in names}


def _verdict(exercise_id: str, name: str, evidence: Evidence) -> Verdict:
    try:
        return checks.get_check(exercise_id, name)(evidence)
    except Exception as err:  # noqa: BLE001 - malformed evidence fails the check, never the grader
        return fail("check_crashed", error_type=type(err).__name__, error=str(err))


OFFICIAL = Tier("official", SOURCE_DIR, passed_message="正解です。", verify=verify_with_checks, sandboxed=True,
                prepare=warm_up_checks, standby=start_standby, hidden_tests_mark="### BEGIN HIDDEN TESTS")


def grade_official(submission_dir: Path, exercises=None, out_dir: Path | None = None, **options) -> SubmissionGrade:
    """The official grade of one repository (reports into out_dir when given)."""
    return grade_into(out_dir, Path(submission_dir), exercises, tier=OFFICIAL, **options)
