"""Reading a student's notebook and restoring the cells they must not change."""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from ..notebook import grade_id, is_protected, is_solution
from ..problems import Problem, problem
from .untrusted import read_regular

MAX_NOTEBOOK_BYTES = 64 << 20


def find_notebook(submission_dir: Path, exercise_id: str, notebook: str) -> Path:
    return Path(submission_dir) / exercise_id / notebook


def load_notebook(path: Path) -> tuple[nbformat.NotebookNode | None, Problem | None]:
    if not path.is_file():
        return None, problem("notebook_missing", path=f"{path.parent.name}/{path.name}")
    try:
        nb = nbformat.reads(read_regular(path, MAX_NOTEBOOK_BYTES).decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # noqa: BLE001 - any parse failure is the student's file, not ours
        detail = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        return None, problem("notebook_malformed", path=f"{path.parent.name}/{path.name}", detail=detail)
    return nb, None


def restore_protected_cells(student_nb, release_nb) -> tuple[nbformat.NotebookNode, list[Problem]]:
    """Put back deleted protected cells and reset edited ones to the release version.

    The student's own extra cells stay where they are. (nbgrader's OverwriteCells
    then restores hidden tests from the private gradebook.)
    """
    nb = copy.deepcopy(student_nb)
    by_id = {}
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid and gid not in by_id:
            by_id[gid] = cell
    deleted, edited = [], []
    insert_at = 0
    for ref in release_nb.cells:
        gid = grade_id(ref)
        current = by_id.get(gid)
        if current is None:
            if is_protected(ref) or is_solution(ref):
                if is_protected(ref) and ref.cell_type == "code":
                    deleted.append(gid)
                nb.cells.insert(insert_at, copy.deepcopy(ref))
                insert_at += 1
            continue
        index = next(i for i, c in enumerate(nb.cells) if c is current)
        if is_protected(ref):
            if current.source != ref.source or current.cell_type != ref.cell_type:
                if ref.cell_type == "code":
                    edited.append(gid)
            nb.cells[index] = copy.deepcopy(ref)
        insert_at = index + 1
    problems = []
    if deleted:
        problems.append(problem("cell_restored", cells=", ".join(deleted)))
    if edited:
        problems.append(problem("cell_edited", cells=", ".join(edited)))
    return nb, problems
