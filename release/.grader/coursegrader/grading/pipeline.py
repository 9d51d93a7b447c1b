"""grade: one submission, exercise by exercise, as a pipeline of small steps.

Each step does one job on an ExerciseRun and may stop the run with a fatal
Problem; a stopped exercise scores 0 and the next exercise is still graded.

  load_submission     read <submission>/<ex>/<ex>.ipynb, or Databricks's Source <ex>.py (no links, FIFOs or devices)
  align_cells         find each release cell by content and order (align.py), put back deleted / edited
                      protected cells: what nbgrader receives has the release's metadata and validates
  skip_unstarted      code exactly as released (nothing written yet): 0 points without running it
  autograde           nbgrader autograde (hidden tests restored) with the fixture server; the
                      kernel runs in the sandbox (official tier), importing the release notebook's
                      modules while nbgrader prepares; the tier's verifier starts its own work beside it
  distrust_outputs    remove links and special files the kernel left in its work folder
  note_execution      report timeouts, kernel deaths and sandbox limits seen in the outputs
  note_scripted       say which API answers came from a scripted rule rather than a recording
  verify_evidence     the tier's outside-the-kernel checks (official tier only)
  award_points        a cell's points count only if its test and its evidence pass

The tier (tier.py) says where nbgrader's source notebooks come from and who verifies evidence: its
verifier, made for each run, owns whatever it runs beside the kernel (warm-ups, processes, threads).
"""
from __future__ import annotations

import copy
import traceback
from pathlib import Path
from typing import Callable

import nbformat

from ..config import CASSETTE_DIR, RELEASE_DIR, Course, Exercise, Profile
from ..errors import UsageError
from ..execution.environment import course_kernel_env, limit_cpu_threads
from ..execution.nbgrader_course import (KERNEL_DIED, NOT_RUN, AutogradeFailed, AutogradeTimeout, GraderUnavailable,
                                         KernelWorkspace, NbgraderCourse, preflight)
from ..fmapi import FixtureServer
from ..fmapi.persister import load_cassettes
from ..mlflow_store import StoreUnusable, distrust_store, tracking_db
from ..notebook import error_outputs, grade_id, imported_modules
from ..problems import Problem, is_listed, limit_problems, problem
from ..sandbox.policy import Limits, profile_paths
from .handoff import AdapterHandoff
from .results import CheckResult, EvidenceOutcome, ExerciseRun, SubmissionGrade, TestOutcome, Verdict
from .align import cell_text, normalized
from .submission import align_with_release, find_notebook, load_notebook
from .tier import FEEDBACK, Tier
from .untrusted import remove_tree, remove_unsafe, temporary_folder, unsafe_entries

TIMEOUT_ENAME = "CellTimeoutError"


# -- steps ---------------------------------------------------------------

def load_submission(run: ExerciseRun) -> None:
    folder = run.submission_dir / run.exercise.id
    unsafe = unsafe_entries(folder)
    if unsafe:
        run.problems.append(problem("submission_link", entries=_entries(unsafe)))
        return
    if folder.exists() and not folder.is_dir():
        run.problems.append(problem("exercise_not_a_folder", path=run.exercise.id))
        return
    run.notebook_path = find_notebook(run.submission_dir, run.exercise.id, run.exercise.notebook)
    run.student_nb, found = load_notebook(run.notebook_path)
    if found:
        run.problems.append(found)


def _entries(found: list[tuple[str, str]]) -> str:
    return ", ".join(f"{path} ({kind})" for path, kind in found[:5]) + (" …" if len(found) > 5 else "")


def align_cells(run: ExerciseRun) -> None:
    run.student_nb, found = align_with_release(run.student_nb, run.release_nb, run.notebook_path)
    run.problems.extend(found)


def skip_unstarted(run: ExerciseRun) -> None:
    """A blank scores 0 however it runs, and running one costs up to a minute (ex05, ex06): Classroom 50 grades
    all six exercises on every push, most of them not started yet."""
    if _code_cells(run.student_nb) == _code_cells(run.release_nb):
        # nothing ran, so no adapter was evaluated either: the handoff's note would only confuse
        run.problems = [p for p in run.problems if not p.code.startswith("reference_adapter_")]
        run.problems.append(problem("exercise_not_started"))


def _code_cells(nb) -> list[str]:
    """The notebook's code as `align` compares it (whitespace collapsed), empty cells left out."""
    return [text for kind, text in map(normalized, nb.cells) if kind == "code" and text]


