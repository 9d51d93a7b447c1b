"""nbgrader autograde and feedback in a private, throwaway course directory."""
from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

import nbformat

from ..config import REPO_ROOT, Course, Exercise
from ..notebook import cell_errors, error_outputs, grade_id, is_test
from ..protocol import ChildResult, ExitCode, JobGrades, NbgraderJob
from ..sandbox import Limits, SandboxPolicy, SandboxUnavailable, probe, write_kernelspec
from .environment import our_tools_first
from .kernel_launch import LAUNCH_FILE, KernelLaunch

STUDENT = "student"
GRADING_CONFIG = """
# Added by the grader: our Execute with the course kernel (sandboxed in official grading), started first by
# nbgrader's process from kernel_launch.json, in its own work folder over IPC sockets; a per-cell timeout;
# feedback without hidden tests or live student HTML.
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, GetGrades, IgnorePattern,
                                    LimitOutput, SaveAutoGrades)
from coursegrader.execution.feedback_filters import RedactHiddenTests
from coursegrader.execution.resilient_execute import ResilientExecute

c.ResilientExecute.timeout = {cell_timeout}
c.ResilientExecute.output_kb = {output_kb}
c.ResilientExecute.startup_timeout = {startup_timeout}
c.ResilientExecute.kernel_launch_file = {kernel_launch_file!r}
c.ResilientExecute.result_file = {result_file!r}
c.Autograde.autograde_preprocessors = [ResilientExecute, IgnorePattern, ClearMetadataPreprocessor,
                                       LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.GenerateFeedback.preprocessors = [GetGrades, RedactHiddenTests, SanitizeHTML, CSSHTMLHeaderPreprocessor]
c.HTMLExporter.sanitize_html = True
"""

# Error names ResilientExecute writes into cells that did not run to the end
KERNEL_DIED, NOT_RUN = "DeadKernelError", "CellNotRun"


class AutogradeTimeout(Exception):
    pass


class AutogradeFailed(Exception):
    pass


@dataclass
class CellResult:
    grade_id: str
    auto_score: float
    max_score: float
    errors: list[tuple[str, str]] = field(default_factory=list)  # (ename, evalue)

    @property
    def passed(self) -> bool:
        return self.max_score > 0 and self.auto_score >= self.max_score and not self.errors


