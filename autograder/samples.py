"""Sample submissions, built on demand from source/ and release/ and a catalog of edits.

fixtures/submissions/catalog.toml describes each sample as a base (the release,
or the release with the source solutions filled in) plus edits, and the checks
it is expected to fail. Building them keeps solution text out of fixtures/.
"""
from __future__ import annotations

import copy
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from coursegrader.config import RELEASE_DIR, REPO_ROOT, SOURCE_DIR, SUBMISSIONS_DIR, Course, Exercise
from coursegrader.notebook import find_cell, grade_id, is_solution

CATALOG = SUBMISSIONS_DIR / "catalog.toml"


class SampleError(ValueError):
    pass


@dataclass
class Sample:
    name: str
    description: str
    base: str
    exercises: list[str]
    edits: list[dict] = field(default_factory=list)
    expect_failed: list[str] | str = field(default_factory=list)
    expect_problems: dict[str, list[str]] = field(default_factory=dict)
    optional_problems: list[str] = field(default_factory=list)  # may or may not appear (timing-dependent)
    cell_timeout_s: int | None = None
    handful: bool = False  # one of the few `demo` grades by default (a first run in minutes)
    shape: str = "release"  # the editor's save it is graded in (tests/shapes.py: databricks, source_py, …)
    graded_cells: dict[str, frozenset[str]] = field(default_factory=dict)  # each exercise's (course.toml), by load_catalog

    def expected_failed(self, exercise_id: str) -> set[str]:
        cells = set(self.graded_cells[exercise_id])
        if self.expect_failed == "all":
            return cells
        return cells & set(self.expect_failed)


def load_catalog(course: Course, path: Path = CATALOG) -> dict[str, Sample]:
    """The samples of a catalog, each with the course's graded cells (what expected_failed reads)."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    graded_cells = {ex_id: frozenset(c.grade_id for c in ex.cells) for ex_id, ex in course.exercises.items()}
    samples = {}
    for name, spec in data.items():
        samples[name] = Sample(
            name=name,
            description=spec["description"],
            base=spec.get("base", "solution"),
            exercises=spec.get("exercises", [e for e in course.exercises if (SOURCE_DIR / e).is_dir()]),
            edits=spec.get("edits", []),
            expect_failed=spec.get("expect_failed", []),
            expect_problems=spec.get("expect_problems", {}),
            optional_problems=spec.get("optional_problems", []),
            cell_timeout_s=spec.get("cell_timeout_s"),
            handful=spec.get("handful", False),
            shape=spec.get("shape", "release"),
            graded_cells=graded_cells,
        )
    return samples


def solution_notebook(exercise: Exercise) -> nbformat.NotebookNode:
    """The release notebook with each solution cell taken from source (as a student would fill it)."""
    release = nbformat.read(RELEASE_DIR / exercise.id / exercise.notebook, as_version=4)
    source = nbformat.read(SOURCE_DIR / exercise.id / exercise.notebook, as_version=4)
    solutions = {grade_id(c): c.source for c in source.cells if is_solution(c)}
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if is_solution(cell):
            cell.source = solutions[grade_id(cell)]
    return nb


def _cell(nb, wanted: str):
    cell = find_cell(nb, wanted)
    if cell is None:
        raise SampleError(f"no cell {wanted}")
    return cell


def _apply(edit: dict, nbs: dict) -> None:
    ex = edit["exercise"]
    if "link" in edit:  # the notebook becomes a link or special file (written by build_sample)
        nbs[ex] = ("link", edit["link"], edit.get("target", ""))
    elif "corrupt" in edit:  # write the notebook as broken text
        nbs[ex] = edit["corrupt"]
    elif "delete_notebook" in edit:
        nbs[ex] = None
    elif "delete_cell" in edit:
        nbs[ex].cells.remove(_cell(nbs[ex], edit["delete_cell"]))
    elif "copy_cell" in edit:  # a plain copy of a cell's source (no metadata), before another cell
        copied = nbformat.v4.new_code_cell(_cell(nbs[ex], edit["copy_cell"]).source)
        nbs[ex].cells.insert(nbs[ex].cells.index(_cell(nbs[ex], edit["before"])), copied)
    elif "move_cell" in edit:  # a cell moved to just after another
        moved = _cell(nbs[ex], edit["move_cell"])
        nbs[ex].cells.remove(moved)
        nbs[ex].cells.insert(nbs[ex].cells.index(_cell(nbs[ex], edit["after"])) + 1, moved)
    elif "merge_code_cells" in edit:  # every code cell pasted into one
        code = [c.source for c in nbs[ex].cells if c.cell_type == "code"]
        nbs[ex].cells = [nbformat.v4.new_code_cell("\n\n".join(code))]
    elif "set_nbgrader" in edit:  # a cell's nbgrader metadata replaced, as a hand-edited file would have it
        _cell(nbs[ex], edit["cell"]).metadata["nbgrader"] = dict(edit["set_nbgrader"])
    elif "set_source" in edit:
        _cell(nbs[ex], edit["cell"]).source = edit["set_source"]
    elif "insert_before" in edit:
        cell = nbformat.v4.new_code_cell(edit["code"].replace("{repo}", str(REPO_ROOT)))
        nbs[ex].cells.insert(nbs[ex].cells.index(_cell(nbs[ex], edit["insert_before"])), cell)
    else:
        cell = _cell(nbs[ex], edit["cell"])
        old, new = edit["replace"]
        if old not in cell.source:
            raise SampleError(f"{ex}/{edit['cell']}: text to replace not found: {old[:60]!r}")
        cell.source = cell.source.replace(old, new.replace("{repo}", str(REPO_ROOT)), 1)


def build_sample(sample: Sample, dest: Path, course: Course) -> Path:
    """Write the sample as a student repository (<dest>/<ex>/<ex>.ipynb)."""
    if dest.exists():
        shutil.rmtree(dest)
    nbs = {}
    for ex in sample.exercises:
        exercise = course.exercises[ex]
        nbs[ex] = (solution_notebook(exercise) if sample.base == "solution"
                   else nbformat.read(RELEASE_DIR / ex / exercise.notebook, as_version=4))
    for edit in sample.edits:
        _apply(edit, nbs)
    for ex, nb in nbs.items():
        if nb is None:
            continue
        path = dest / ex / course.exercises[ex].notebook
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(nb, tuple):
            _write_link(path, *nb[1:])
        elif isinstance(nb, str):
            path.write_text(nb, encoding="utf-8")
        else:
            nbformat.write(nb, path)
    return dest


def _write_link(path: Path, kind: str, target: str) -> None:
    """An adversary's notebook: a symlink (to `target`, {repo} = this checkout), a hard link, a FIFO,
    or the exercise folder itself as a symlink."""
    import os

    target = target.replace("{repo}", str(REPO_ROOT))
    if kind == "symlink":
        path.symlink_to(target)
    elif kind == "folder_symlink":
        path.parent.rmdir()
        path.parent.symlink_to(target, target_is_directory=True)
    elif kind == "hardlink":
        os.link(target, path)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        raise SampleError(f"unknown link kind {kind!r}")