def autograde(run: ExerciseRun) -> None:
    course = run.course
    readable = profile_paths(run.profile) + ([Path(run.adapter_dir)] if run.adapter_dir else [])
    kernel = KernelWorkspace(run.work_dir / "run", run.sandboxed, readable, Limits.from_course(course))
    course_dir = NbgraderCourse(run.work_dir / "course", run.exercise, run.source_nb, run.cell_timeout_s, kernel,
                                course)
    with FixtureServer(cassettes=run.cassettes, course=course) as server:
        kernel.connect(server)
        env = {**course_kernel_env(server.env(), kernel.home, run.profile, run.adapter_dir, course),
               **kernel.install_kernelspec(course.kernel)}
        try:
            run.autograded = course_dir.autograde(run.student_nb, env, course.exercise_timeout_s, run.render_feedback,
                                                  started=lambda: run.verifier and run.verifier.start(kernel.work_dir),
                                                  preload=_preloaded(run.release_nb))
        except AutogradeTimeout:
            run.problems.append(problem("grading_timeout", seconds=course.exercise_timeout_s))
        except AutogradeFailed as err:
            run.problems.append(problem("autograde_failed", detail=str(err)))
        finally:
            run.log = server.log.snapshot()


def _preloaded(release_nb) -> list[str]:
    """What the kernel imports before the notebook runs: the release notebook's modules, but the course's own
    (the preflight cell imports coursegrader.preflight only outside grading)."""
    return [m for m in imported_modules(release_nb) if m.split(".")[0] != __package__.split(".")[0]]


def distrust_outputs(run: ExerciseRun) -> None:
    """Nothing the grader reads later may lead out of the work folder: links and special files go, and an
    MLflow store is a plain SQLite file without triggers, or goes too."""
    removed = remove_unsafe(run.autograded.work_dir)
    if removed:
        run.problems.append(problem("work_link", entries=_entries(removed)))
    db = tracking_db(run.autograded.work_dir, run.course.mlflow)
    if db.is_file():
        try:
            distrust_store(db, run.course.limits.store_budget_s)
        except StoreUnusable as err:
            remove_tree(db)
            run.problems.append(problem("mlflow_store_unusable", store=db.name, detail=str(err)[:200]))


def note_execution(run: ExerciseRun) -> None:
    timed_out, died, errors = [], [], {}
    for cell in run.autograded.notebook.cells:
        gid = grade_id(cell) or cell.get("id", "?")
        errors[gid] = error_outputs(cell)
        enames = {ename for ename, _ in errors[gid]}
        if TIMEOUT_ENAME in enames:
            timed_out.append(gid)
        if KERNEL_DIED in enames:
            died.append(gid)
    if timed_out:
        run.problems.append(problem("cell_timeout", cells=", ".join(timed_out), seconds=run.cell_timeout_s))
    if died:
        run.problems.append(problem("kernel_died", cell=died[0]))
    run.problems.extend(limit_problems(errors, run.course.sandbox))


def note_scripted(run: ExerciseRun) -> None:
    served = [e for e in run.log if e.scripted]
    if served:
        ids = sorted({e.fixture_id for e in served})
        run.problems.append(problem("fixture_scripted", count=len(served), ids=", ".join(ids)))


def verify_evidence(run: ExerciseRun) -> None:
    if run.verifier is None:
        return
    run.verdicts = run.verifier.verify(run.log, run.autograded)
    listed = {v.code: v.fields for v in run.verdicts.values() if not v.passed and v.code and is_listed(v.code)}
    for code, fields in listed.items():
        run.problems.append(problem(code, **fields))


def award_points(run: ExerciseRun) -> None:
    run.checks = [_cell_result(run, cell) for cell in run.exercise.cells]
    unconfirmed = [c.id for c in run.checks if c.test.passed and not c.passed]
    if unconfirmed:
        run.problems.append(problem("tests_unconfirmed", cells=", ".join(unconfirmed)))


STEPS = (load_submission, align_cells, skip_unstarted, autograde, distrust_outputs, note_execution, note_scripted, verify_evidence,
         award_points)


# -- one cell's points and message --------------------------------------------

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


WITHHELD = "（非公開テストの実行後に出たメッセージのため表示しません / not shown: printed after the hidden tests began）"


