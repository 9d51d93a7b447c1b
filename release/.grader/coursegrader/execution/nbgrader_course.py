"""nbgrader autograde and feedback in a private, throwaway course directory."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbgrader.api import Gradebook

from ..config import REPO_ROOT, Exercise, load_course
from ..notebook import cell_errors, error_outputs, grade_id, is_test
from ..sandbox import SandboxPolicy, SandboxUnavailable, probe, write_kernelspec
from .environment import kernel_env

STUDENT = "student"
GRADING_CONFIG = """
# Added by the grader: our Execute with the course kernel (sandboxed in official grading) in its own
# work folder over IPC sockets, a per-cell timeout, and feedback without hidden tests or live student HTML.
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, GetGrades, IgnorePattern,
                                    LimitOutput, SaveAutoGrades)
from coursegrader.execution.feedback_filters import RedactHiddenTests
from coursegrader.execution.resilient_execute import ResilientExecute

c.ResilientExecute.timeout = {cell_timeout}
c.ResilientExecute.kernel_name = {kernel_name!r}
c.ResilientExecute.kernel_cwd = {kernel_cwd!r}
c.KernelManager.transport = "ipc"
c.KernelManager.ip = {ipc_prefix!r}
c.KernelManager.connection_file = {connection_file!r}
c.Autograde.autograde_preprocessors = [ResilientExecute, IgnorePattern, ClearMetadataPreprocessor,
                                       LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.GenerateFeedback.preprocessors = [GetGrades, RedactHiddenTests, SanitizeHTML, CSSHTMLHeaderPreprocessor]
c.HTMLExporter.sanitize_html = True
"""


GRADER_SIDE_FAILURE = 4  # nbgrader_job's status when generate_assignment failed


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


@dataclass
class AutogradeResult:
    cells: dict[str, CellResult]
    notebook: nbformat.NotebookNode
    feedback_html: Path | None
    work_dir: Path  # the folder the kernel ran in, with whatever it saved (untrusted files)

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


class KernelPlace:
    """Where one exercise's kernel runs: its own work folder and HOME (the only places it may write),
    a runtime folder for its IPC sockets, and, when sandboxed, the sandbox around all of it."""

    def __init__(self, root: Path, sandboxed: bool, readable: list[Path]):
        self.root = Path(root)
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
        return SandboxPolicy(self.work_dir, writable=[self.home, self.runtime], readable=self.readable,
                             forward=self.forward)

    def install_kernelspec(self) -> dict[str, str]:
        """The course kernel as a kernelspec of this run (it shadows the installed one); the env that finds it."""
        spec_file = self.policy().write(self.root / "policy.json") if self.sandboxed else None
        write_kernelspec(self.root / "jupyter" / "kernels", load_course().kernel, spec_file)
        return {"JUPYTER_PATH": str(self.root / "jupyter"), "JUPYTER_RUNTIME_DIR": str(self.runtime)}


class NbgraderCourse:
    """One exercise's temporary nbgrader course: source, gradebook, submission (invisible to the kernel)."""

    def __init__(self, root: Path, exercise: Exercise, source_nb: nbformat.NotebookNode, cell_timeout_s: int,
                 kernel: KernelPlace):
        self.root = Path(root)
        self.exercise = exercise
        self.kernel = kernel
        (self.root / "source" / exercise.id).mkdir(parents=True)
        nbformat.write(source_nb, self.root / "source" / exercise.id / exercise.notebook)
        shutil.copy(empty_gradebook(), self.root / "gradebook.db")
        shutil.copy(REPO_ROOT / "nbgrader_config.py", self.root / "nbgrader_config.py")
        with open(self.root / "nbgrader_config.py", "a", encoding="utf-8") as fh:
            fh.write(GRADING_CONFIG.format(cell_timeout=cell_timeout_s, kernel_name=load_course().kernel,
                                           kernel_cwd=str(kernel.work_dir), ipc_prefix=str(kernel.runtime / "k"),
                                           connection_file=str(kernel.runtime / "kernel.json")))

    def autograde(self, submitted_nb: nbformat.NotebookNode, env: dict[str, str], timeout_s: float,
                  feedback: bool = True) -> AutogradeResult:
        """feedback: also render the feedback HTML (only worth its time where someone reads it)."""
        ex = self.exercise.id
        dest = self.root / "submitted" / STUDENT / ex
        dest.mkdir(parents=True)
        nbformat.write(submitted_nb, dest / self.exercise.notebook)
        proc = subprocess.Popen(
            [sys.executable, "-m", "coursegrader.execution.nbgrader_job", str(self.root), ex, STUDENT,
             "feedback" if feedback else "no-feedback"],
            cwd=self.root, env={**env, **self.kernel.install_kernelspec(), "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AutogradeTimeout(timeout_s)
        finally:
            _kill_group(proc)  # nothing the student started may outlive its grading
        graded_path = self.root / "autograded" / STUDENT / ex / self.exercise.notebook
        if proc.returncode == GRADER_SIDE_FAILURE:  # nbgrader failed before any student code ran
            raise GraderUnavailable(f"nbgrader could not prepare {ex}: {_last_error_line(output)}")
        if proc.returncode != 0 or not graded_path.exists():
            raise AutogradeFailed(_last_error_line(output))
        graded = nbformat.read(graded_path, as_version=4)
        html = self.root / "feedback" / STUDENT / ex / self.exercise.notebook.replace(".ipynb", ".html")
        return AutogradeResult(self._read_gradebook(graded), graded, html if html.exists() else None, self.kernel.work_dir)

    def _read_gradebook(self, graded_nb) -> dict[str, CellResult]:
        errors = cell_errors(graded_nb)
        results = {}
        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gb:
            nb = gb.find_submission_notebook(self.exercise.notebook_name, self.exercise.id, STUDENT)
            for grade in nb.grades:
                results[grade.name] = CellResult(
                    grade.name, float(grade.auto_score or 0), float(grade.max_score or 0), errors.get(grade.name, [])
                )
        return results


@lru_cache(maxsize=None)
def empty_gradebook() -> Path:
    """An empty nbgrader gradebook with its tables and alembic version, made once per nbgrader version
    and copied for each exercise (a new one costs seconds: nbgrader asks `alembic heads` in a subprocess)."""
    import nbgrader

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "coursegrader"
    path = cache / f"empty-gradebook-nbgrader-{nbgrader.__version__}.db"
    if not path.is_file():
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError:  # no writable cache: one per process
            cache = Path(tempfile.mkdtemp(prefix="coursegrader-cache-"))
            path = cache / path.name
        partial = cache / f".{path.name}.{os.getpid()}"
        with Gradebook(f"sqlite:///{partial}"):
            pass
        os.replace(partial, path)  # atomic: a grader running alongside sees the whole file or none
    return path


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _last_error_line(output: str) -> str:
    lines = [l for l in output.splitlines() if l.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line.strip()[:300]
    return (lines[-1] if lines else "unknown error")[:300]


class GraderUnavailable(RuntimeError):
    """The grader cannot run notebooks here (no sandbox, or the kernel does not start): grade nothing."""


def preflight(sandboxed: bool) -> None:
    """Start the course kernel once, as grading will, and run one cell; raise GraderUnavailable if that fails."""
    if sandboxed:
        try:
            probe()
        except SandboxUnavailable as err:
            raise GraderUnavailable(str(err)) from err
    with tempfile.TemporaryDirectory(prefix="grade-preflight-") as tmp:
        place = KernelPlace(Path(tmp), sandboxed, [])
        place.install_kernelspec()
        name = load_course().kernel
        km = KernelManager(kernel_name=name, transport="ipc", ip=str(place.runtime / "k"),
                           kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(Path(tmp) / "jupyter" / "kernels")]))
        km.connection_file = str(place.runtime / "kernel-preflight.json")
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
        try:
            NotebookClient(nb, km=km, timeout=60, startup_timeout=60).execute(
                env=kernel_env({}, place.home), cwd=str(place.work_dir))
            printed = "".join(o.get("text", "") for o in nb.cells[0].outputs).strip()
        except Exception as err:  # noqa: BLE001 - any failure to start is the grader's, reported whole
            raise GraderUnavailable(f"the grading kernel ({sys.executable} -m ipykernel_launcher"
                                    f"{', sandboxed' if sandboxed else ''}) did not start: {type(err).__name__}: {err}") from err
        finally:
            with contextlib.suppress(Exception):  # a kernel that never started has nothing to shut down
                km.shutdown_kernel(now=True)
        if printed != sys.executable:
            raise GraderUnavailable(f"the grading kernel ran {printed or 'nothing'}, not {sys.executable}")
