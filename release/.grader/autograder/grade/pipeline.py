"""grade: one submission, exercise by exercise, as a pipeline of small steps.

Each step does one job on an ExerciseRun and may stop the run with a fatal
Problem; a stopped exercise scores 0 and the next exercise is still graded.

  load_submission     read <submission>/<ex>/<ex>.ipynb (no links, FIFOs or devices)
  restore_cells       put back deleted / edited protected cells
  autograde           nbgrader autograde (hidden tests restored) with the fixture server; the
                      kernel runs in the sandbox (official tier)
  distrust_outputs    remove links and special files the kernel left in its work folder
  note_execution      report timeouts, kernel deaths and sandbox limits seen in the outputs
  verify_evidence     outside-the-kernel checks on the request log (official tier only)
  score               a cell's points count only if its test and its evidence pass

Two tiers (see README): `official` grades against source/ (hidden tests) and
verifies evidence; `feedback` runs in the student's repository with only the
release notebooks (visible tests), so its points are a preview.
"""
from __future__ import annotations

import copy
import json
import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..config import CASSETTE_DIR, RELEASE_DIR, SOURCE_DIR, Exercise, Profile, load_course
from ..execute import course_kernel_env
from ..fmapi import FixtureServer
from ..fmapi.persister import load_cassettes
from ..mlflow_store import STORE_DIR, keep_store
from ..sandbox.policy import profile_paths
from .feedback_filters import with_csp
from .evidence import Evidence, Verdict, claims_in, literals_in
from .nbgrader_runner import (AutogradeFailed, AutogradeResult, AutogradeTimeout, GraderUnavailable, KernelPlace,
                              NbgraderCourse, preflight)
from .problems import Problem, limit_problems, problem
from .resilient_execute import KERNEL_DIED, NOT_RUN
from .submission import find_notebook, load_notebook, restore_protected_cells
from .untrusted import copy_adapter, remove_unsafe, unsafe_entries

TIMEOUT_ENAME = "CellTimeoutError"


@dataclass
class CheckResult:
    id: str
    score: float
    max_score: float
    passed: bool
    message: str
    test: dict
    evidence: list[dict]

    def to_json(self) -> dict:
        return self.__dict__.copy()


@dataclass
class ExerciseRun:
    exercise: Exercise
    submission_dir: Path
    work_dir: Path
    source_nb: nbformat.NotebookNode
    release_nb: nbformat.NotebookNode
    cassettes: list
    cell_timeout_s: int
    profile: Profile
    tier: str = "official"
    sandboxed: bool = True  # student code runs in the sandbox (False only with --no-sandbox or the feedback tier)
    adapter_dir: str | None = None  # the LoRA adapter this exercise evaluates (exercise.adapter_from)
    student_nb: nbformat.NotebookNode | None = None
    problems: list[Problem] = field(default_factory=list)
    autograded: AutogradeResult | None = None
    log: list[dict] = field(default_factory=list)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        return any(p.fatal for p in self.problems)

    @property
    def score(self) -> float:
        return sum(c.score for c in self.checks)


# -- steps ---------------------------------------------------------------

def load_submission(run: ExerciseRun) -> None:
    unsafe = unsafe_entries(run.submission_dir / run.exercise.id)
    if unsafe:
        run.problems.append(problem("submission_link", entries=_entries(unsafe)))
        return
    path = find_notebook(run.submission_dir, run.exercise.id, run.exercise.notebook)
    run.student_nb, found = load_notebook(path)
    if found:
        run.problems.append(found)


def _entries(found: list[tuple[str, str]]) -> str:
    return ", ".join(f"{path} ({kind})" for path, kind in found[:5]) + (" …" if len(found) > 5 else "")


def restore_cells(run: ExerciseRun) -> None:
    run.student_nb, found = restore_protected_cells(run.student_nb, run.release_nb)
    run.problems.extend(found)


