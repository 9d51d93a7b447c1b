"""nbgrader autograde and feedback in a private, throwaway course directory."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from ..config import REPO_ROOT, Exercise

STUDENT = "student"
GRADING_CONFIG = """
# Added by the grader: our Execute, a per-cell timeout, and feedback without hidden tests.
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, GetGrades, IgnorePattern,
                                    LimitOutput, SaveAutoGrades)
from autograder.grade.feedback_filters import RedactHiddenTests
from autograder.grade.resilient_execute import ResilientExecute

c.ResilientExecute.timeout = {cell_timeout}
c.Autograde.autograde_preprocessors = [ResilientExecute, IgnorePattern, ClearMetadataPreprocessor,
                                       LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.GenerateFeedback.preprocessors = [GetGrades, RedactHiddenTests, CSSHTMLHeaderPreprocessor]
"""


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
    work_dir: Path  # the folder the notebook ran in, with whatever it saved

    def errors_by_cell(self) -> dict[str, list[tuple[str, str]]]:
        return {gid: errors for gid, errors in cell_errors(self.notebook).items() if errors}

    def errors_before(self, grade_id: str) -> list[tuple[str, str, str]]:
        """(cell, ename, evalue) of errors in the cells between the previous test cell and this one."""
        found = []
        for cell in self.notebook.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade_id") == grade_id:
                return found
            if meta.get("grade"):  # only the implementation cells since the previous test count
                found = []
                continue
            for o in cell.get("outputs", []):
                if o.get("output_type") == "error":
                    found.append((meta.get("grade_id") or "(your cell)", o.get("ename", ""), str(o.get("evalue", ""))))
        return []


class CourseSandbox:
    """One exercise's temporary nbgrader course: source, gradebook, submission."""

    def __init__(self, root: Path, exercise: Exercise, source_nb: nbformat.NotebookNode, cell_timeout_s: int):
        self.root = Path(root)
        self.exercise = exercise
        (self.root / "source" / exercise.id).mkdir(parents=True)
        nbformat.write(source_nb, self.root / "source" / exercise.id / exercise.notebook)
        shutil.copy(REPO_ROOT / "nbgrader_config.py", self.root / "nbgrader_config.py")
        with open(self.root / "nbgrader_config.py", "a", encoding="utf-8") as fh:
            fh.write(GRADING_CONFIG.format(cell_timeout=cell_timeout_s))

    def autograde(self, submitted_nb: nbformat.NotebookNode, env: dict[str, str], timeout_s: float) -> AutogradeResult:
        ex = self.exercise.id
        dest = self.root / "submitted" / STUDENT / ex
        dest.mkdir(parents=True)
        nbformat.write(submitted_nb, dest / self.exercise.notebook)
        proc = subprocess.Popen(
            [sys.executable, "-m", "autograder.grade.nbgrader_job", str(self.root), ex, STUDENT],
            cwd=self.root, env={**env, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AutogradeTimeout(timeout_s)
        finally:
            _kill_group(proc)  # nothing the student started may outlive its grading
        graded_path = self.root / "autograded" / STUDENT / ex / self.exercise.notebook
        if proc.returncode != 0 or not graded_path.exists():
            raise AutogradeFailed(_last_error_line(output))
        graded = nbformat.read(graded_path, as_version=4)
        html = self.root / "feedback" / STUDENT / ex / self.exercise.notebook.replace(".ipynb", ".html")
        return AutogradeResult(self._read_gradebook(graded), graded, html if html.exists() else None, graded_path.parent)

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


def cell_errors(nb) -> dict[str, list[tuple[str, str]]]:
    """grade_id -> (ename, evalue) of each error output, for every cell with a grade_id."""
    return {
        cell["metadata"]["nbgrader"]["grade_id"]: [(o.get("ename", ""), str(o.get("evalue", "")))
                                                   for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        for cell in nb.cells if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    }


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
