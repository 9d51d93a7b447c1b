"""Mutants of the source solutions: every operator applied, one edit at a time, inside the
`### BEGIN SOLUTION` / `### END SOLUTION` regions only (the code a student writes)."""
from __future__ import annotations

import ast
import difflib
import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Iterator

import nbformat

from coursegrader.config import SOURCE_DIR, Exercise
from coursegrader.notebook import grade_id, is_solution

from .operators import OPERATORS, Edit, Source

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


@dataclass(frozen=True)
class Mutant:
    id: str  # <cell>:<operator>:<digest of the edit>, stable while that text is unchanged
    exercise: str
    cell: str
    operator: str
    description: str
    line: int  # in the cell
    original: str
    mutated: str

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.original.splitlines(keepends=True), self.mutated.splitlines(keepends=True),
                                            f"{self.cell} (solution)", f"{self.cell} ({self.id})", n=1))


def solution_regions(text: str) -> list[tuple[int, int]]:
    """(first, last) line numbers of each solution region, markers excluded."""
    regions, begin = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() == BEGIN:
            begin = number + 1
        elif line.strip() == END and begin is not None:
            regions.append((begin, number - 1))
            begin = None
    return regions


def _inside(node, regions) -> bool:
    return hasattr(node, "lineno") and any(first <= node.lineno and node.end_lineno <= last for first, last in regions)


def _nodes_in(tree, regions) -> Iterator[ast.AST]:
    for node in ast.walk(tree):
        if isinstance(node, ast.comprehension):
            if _inside(node.iter, regions):
                yield node
        elif _inside(node, regions):
            yield node


def cell_mutants(exercise: str, cell: str, text: str, operators=None) -> list[Mutant]:
    """Every mutant of one solution cell that still parses."""
    src, regions = Source(text), solution_regions(text)
    seen, mutants = Counter(), []
    for name, operator in OPERATORS.items():
        if operators and name not in operators:
            continue
        edits: list[Edit] = []
        for node in _nodes_in(src.tree, regions):
            edits.extend(operator(src, node))
        for edit in sorted(set(edits), key=lambda e: (e.start, e.end, e.text)):
            mutated = text[:edit.start] + edit.text + text[edit.end:]
            try:
                ast.parse(mutated)
            except SyntaxError:
                continue
            key = (name, text[edit.start:edit.end], edit.text)
            seen[key] += 1
            digest = hashlib.sha1(repr((*key, seen[key])).encode()).hexdigest()[:8]
            mutants.append(Mutant(f"{cell}:{name}:{digest}", exercise, cell, name, edit.description,
                                  text.count("\n", 0, edit.start) + 1, text, mutated))
    return mutants


def exercise_mutants(exercise: Exercise, operators=None) -> list[Mutant]:
    """The mutants of one exercise's source solutions, in notebook order."""
    nb = nbformat.read(SOURCE_DIR / exercise.id / exercise.notebook, as_version=4)
    return [m for cell in nb.cells if is_solution(cell) and cell.cell_type == "code"
            for m in cell_mutants(exercise.id, grade_id(cell), cell.source, operators)]