def autograde(run: ExerciseRun) -> None:
    course = load_course()
    readable = profile_paths(run.profile) + ([Path(run.adapter_dir)] if run.adapter_dir else [])
    kernel = KernelPlace(run.work_dir / "run", run.sandboxed, readable)
    course_dir = NbgraderCourse(run.work_dir / "course", run.exercise, run.source_nb, run.cell_timeout_s, kernel)
    with FixtureServer(cassettes=run.cassettes) as server:
        kernel.connect(server)
        env = course_kernel_env(server.env(), kernel.home, run.profile.name, run.adapter_dir)
        try:
            run.autograded = course_dir.autograde(run.student_nb, env, course.exercise_timeout_s)
        except AutogradeTimeout:
            run.problems.append(problem("grading_timeout", seconds=course.exercise_timeout_s))
        except AutogradeFailed as err:
            run.problems.append(problem("autograde_failed", detail=str(err)))
        finally:
            run.log = server.log.snapshot()


def distrust_outputs(run: ExerciseRun) -> None:
    """Nothing the grader reads later may lead out of the work folder: links and special files go."""
    removed = remove_unsafe(run.autograded.work_dir)
    if removed:
        run.problems.append(problem("work_link", entries=_entries(removed)))


def note_execution(run: ExerciseRun) -> None:
    timed_out, died, errors = [], [], {}
    for cell in run.autograded.notebook.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or cell.get("id", "?")
        errors[gid] = [(o.get("ename", ""), str(o.get("evalue", ""))) for o in cell.get("outputs", [])
                       if o.get("output_type") == "error"]
        enames = {ename for ename, _ in errors[gid]}
        if TIMEOUT_ENAME in enames:
            timed_out.append(gid)
        if KERNEL_DIED in enames:
            died.append(gid)
    if timed_out:
        run.problems.append(problem("cell_timeout", cells=", ".join(timed_out), seconds=run.cell_timeout_s))
    if died:
        run.problems.append(problem("kernel_died", cell=died[0]))
    run.problems.extend(limit_problems(errors))


def verify_evidence(run: ExerciseRun) -> None:
    if run.tier != "official":
        return
    from . import checks  # the official grader's checks; not shipped to students

    source_literals = {}
    for cell in run.source_nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid and cell.cell_type == "code":
            source_literals[gid] = literals_in(cell.source)
    evidence = Evidence(
        log=run.log,
        inputs=source_literals.get(f"{run.exercise.id}_inputs", {}),
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
    for name in sorted({n for cell in run.exercise.cells for n in cell.evidence}):
        try:
            run.verdicts[name] = checks.get_check(run.exercise.id, name)(evidence)
        except Exception as err:  # noqa: BLE001 - malformed evidence fails the check, never the grader
            run.verdicts[name] = Verdict(False, f"記録を検証できませんでした（{type(err).__name__}: {err}）")
    for code in dict.fromkeys(v.problem for v in run.verdicts.values() if v.problem):
        run.problems.append(problem(code))


def score(run: ExerciseRun) -> None:
    run.checks = [_score_cell(run, cell) for cell in run.exercise.cells]
    unconfirmed = [c.id for c in run.checks if c.test["passed"] and not c.passed]
    if unconfirmed:
        run.problems.append(problem("tests_unconfirmed", cells=", ".join(unconfirmed)))


STEPS = (load_submission, restore_cells, autograde, distrust_outputs, note_execution, verify_evidence, score)


# -- scoring ---------------------------------------------------------------

def _test_message(errors: list[tuple[str, str]]) -> str:
    ename, evalue = errors[0]
    if ename == TIMEOUT_ENAME:
        return "テストセルが制限時間内に終わりませんでした。"
    if ename in (KERNEL_DIED, NOT_RUN):
        return "カーネルが停止したため、このテストは実行されませんでした。"
    if ename == "NotImplementedError":
        return "まだ実装されていません（NotImplementedError）。"
    return f"テストが失敗しました: {ename}: {evalue}".strip().rstrip(":")


def _first_line(text: str, limit: int = 400) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit] + "…"


