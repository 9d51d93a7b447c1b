"""The notebook vocabulary, written once (as nbgrader's utils.py): nbgrader cell metadata, outputs, inputs."""
from __future__ import annotations

import ast
import threading
from typing import Iterator

Errors = list[tuple[str, str]]  # (ename, evalue) of a cell's error outputs


_AST_LOCK = threading.Lock()


def parse_python(source: str) -> ast.Module:
    """ast.parse, one thread at a time, once more on a SystemError. CPython 3.11 keeps the AST converter's
    recursion depth per interpreter, so two checks parsing at once in their threads can fail with "AST
    constructor recursion depth mismatch" (seen once in CI, in criteria_hidden_cases beside another check)."""
    with _AST_LOCK:
        try:
            return ast.parse(source)
        except SystemError:
            return ast.parse(source)


# What a notebook's `report(name, value)` displays: the claims the checks compare with their evidence.
CLAIM_MIMETYPE = "application/vnd.llmcourse.result+json"


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_solution(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_test(cell) -> bool:
    """An autograded test cell (nbgrader `grade` without `solution`)."""
    return bool(nbgrader_meta(cell).get("grade"))


def is_protected(cell) -> bool:
    """A cell the student must not change: locked, or a test, and not a solution cell."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("locked") or meta.get("grade")) and not meta.get("solution")


def graded_cells(nb) -> Iterator[tuple[str, object]]:
    """(grade_id, cell) for every cell nbgrader knows by id."""
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid:
            yield gid, cell


def find_cell(nb, wanted: str):
    """The first cell with this grade_id, or None."""
    return next((cell for gid, cell in graded_cells(nb) if gid == wanted), None)


def solution_cells(nb, wanted: str) -> list:
    """The cells of solution cell `wanted`'s answer: that cell and the student's own cells (no grade_id) on either
    side of it, up to the nearest graded cells (an aligned submission keeps an answer split over several cells
    together there: grading/align.py). [] when there is no such solution cell."""
    cells = list(nb.cells)
    at = next((i for i, c in enumerate(cells) if grade_id(c) == wanted and is_solution(c)), None)
    if at is None:
        return []
    start, end = at, at + 1
    while start > 0 and not grade_id(cells[start - 1]):
        start -= 1
    while end < len(cells) and not grade_id(cells[end]):
        end += 1
    return cells[start:end]


def error_outputs(cell) -> Errors:
    return [(o.get("ename", ""), str(o.get("evalue", ""))) for o in cell.get("outputs", [])
            if o.get("output_type") == "error"]


def cell_errors(nb) -> dict[str, Errors]:
    """grade_id -> its error outputs, for every cell with a grade_id."""
    return {gid: error_outputs(cell) for gid, cell in graded_cells(nb)}


def literals_in(source: str) -> dict:
    """Module-level `NAME = <literal>` assignments of a cell, evaluated safely."""
    found = {}
    try:
        tree = parse_python(source)
    except SyntaxError:
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return found


def inputs_cell_id(exercise_id: str) -> str:
    return f"{exercise_id}_inputs"


def inputs_of(nb, exercise_id: str) -> dict:
    """The exercise's fixed inputs: the literals of its `<exercise>_inputs` cell."""
    cell = find_cell(nb, inputs_cell_id(exercise_id))
    return literals_in(cell.source) if cell is not None else {}


def code_literals(nb) -> dict[str, dict]:
    """grade_id -> literals, for every graded code cell."""
    return {gid: literals_in(cell.source) for gid, cell in graded_cells(nb) if cell.cell_type == "code"}


def _parsed_code_cells(nb) -> list[ast.Module]:
    """Every code cell that parses as Python (a cell with IPython magics is left out)."""
    trees = []
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            try:
                trees.append(parse_python(cell.source))
            except SyntaxError:
                continue
    return trees


def imported_modules(nb) -> list[str]:
    """The modules the notebook's code cells import by absolute name, in the order first imported."""
    names = []
    for tree in _parsed_code_cells(nb):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level and not _is_future(node):
                names.append(node.module)
    return list(dict.fromkeys(names))


def _bound_names(node) -> set[str]:
    return {(alias.asname or alias.name).split(".")[0] for alias in node.names}


def _used_names(node) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def function_with_dependencies(nb, cell_id: str, name: str) -> str | None:
    """The source of function `name` defined at the top of cell `cell_id` (of its answer, for a solution cell),
    preceded by the notebook's
    imports and top-level helper functions it uses (transitively): what it needs to run on its own.
    None when that cell does not define it."""
    target = None
    for cell in solution_cells(nb, cell_id) or [c for c in [find_cell(nb, cell_id)] if c is not None]:
        try:
            found = [n for n in parse_python(cell.source).body if isinstance(n, ast.FunctionDef) and n.name == name]
        except (SyntaxError, AttributeError):
            continue
        target = found[-1] if found else target  # the last definition wins, as when the cells run
    if target is None:
        return None
    top_level = [n for tree in _parsed_code_cells(nb) for n in tree.body]
    imports = [n for n in top_level if isinstance(n, (ast.Import, ast.ImportFrom)) and not _is_future(n)]
    helpers = {n.name: n for n in top_level if isinstance(n, ast.FunctionDef) and n.name != name}
    needed, wanted, seen = [], _used_names(target), set()
    while wanted - seen:
        current = wanted - seen
        seen |= current
        for helper in (helpers[n] for n in sorted(current) if n in helpers):
            needed.append(helper)
            wanted |= _used_names(helper)
    chosen = [n for n in imports if _bound_names(n) & wanted]
    return "\n".join(ast.unparse(n) for n in [*chosen, *needed, target])


def _is_future(node) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"
