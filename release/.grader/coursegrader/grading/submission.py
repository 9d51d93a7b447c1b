"""Reading a student's notebook (.ipynb from any editor, or Databricks's Source format) and aligning it with the release."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat

from ..problems import Both, Problem, problem
from .align import align, written_by_databricks
from .untrusted import read_regular

MAX_NOTEBOOK_BYTES = 64 << 20
SOURCE_HEADER, COMMAND_SEPARATOR = "# Databricks notebook source", "# COMMAND ----------"
MAGIC_PREFIX, TITLE_PREFIX = "# MAGIC ", "# DBTITLE "


def find_notebook(submission_dir: Path, exercise_id: str, notebook: str) -> Path:
    """<ex>/<ex>.ipynb, or, where only that is there, the Databricks Source format <ex>/<ex>.py."""
    path = Path(submission_dir) / exercise_id / notebook
    source = path.with_suffix(".py")
    if not os.path.lexists(path) and source.is_file() and not source.is_symlink():
        return source
    return path


def load_notebook(path: Path) -> tuple[nbformat.NotebookNode | None, Problem | None]:
    if not path.is_file():
        return None, problem("notebook_missing", path=f"{path.parent.name}/{path.with_suffix('.ipynb').name}")
    try:
        text = read_regular(path, MAX_NOTEBOOK_BYTES).decode("utf-8")
        nb = read_databricks_source(text) if path.suffix == ".py" else nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # noqa: BLE001 - any parse failure is the student's file, not ours
        detail = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        return None, problem("notebook_malformed", path=f"{path.parent.name}/{path.name}", detail=detail)
    return nb, None


def read_databricks_source(text: str) -> nbformat.NotebookNode:
    """A notebook in Databricks's Source format (File > Notebook format > Source): a `# Databricks notebook
    source` header, cells between `# COMMAND ----------` lines, magic cells (`%md`, `%pip`) as `# MAGIC` lines."""
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].strip() != SOURCE_HEADER:
        raise ValueError(f"not a Databricks notebook: the first line is not {SOURCE_HEADER!r}")
    chunks, current = [], []
    for line in lines[1:]:
        if line.strip() == COMMAND_SEPARATOR:
            chunks.append(current)
            current = []
        else:
            current.append(line)
    chunks.append(current)
    cells = []
    for chunk in chunks:
        chunk = [line for line in chunk if not line.startswith(TITLE_PREFIX)]
        body = [line for line in chunk if line.strip()]
        if body and all(line.startswith(MAGIC_PREFIX.rstrip()) for line in body):
            chunk = [line[len(MAGIC_PREFIX):] if line.startswith(MAGIC_PREFIX) else line[len(MAGIC_PREFIX) - 1:]
                     for line in chunk]
        cells.append(nbformat.v4.new_code_cell("\n".join(chunk).strip("\n")))
    return nbformat.v4.new_notebook(cells=cells, metadata={"language_info": {"name": "python"}})


def saved_by(path: Path, nb) -> Both:
    """Which editor wrote the notebook, as the report names it."""
    if path.suffix == ".py":
        name = f"{path.parent.name}/{path.name}"
        return Both(f"Databricks のソース形式（{name}）", f"Databricks in its Source format ({name})")
    if written_by_databricks(nb):
        return Both("Databricks", "Databricks")
    return Both("nbgrader のメタデータを残さないエディタ（VS Code、Colab など）",
                "an editor that does not keep nbgrader's metadata (VS Code, Colab, …)")


def align_with_release(student_nb, release_nb, path: Path) -> tuple[nbformat.NotebookNode | None, list[Problem]]:
    """The submission as nbgrader must see it (grading/align.py), and what the report says of it: protected cells
    put back or reset, cells found by content, metadata that was ignored; None where it cannot be aligned."""
    found = align(student_nb, release_nb)
    name = f"{path.parent.name}/{path.name}"
    if found.notebook is None:
        shown = ", ".join(found.unplaced[:8]) + (f" … (+{len(found.unplaced) - 8})" if len(found.unplaced) > 8 else "")
        return None, [problem("notebook_unaligned", path=name, cells=shown)]
    problems = []
    if found.by_content:
        problems.append(problem("cells_matched_by_content", saved_by=saved_by(path, student_nb)))
    if found.deleted:
        problems.append(problem("cell_restored", cells=", ".join(found.deleted)))
    if found.edited:
        problems.append(problem("cell_edited", cells=", ".join(found.edited)))
    if found.metadata_ignored:
        problems.append(problem("cell_metadata_ignored", cells=", ".join(found.metadata_ignored)))
    return found.notebook, problems