def _score_cell(run: ExerciseRun, cell) -> CheckResult:
    result = run.autograded.cells.get(cell.grade_id) if run.autograded else None
    required = cell.evidence if run.tier == "official" else ()
    evidence = [{"id": n, "passed": run.verdicts[n].passed, "message": run.verdicts[n].message}
                for n in required if n in run.verdicts]
    test = {"passed": bool(result and result.passed),
            "error": f"{result.errors[0][0]}: {result.errors[0][1]}" if result and result.errors else None}
    if result is None:
        message = "このセルは採点されませんでした。"
    elif not result.passed:
        message = _test_message(result.errors or [("AssertionError", "")])
        cause = run.autograded.errors_before(cell.grade_id)
        if cause and cause[0][1] not in (KERNEL_DIED, NOT_RUN):
            where, ename, evalue = cause[0]
            message = (f"実装セル {where} がまだ実装されていません（NotImplementedError）。" if ename == "NotImplementedError"
                       else f"実装セル {where} でエラーが発生しました: {ename}: {_first_line(evalue)}")
    elif not all(e["passed"] for e in evidence):
        message = next(e["message"] for e in evidence if not e["passed"])
    elif run.tier == "official":
        notes = [e["message"] for e in evidence if e["message"] != "OK"]  # e.g. the measured gozaru rate
        message = "正解です。" + "".join(f"（{n}）" for n in notes)
    else:
        message = "公開テストに合格しました（正式な採点では非公開テストと記録の検証も行います）。"
    passed = test["passed"] and all(e["passed"] for e in evidence) and len(evidence) == len(required)
    return CheckResult(cell.grade_id, cell.points if passed else 0.0, cell.points, passed, message, test, evidence)


# -- entry point -------------------------------------------------------------

@dataclass
class SubmissionGrade:
    submission: Path
    runs: list[ExerciseRun]
    tier: str = "official"
    sandbox: bool = True

    @property
    def score(self) -> float:
        return sum(r.score for r in self.runs)

    @property
    def max_score(self) -> float:
        return sum(r.exercise.max_score for r in self.runs)


TIERS = {"official": SOURCE_DIR, "feedback": RELEASE_DIR}  # tier -> where nbgrader's source notebooks are


def grade_exercise(exercise: Exercise, submission_dir: Path, work_dir: Path, cassettes,
                   cell_timeout_s: int | None = None, profile: str | None = None,
                   tier: str = "official", student_adapter: str | None = None, sandbox: bool = True) -> ExerciseRun:
    chosen = load_course().profile(profile)
    run = ExerciseRun(
        exercise=exercise,
        submission_dir=Path(submission_dir),
        work_dir=work_dir,
        source_nb=nbformat.read(TIERS[tier] / exercise.id / exercise.notebook, as_version=4),
        release_nb=nbformat.read(RELEASE_DIR / exercise.id / exercise.notebook, as_version=4),
        cassettes=cassettes,
        cell_timeout_s=cell_timeout_s or exercise.cell_timeout_s or load_course().cell_timeout_s,
        profile=chosen,
        tier=tier,
        sandboxed=sandbox,
        adapter_dir=student_adapter or (chosen.reference_adapter_path() if exercise.adapter_from else None),
    )
    if exercise.adapter_from and not student_adapter:
        run.problems.append(problem("reference_adapter_used" if run.adapter_dir else "adapter_missing"))
    for step in STEPS:
        if run.stopped:
            break
        try:
            step(run)
        except GraderUnavailable:
            raise  # the grader cannot grade anything here: no report of zeros
        except Exception as err:  # noqa: BLE001 - one exercise's failure must not stop the others
            run.problems.append(problem("grader_error", detail=f"{step.__name__}: {type(err).__name__}: {err}"))
            traceback.print_exc()
    if run.stopped:
        run.checks = [_unscored(cell, run.problems) for cell in exercise.cells]
    return run


def _unscored(cell, problems: list[Problem]) -> CheckResult:
    reason = next(p.message_ja for p in problems if p.fatal)
    return CheckResult(cell.grade_id, 0.0, cell.points, False, reason, {"passed": False, "error": None}, [])


