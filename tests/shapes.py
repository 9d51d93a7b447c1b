"""The shapes a student's editor saves a notebook in, built from the public formats (test helpers only).

  release     the notebook as nbformat writes it from the release (nbgrader metadata, nbformat 4.5, ids)
  jupyterlab  (f) JupyterLab 4's save: the same, source as lists of lines, ids, execution counts
  databricks  (a) a Databricks Git folder's commit: only Databricks's cell block, nbformat 4.0, no ids,
              execution_count 0, no outputs, the notebook's metadata Databricks's own
  no_metadata (b) every cell's metadata emptied
  extra_cells (c) (a) plus the student's own cells: a note, a print and each answer split in two
  md_as_code  (d) (a) with every markdown cell exported as a `%md` code cell
  source_py   (e) Databricks's Source format, ex01/ex01.py instead of ex01/ex01.ipynb

`write_shape(nb, dest_ipynb, shape)` writes one exercise's notebook in that shape (for source_py it writes the
.py file beside where the .ipynb would be, and no .ipynb).
"""
from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import nbformat

SHAPES = ("release", "jupyterlab", "databricks", "no_metadata", "extra_cells", "md_as_code", "source_py")
DATABRICKS_CELL = "application/vnd.databricks.v1+cell"
DATABRICKS_NOTEBOOK = "application/vnd.databricks.v1+notebook"
PRINT_CELL = 'print("確認用のセルです")'


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _nuid(seed: str, n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}/{n}"))


def _cell_text(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def databricks_dict(nb, name: str, markdown_as_code: bool = False) -> dict:
    """The notebook as a Databricks Git folder commits it (as public Databricks-written notebooks show)."""
    cells = []
    for n, cell in enumerate(nb.cells):
        meta = {DATABRICKS_CELL: {"cellMetadata": {"byteLimit": 2048000, "rowLimit": 10000}, "inputWidgets": {},
                                  "nuid": _nuid(name, n), "showTitle": False, "tableResultSettingsMap": {},
                                  "title": ""}}
        text = _cell_text(cell)
        if cell.cell_type == "markdown" and markdown_as_code:
            cells.append({"cell_type": "code", "execution_count": 0, "metadata": meta, "outputs": [],
                          "source": _lines("%md\n" + text)})
        elif cell.cell_type == "markdown":
            cells.append({"cell_type": "markdown", "metadata": meta, "source": _lines(text)})
        else:
            cells.append({"cell_type": "code", "execution_count": 0, "metadata": meta, "outputs": [],
                          "source": _lines(text)})
    metadata = {DATABRICKS_NOTEBOOK: {"computePreferences": None, "dashboards": [],
                                      "environmentMetadata": {"base_environment": "", "environment_version": "2"},
                                      "inputWidgetPreferences": None, "language": "python",
                                      "notebookMetadata": {"pythonIndentUnit": 4}, "notebookName": name,
                                      "widgets": {}},
                "language_info": {"name": "python"}}
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 0}


def with_extra_cells(nb):
    """The student's own cells: a markdown note at the top, each answer split in two (its last top-level
    statements in a second cell when there are any), and a print after each answer."""
    from coursegrader.notebook import is_solution

    nb = copy.deepcopy(nb)
    cells = [nbformat.v4.new_markdown_cell("## 自分用メモ\n授業中に書いたメモです。")]
    for cell in nb.cells:
        if not is_solution(cell):
            cells.append(cell)
            continue
        first, second = _split_answer(cell.source)
        cells.append(nbformat.v4.new_markdown_cell("メモ: ここから解答"))
        cells.append(nbformat.v4.new_code_cell(first))
        if second:
            cells.append(nbformat.v4.new_code_cell(second))
        cells.append(nbformat.v4.new_code_cell(PRINT_CELL))
    nb.cells = cells
    return nb