def _shown(run: ExerciseRun, test_id: str, text: str, own: bool = False) -> str:
    """Kernel-made text (an exception's value) as the report may show it for this test cell. Once a hidden test
    has run, student code may have seen it (a pre_run_cell hook) and may carry it, encoded, in an exception, or in
    a request the fixture server's error then quotes: from the first hidden test cell on, the report shows only
    text the instructor wrote (found verbatim in the source notebook) and, for an API error, its status and code.
    The full text stays in grade.json and feedback.html, for TAs. The feedback tier has no hidden tests.
    own: the test cell's own error (it ran the hidden test's code); else an error of a cell above it, which ran
    before the first hidden test when this test is that first one."""
    if not text or not _after_hidden(run, test_id, own):
        return text
    if text.strip() in "\n".join(cell_text(c) for c in run.source_nb.cells):
        return text
    return _api_error(run, text) or WITHHELD


def _api_error(run: ExerciseRun, text: str) -> str | None:
    """"Error code: 400 (NO_MATCHING_FIXTURE)" when the text is how the OpenAI client words an answer of the
    fixture server's (whose message may quote the request: it is not repeated)."""
    for entry in run.log:
        response, status = entry.response, entry.status
        if not isinstance(response, dict) or status < 400:
            continue
        error = response.get("error")
        message = response.get("message") or (error.get("message") if isinstance(error, dict) else None)
        if text.strip() in {f"Error code: {status} - {said}" for said in (response, message) if said}:
            code = response.get("error_code") or (error.get("code") if isinstance(error, dict) else None)
            return f"Error code: {status} ({code})（詳細は TA が確認できます / details: ask a TA）"
    return None


def _after_hidden(run: ExerciseRun, test_id: str, inclusive: bool) -> bool:
    """Whether this test cell runs after (inclusive: at or after) the first cell holding hidden tests."""
    mark = run.tier.hidden_tests_mark
    if not mark:
        return False
    order = [grade_id(c) for c in run.autograded.notebook.cells]
    hidden = [grade_id(c) for c in run.source_nb.cells if mark in cell_text(c)]
    first = min((order.index(g) for g in hidden if g in order), default=None)
    return first is not None and test_id in order and (order.index(test_id) >= first if inclusive
                                                         else order.index(test_id) > first)


def _failed_test_message(run: ExerciseRun, result) -> str:
    """Why a test failed, naming the implementation cell above it when that cell raised, and the earlier
    section's error when a name it should have defined is missing (a crash cascade)."""
    cause = [(where, ename, _shown(run, result.grade_id, evalue))
             for where, ename, evalue in run.autograded.errors_before(result.grade_id)]
    if cause and cause[0][1] not in (KERNEL_DIED, NOT_RUN):
        where, ename, evalue = cause[0]
        if ename == "NotImplementedError":
            message = f"実装セル {where} がまだ実装されていません（NotImplementedError）。"
        else:
            message = f"実装セル {where} でエラーが発生しました: {ename}: {_first_line(evalue)}"
    else:
        errors = [(e, _shown(run, result.grade_id, v, own=True)) for e, v in result.errors] or [("AssertionError", "")]
        ename = errors[0][0]
        message = _test_message(errors)
    if ename == "NameError":
        message += _earlier_cause(run, result.grade_id)
    return message


def _earlier_cause(run: ExerciseRun, grade_id: str) -> str:
    """The earlier error that left a name undefined, if any: the cell to fix first."""
    above = run.autograded.error_above(grade_id)
    if not above or above[1] in (KERNEL_DIED, NOT_RUN):
        return ""
    where, ename, evalue = above
    evalue = _shown(run, grade_id, evalue)
    return (f"（原因は前のセル {where} のエラー {ename}: {_first_line(evalue, 160)} で、そこで定義されるはずの名前が"
            f"ありません。先に {where} を直してください。）")


def _evidence_of(run: ExerciseRun, cell) -> tuple[list[EvidenceOutcome], bool]:
    """The cell's evidence verdicts as reported, and whether every required one was given."""
    required = cell.evidence if run.tier.verifies_evidence else ()
    given: list[tuple[str, Verdict]] = [(n, run.verdicts[n]) for n in required if n in run.verdicts]
    return [EvidenceOutcome(n, v.passed, v.message) for n, v in given], len(given) == len(required)


def _cell_result(run: ExerciseRun, cell) -> CheckResult:
    result = run.autograded.cells.get(cell.grade_id) if run.autograded else None
    evidence, complete = _evidence_of(run, cell)
    test = TestOutcome(bool(result and result.passed),
                       f"{result.errors[0][0]}: {result.errors[0][1]}" if result and result.errors else None)
    failed_evidence = [e for e in evidence if not e.passed]
    if result is None:
        message = "このセルは採点されませんでした。"
    elif not result.passed:
        message = _failed_test_message(run, result)
    elif failed_evidence:
        message = failed_evidence[0].message
    else:
        notes = [e.message for e in evidence if e.message != "OK"]  # e.g. the measured gozaru rate
        message = run.tier.passed_message + "".join(f"（{n}）" for n in notes)
    passed = test.passed and not failed_evidence and complete
    return CheckResult(cell.grade_id, cell.points if passed else 0.0, cell.points, passed, message, test,
                       tuple(evidence))