class FeedbackRendering:
    """nbgrader's process once it wrote the grades, rendering the feedback HTML (html; None: not asked for) while
    the grader verifies; no student code runs in it any more. Waited for only where the page is read, and
    ended (its whole process group) when the exercise's grading ends."""

    def __init__(self, proc: subprocess.Popen, html: Path | None, deadline: float):
        self.proc, self.html, self.deadline = proc, html, deadline

    def wait(self) -> Path | None:
        """The page, once the process is done; None where it failed or ran past the exercise's time."""
        if self.html is None:
            return None
        try:
            self.proc.wait(timeout=max(0.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        self.close()
        return self.html if self.proc.returncode == 0 and self.html.exists() else None

    def close(self) -> None:
        _kill_group(self.proc)


@dataclass
class AutogradeResult:
    cells: dict[str, CellResult]
    notebook: nbformat.NotebookNode
    feedback: FeedbackRendering | None
    work_dir: Path  # the folder the kernel ran in, with whatever it saved (untrusted files)

    @property
    def feedback_html(self) -> Path | None:
        """The feedback page, once nbgrader's process has rendered it (this waits); None without one."""
        return self.feedback.wait() if self.feedback else None

    def close(self) -> None:
        """End nbgrader's process (before the course folder goes)."""
        if self.feedback:
            self.feedback.close()

    def errors_by_cell(self) -> dict[str, list[tuple[str, str]]]:
        return {gid: errors for gid, errors in cell_errors(self.notebook).items() if errors}

    def errors_before(self, wanted: str) -> list[tuple[str, str, str]]:
        """(cell, ename, evalue) of errors in the cells between the previous test cell and this one."""
        found = []
        for cell in self.notebook.cells:
            if grade_id(cell) == wanted:
                return found
            if is_test(cell):  # only the implementation cells since the previous test count
                found = []
                continue
            found += [(grade_id(cell) or "(your cell)", ename, evalue) for ename, evalue in error_outputs(cell)]
        return []

    def error_above(self, wanted: str) -> tuple[str, str, str] | None:
        """(cell, ename, evalue) of the first error in a cell above the previous test cell: an earlier
        section that failed, whose names later cells could not use."""
        earlier: list[tuple[str, str, str]] = []
        region: list[tuple[str, str, str]] = []
        for cell in self.notebook.cells:
            if grade_id(cell) == wanted:
                return earlier[0] if earlier else None
            errors = [(grade_id(cell) or "(your cell)", ename, evalue) for ename, evalue in error_outputs(cell)]
            if is_test(cell):
                earlier += region + errors
                region = []
            else:
                region += errors
        return None


class KernelWorkspace:
    """Where one exercise's kernel runs: its own work folder and HOME (the only places it may write),
    a runtime folder for its IPC sockets, and, when sandboxed, the sandbox around all of it."""

    def __init__(self, root: Path, sandboxed: bool, readable: list[Path], limits: Limits):
        self.root, self.limits = Path(root), limits
        self.work_dir, self.home, self.runtime = self.root / "kernel", self.root / "home", self.root / "rt"
        for folder in (self.work_dir, self.home, self.runtime):
            folder.mkdir(parents=True)
        self.sandboxed = sandboxed
        self.readable = list(readable)
        self.forward: tuple[int, Path] | None = None

    def connect(self, server) -> None:
        """A sandbox has no network: the kernel reaches the fixture server's port through a Unix socket."""
        if self.sandboxed:
            self.forward = (server.port, server.serve_unix(self.root / "fmapi.sock"))

    def policy(self) -> SandboxPolicy:
        return SandboxPolicy(self.work_dir, self.limits, writable=[self.home, self.runtime], readable=self.readable,
                             forward=self.forward)

    def install_kernelspec(self, kernel_name: str) -> dict[str, str]:
        """The course kernel as a kernelspec of this run (it shadows the installed one); the env that finds it."""
        spec_file = self.policy().write(self.root / "policy.json") if self.sandboxed else None
        write_kernelspec(self.root / "jupyter" / "kernels", kernel_name, spec_file)
        return {"JUPYTER_PATH": str(self.root / "jupyter"), "JUPYTER_RUNTIME_DIR": str(self.runtime)}


class NbgraderCourse:
    """One exercise's temporary nbgrader course: source, gradebook, submission (invisible to the kernel)."""

    def __init__(self, root: Path, exercise: Exercise, source_nb: nbformat.NotebookNode, cell_timeout_s: int,
                 kernel: KernelWorkspace, course: Course):
        self.root = Path(root)
        self.exercise, self.course = exercise, course
        self.kernel = kernel
        (self.root / "source" / exercise.id).mkdir(parents=True)
        nbformat.write(source_nb, self.root / "source" / exercise.id / exercise.notebook)
        shutil.copy(REPO_ROOT / "nbgrader_config.py", self.root / "nbgrader_config.py")
        with open(self.root / "nbgrader_config.py", "a", encoding="utf-8") as fh:
            fh.write(GRADING_CONFIG.format(cell_timeout=cell_timeout_s, startup_timeout=course.kernel_start_timeout_s,
                                           output_kb=course.limits.cell_output_kb,
                                           kernel_launch_file=str(self.root / LAUNCH_FILE),
                                           result_file=str(self.root / NbgraderJob.RESULT_FILE)))

    def autograde(self, submitted_nb: nbformat.NotebookNode, kernel_env: dict[str, str], timeout_s: float,
                  feedback: bool = True, started: Callable[[], None] | None = None,
                  preload: list[str] = ()) -> AutogradeResult:
        """kernel_env: the kernel's environment, and only the kernel's (nbgrader's own process runs with
        a HOME and Jupyter folders of its own, which the kernel cannot write: it renders the feedback
        after the kernel ran). feedback: also render the feedback HTML (only where someone reads it).
        started: called once nbgrader's process runs (the caller's work meanwhile). preload: modules the
        kernel imports as it starts, while nbgrader prepares (the release notebook's, never hidden code's)."""
        ex = self.exercise.id
        dest = self.root / "submitted" / STUDENT / ex
        dest.mkdir(parents=True)
        nbformat.write(submitted_nb, dest / self.exercise.notebook)
        KernelLaunch(self.course.kernel, str(self.kernel.work_dir), kernel_env, ipc_prefix=str(self.kernel.runtime / "k"),
                     connection_file=str(self.kernel.runtime / "kernel.json"), preload=tuple(preload)
                     ).write(self.root / LAUNCH_FILE)
        deadline = time.monotonic() + timeout_s
        graded_r, graded_w = os.pipe()
        job = NbgraderJob(str(self.root), ex, STUDENT, feedback, str(grader_cache_dir()), graded_w)
        with open(self.root / job.LOG_FILE, "w", encoding="utf-8") as log:
            proc = subprocess.Popen(
                job.write(), cwd=self.root, env=self._job_env(kernel_env), stdout=log, stderr=subprocess.STDOUT,
                process_group=0, pass_fds=(graded_w,),
            )  # in the grader's session: Linux shares the CPU between sessions, so the kernel keeps a core
        os.close(graded_w)
        html = self.root / "feedback" / STUDENT / ex / self.exercise.notebook.replace(".ipynb", ".html")
        rendering = FeedbackRendering(proc, html if feedback else None, deadline)
        try:
            return self._results(job, rendering, graded_r, timeout_s, started)
        except subprocess.TimeoutExpired:
            rendering.close()
            raise AutogradeTimeout(timeout_s) from None
        except BaseException:
            rendering.close()  # nothing the student started may outlive its grading
            raise
        finally:
            os.close(graded_r)

    def _results(self, job: NbgraderJob, rendering: FeedbackRendering, graded_pipe: int, timeout_s: float,
                 started: Callable[[], None] | None) -> AutogradeResult:
        """nbgrader's results once its process says they are written; why not (its ChildResult), where it ended
        without."""
        if started:
            started()
        if not _graded(graded_pipe, timeout_s, job.GRADED):
            rendering.proc.wait(timeout=max(0.0, rendering.deadline - time.monotonic()))
            said = ChildResult.read(job.path(job.RESULT_FILE))
            if said is not None and said.exit == ExitCode.GRADER_UNAVAILABLE:  # nothing of the student's ran
                raise GraderUnavailable(said.reason)
            raise AutogradeFailed(said.reason if said is not None else
                                  f"nbgrader's process ended with exit status {rendering.proc.returncode} "
                                  f"and said nothing (see {job.LOG_FILE})")
        ex = self.exercise.id
        try:
            graded = nbformat.read(self.root / "autograded" / STUDENT / ex / self.exercise.notebook, as_version=4)
            scores = JobGrades.read(job.path(job.GRADES_FILE)).scores
        except (OSError, ValueError) as err:
            raise AutogradeFailed(f"nbgrader's results could not be read: {type(err).__name__}: {err}") from err
        errors = cell_errors(graded)
        cells = {gid: CellResult(gid, auto, top, errors.get(gid, [])) for gid, (auto, top) in scores.items()}
        return AutogradeResult(cells, graded, rendering, self.kernel.work_dir)

    def _job_env(self, kernel_env: dict[str, str]) -> dict[str, str]:
        """nbgrader's process: the grader's PATH and locale, its own HOME and Jupyter data and config
        folders (never the kernel's: nbconvert looks for templates and config there), the kernelspec."""
        own = self.root / "grader-home"
        env = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TZ") if k in os.environ}
        env.update(PATH=our_tools_first(os.environ.get("PATH")), HOME=str(own),
                   JUPYTER_CONFIG_DIR=str(own / "config"), JUPYTER_DATA_DIR=str(own / "data"),
                   JUPYTER_PATH=kernel_env["JUPYTER_PATH"], JUPYTER_RUNTIME_DIR=kernel_env["JUPYTER_RUNTIME_DIR"],
                   PYTHONPATH=str(REPO_ROOT))
        return env


def grader_cache_dir() -> Path:
    """The grader's own cache (the empty gradebook template), never a kernel's HOME."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "coursegrader"


def _graded(pipe: int, timeout_s: float, word: bytes) -> bool:
    """Whether nbgrader's process said it wrote the grades before it ended or the time ran out."""
    readable, _, _ = select.select([pipe], [], [], timeout_s)
    if not readable:
        raise subprocess.TimeoutExpired(NbgraderJob.MODULE, timeout_s)
    return os.read(pipe, len(word)) == word


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


class GraderUnavailable(RuntimeError):
    """The grader cannot run notebooks here (no sandbox, or the kernel does not start): grade nothing."""


def preflight(sandboxed: bool, limits: Limits) -> None:
    """Raise GraderUnavailable unless the sandbox works here, with these limits. (The course kernel's own start is
    checked where it first starts, in ResilientExecute: a kernel that does not start stops grading.)"""
    if sandboxed:
        try:
            probe(limits)
        except SandboxUnavailable as err:
            raise GraderUnavailable(str(err)) from err