def gradable_exercises(requested=None, tier: str = "official") -> list[Exercise]:
    course = load_course()
    ids = requested or [e for e in course.exercises if (TIERS[tier] / e).is_dir()]
    unknown = [e for e in ids if e not in course.exercises]
    if unknown:
        raise ValueError(f"unknown exercise(s): {', '.join(unknown)}")
    return [course.exercises[e] for e in ids]


def grade_submission(submission_dir: Path, exercises=None, out_dir: Path | None = None,
                     keep_work: bool = False, cell_timeout_s: int | None = None,
                     profile: str | None = None, tier: str = "official", sandbox: bool | None = None) -> SubmissionGrade:
    """Grade every requested exercise of one student's repository; never raises for bad input.

    sandbox: None means the tier's default (official: always; feedback: never). The official tier
    with the sandbox refuses to start when it is unavailable, and any tier when the kernel cannot
    start (GraderUnavailable): it never grades notebooks it could not run.
    """
    from .report import write_reports

    sandbox = (tier == "official") if sandbox is None else sandbox
    preflight(sandbox)
    cassettes = load_cassettes(CASSETTE_DIR)  # loaded once, before any student code runs
    runs = []
    handoff = Path(tempfile.mkdtemp(prefix="grade-handoff-"))
    adapters: dict[str, str | None] = {}  # producing exercise -> the student's adapter, copied out
    try:
        for exercise in gradable_exercises(exercises, tier):
            work = Path(tempfile.mkdtemp(prefix=f"grade-{exercise.id}-"))
            source = exercise.adapter_from or {}
            try:
                runs.append(grade_exercise(exercise, submission_dir, work, _fresh(cassettes), cell_timeout_s, profile,
                                           tier, adapters.get(source.get("exercise")), sandbox))
                for consumer in load_course().exercises.values():
                    if consumer.adapter_from and consumer.adapter_from["exercise"] == exercise.id:
                        adapters[exercise.id] = keep_student_adapter(runs[-1], consumer.adapter_from, handoff)
                if out_dir:
                    write_exercise_artifacts(runs[-1], Path(out_dir))
            finally:
                if not keep_work:
                    shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(handoff, ignore_errors=True)
    result = SubmissionGrade(Path(submission_dir), runs, tier, sandbox)
    if out_dir:
        write_reports(result, Path(out_dir))
    return result


def keep_student_adapter(run: ExerciseRun, adapter_from: dict, handoff: Path) -> str | None:
    """The adapter this run saved, copied out of its work dir, if its adapter cell scored
    (official tier: test and evidence; feedback tier: the test); else None."""
    scored = next((c.passed for c in run.checks if c.id == adapter_from["cell"]), False)
    if not scored or not run.autograded:
        return None
    inputs = next(c.source for c in run.source_nb.cells
                  if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == f"{run.exercise.id}_inputs")
    name = literals_in(inputs).get(adapter_from["input"])
    if not name:
        return None
    copied = copy_adapter(run.autograded.work_dir / str(name), handoff / f"{run.exercise.id}-adapter")
    return str(copied) if copied else None


def _fresh(cassettes):
    return copy.deepcopy(cassettes)


def write_exercise_artifacts(run: ExerciseRun, out_dir: Path) -> None:
    """Feedback HTML and the request log, copied out before the work dir goes."""
    ex_dir = out_dir / run.exercise.id
    ex_dir.mkdir(parents=True, exist_ok=True)
    if run.autograded and run.autograded.feedback_html:
        html = run.autograded.feedback_html.read_text(encoding="utf-8")
        (ex_dir / "feedback.html").write_text(with_csp(html), encoding="utf-8")
    if run.autograded:
        keep_store(run.autograded.work_dir, ex_dir / STORE_DIR)  # ex06: for `python -m autograder mlflow-ui`
    with open(ex_dir / "requests.jsonl", "w", encoding="utf-8") as fh:
        for entry in run.log:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