def _split_answer(source: str) -> tuple[str, str]:
    """An answer cut between two top-level statements, about half way (a cell magic or a one-statement cell stays
    whole)."""
    import ast

    try:
        body = ast.parse(source).body
    except SyntaxError:
        return source, ""
    if len(body) < 2 or source.lstrip().startswith("%"):
        return source, ""
    cut = body[len(body) // 2].lineno - 1
    lines = source.splitlines(keepends=True)
    return "".join(lines[:cut]).rstrip("\n"), "".join(lines[cut:])


def databricks_source(nb) -> str:
    """The notebook in Databricks's Source format: magics and markdown as `# MAGIC` lines."""
    chunks = []
    for cell in nb.cells:
        text = _cell_text(cell)
        if cell.cell_type == "markdown":
            text = "%md\n" + text
        if text.startswith("%"):
            text = "\n".join(f"# MAGIC {line}" if line else "# MAGIC" for line in text.split("\n"))
        chunks.append(text)
    return "# Databricks notebook source\n" + "\n\n# COMMAND ----------\n\n".join(chunks) + "\n"


def jupyterlab_dict(nb) -> dict:
    data = json.loads(nbformat.writes(nb))
    for n, cell in enumerate(data["cells"]):
        cell["source"] = _lines(_cell_text(nb.cells[n]))
        if cell["cell_type"] == "code":
            cell["execution_count"] = n + 1
    return data


def write_shape(nb, dest: Path, shape: str) -> Path:
    """Write one exercise's notebook (`dest` = <ex>/<ex>.ipynb) as `shape` saves it; the path written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    name = dest.stem
    if shape == "release":
        nbformat.write(nb, dest)
        return dest
    if shape == "source_py":
        path = dest.with_suffix(".py")
        path.write_text(databricks_source(nb), encoding="utf-8")
        return path
    if shape == "jupyterlab":
        data = jupyterlab_dict(nb)
    elif shape == "databricks":
        data = databricks_dict(nb, name)
    elif shape == "md_as_code":
        data = databricks_dict(nb, name, markdown_as_code=True)
    elif shape == "extra_cells":
        data = databricks_dict(with_extra_cells(nb), name)
    elif shape == "no_metadata":
        data = json.loads(nbformat.writes(nb))
        for cell in data["cells"]:
            cell["metadata"] = {}
    else:
        raise ValueError(f"unknown shape {shape}")
    dest.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return dest


def reshape_submission(root: Path, shape: str) -> Path:
    """Rewrite every exercise notebook under a built submission in `shape`, in place."""
    for path in sorted(Path(root).glob("ex*/ex*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        path.unlink()
        write_shape(nb, path, shape)
    return root


def score_table(shapes=("release", "databricks", "no_metadata", "extra_cells"), exercises=("ex01", "ex02", "ex03"),
                jobs: int = 2) -> str:
    """Grade the solution, the blank and every catalog sample of `exercises` in each shape (officially, `jobs` at
    a time) and return a markdown table: sample x shape -> score, failed checks and problem codes."""
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    from autograder.official import grade_official
    from autograder.samples import build_sample, load_catalog
    from coursegrader.config import load_course

    course = load_course()
    catalog = load_catalog(course)
    wanted = [(name, tuple(e for e in s.exercises if e in exercises)) for name, s in catalog.items()]
    wanted = [(name, exs) for name, exs in wanted if exs]
    root = Path(tempfile.mkdtemp(prefix="shape-table-"))

    def grade(job):
        (name, exs), shape = job
        path = build_sample(catalog[name], root / shape / name, course)
        if shape != "release":
            for ex in exs:
                nb_path = path / ex / f"{ex}.ipynb"
                if nb_path.is_file() and not nb_path.is_symlink():
                    try:
                        nb = nbformat.read(nb_path, as_version=4)
                    except Exception:  # noqa: BLE001 - a malformed sample stays malformed in every shape
                        continue
                    nb_path.unlink()
                    write_shape(nb, nb_path, shape)
        g = grade_official(path, list(exs), cell_timeout_s=catalog[name].cell_timeout_s, course=course)
        failed = sorted(c.id for r in g.runs for c in r.checks if not c.passed)
        codes = sorted({p.code for r in g.runs for p in r.problems})
        return f"{g.score:g}/{g.max_score:g}", failed, codes

    jobs_list = [(w, shape) for w in wanted for shape in shapes]
    with ThreadPoolExecutor(jobs) as pool:
        results = dict(zip(jobs_list, pool.map(grade, jobs_list)))
    rows = ["| sample | exercises | " + " | ".join(shapes) + " | same failed checks and codes (+ info) |",
            "|---" * (len(shapes) + 3) + "|"]
    for w in wanted:
        base = results[(w, shapes[0])]
        same = all(results[(w, s)][0] == base[0] and results[(w, s)][1] == base[1]
                   and sorted(set(results[(w, s)][2]) - {"cells_matched_by_content"}) == base[2] for s in shapes)
        rows.append(f"| {w[0]} | {', '.join(w[1])} | " + " | ".join(results[(w, s)][0] for s in shapes)
                    + f" | {'yes' if same else 'NO'} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python tests/shapes.py: the note's table (minutes: every early sample, four shapes)
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    print(score_table())