def _unscored(cell, problems: list[Problem]) -> CheckResult:
    reason = next(p.message_ja for p in problems if p.fatal)
    return CheckResult(cell.grade_id, 0.0, cell.points, False, reason, TestOutcome(False), ())


# -- one exercise, one submission ---------------------------------------------

def grade_exercise(exercise: Exercise, submission_dir: Path, work_dir: Path, cassettes, *, course: Course, tier: Tier,
                   profile: Profile, sandbox: bool, cell_timeout_s: int | None = None,
                   adapter: tuple[str | None, Problem | None] = (None, None), render_feedback: bool = True) -> ExerciseRun:
    """adapter: (the folder this exercise evaluates, the problem saying where it came from)."""
    adapter_dir, adapter_note = adapter
    run = ExerciseRun(
        exercise=exercise,
        submission_dir=Path(submission_dir),
        work_dir=work_dir,
        source_nb=nbformat.read(tier.source_notebook(exercise), as_version=4),
        release_nb=nbformat.read(RELEASE_DIR / exercise.id / exercise.notebook, as_version=4),
        cassettes=cassettes,
        cell_timeout_s=cell_timeout_s or course.cell_limit_s(exercise.id),
        course=course,
        profile=profile,
        tier=tier,
        sandboxed=sandbox,
        adapter_dir=adapter_dir,
        render_feedback=render_feedback,
    )
    if adapter_note:
        run.problems.append(adapter_note)
    run.verifier = tier.verifier(run.setup()) if tier.verifier else None
    try:
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
    finally:
        if run.verifier:
            run.verifier.close()
    if run.stopped:
        run.checks = [_unscored(cell, run.problems) for cell in exercise.cells]
    return run


def gradable_exercises(course: Course, requested=None, tier: Tier = FEEDBACK) -> list[Exercise]:
    """The requested exercises (default: every one the tier has source notebooks for); UsageError for unknown ids."""
    ids = requested or [e for e in course.exercises if (tier.source_dir / e).is_dir()]
    unknown = [e for e in ids if e not in course.exercises]
    if unknown:
        raise UsageError(f"unknown exercise(s): {', '.join(unknown)}")
    return [course.exercises[e] for e in ids]


def grade_submission(submission_dir: Path, exercises=None, *, tier: Tier = FEEDBACK, profile: Profile | None = None,
                     cell_timeout_s: int | None = None, sandbox: bool | None = None,
                     on_graded: Callable[[ExerciseRun], None] | None = None,
                     render_feedback: bool = True, course: Course) -> SubmissionGrade:
    """Grade every requested exercise of one student's repository; never raises for bad input.

    course: the course to grade for (course.toml, read by the entry point), passed down to every step.

    sandbox: None means the tier's default. The sandboxed grader refuses to start when the sandbox
    is unavailable, and any grader when the kernel cannot start (GraderUnavailable): it never grades
    notebooks it could not run. on_graded(run) is called while the run's work folder still exists
    (the caller keeps what it wants of it: feedback HTML, the MLflow store, the request log);
    render_feedback=False skips the feedback HTML nobody will read.
    """
    limit_cpu_threads(course.cpu_threads)
    sandbox = tier.sandboxed if sandbox is None else sandbox
    profile = profile or course.profile()
    preflight(sandbox, Limits.from_course(course))
    cassettes = load_cassettes(CASSETTE_DIR)  # loaded once, before any student code runs
    runs = []
    with AdapterHandoff(profile) as handoff:
        for exercise in gradable_exercises(course, exercises, tier):
            with temporary_folder(prefix=f"grade-{exercise.id}-") as work:  # removed whatever the kernel left
                run = grade_exercise(exercise, submission_dir, work, copy.deepcopy(cassettes), course=course, tier=tier,
                                     profile=profile, sandbox=sandbox, cell_timeout_s=cell_timeout_s,
                                     adapter=handoff.adapter_for(exercise), render_feedback=render_feedback)
                try:
                    handoff.keep_from(run)
                    if on_graded:
                        on_graded(run)
                finally:
                    if run.autograded:  # nbgrader's process, perhaps still rendering the page nobody read
                        run.autograded.close()
                runs.append(run)
    return SubmissionGrade(Path(submission_dir), runs, tier, sandbox, profile.name)
