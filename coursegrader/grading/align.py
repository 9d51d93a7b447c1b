"""Which submitted cell is which release cell: found by content and order, nbgrader metadata one more signal.

Databricks rewrites every notebook it commits (its own metadata block on each cell, nbformat 4.0, no ids),
and VS Code, Colab or a Source-format export lose nbgrader's metadata too. So a submission is aligned with
its release notebook, which the grader has:

- The release's protected cells (markdown, setup, inputs, locked code, tests) are the anchors. They are found
  in the submission by their normalized source, in order (the longest common subsequence; among equally good
  choices the later copy of a cell is taken, so a copy pasted above the real one never cuts an answer short).
  A code cell that starts with `%md` counts as the markdown cell it came from.
- A protected cell that is not found verbatim is looked for where it belongs (between its found neighbours):
  a cell there that carries its grade_id, or that reads much like it, or that stands in its place where no
  answer belongs, is that cell edited. Otherwise it was deleted. Either way the release's cell goes back.
- A solution cell is everything the student has between its two release neighbours, in order (scratch cells,
  an answer split in two). Its first code cell carries the release's metadata; the others follow it.
- Anything else the student added stays where it is, without nbgrader metadata.

The result has the release's notebook metadata, nbformat 4.5, the release's cell (metadata, id, source) for
every protected cell, exactly once, and validates. Student code never takes the place of a protected cell.
"""
from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field

import nbformat

from ..notebook import grade_id, is_solution

DATABRICKS_CELL = "application/vnd.databricks.v1+cell"
DATABRICKS_NOTEBOOK = "application/vnd.databricks.v1+notebook"
MD_MAGIC = re.compile(r"\A\s*%md(?:-sandbox)?(?=\s|\Z)")
SIMILAR = 0.6  # an unplaced cell this alike to a missing protected cell (difflib ratio) is that cell, edited
SIMILARITY_CHARS = 4000  # texts compared only up to here: a huge cell must not cost seconds
MAX_CELLS = 2000  # more cells than this (a course notebook has about 50): not aligned at all, at no cost
FOUND_AT_LEAST = 0.5  # under this share of protected cells found, with code of the student's left over: unaligned


@dataclass
class Alignment:
    notebook: nbformat.NotebookNode | None  # None: too mangled to align (see `unplaced`)
    deleted: list[str] = field(default_factory=list)  # protected code cells put back
    edited: list[str] = field(default_factory=list)  # protected code cells reset to the release's source
    by_content: bool = False  # some cell without nbgrader metadata was found by its content (the editor dropped it)
    metadata_ignored: list[str] = field(default_factory=list)  # grade_ids a student cell's metadata claimed wrongly
    unplaced: list[str] = field(default_factory=list)  # release cells not found when the notebook is unaligned


def cell_text(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def cell_kind_and_text(cell) -> tuple[str, str]:
    """(cell type, source) as the student's editor meant it: a `%md` code cell is markdown."""
    kind, text = cell.get("cell_type", "code"), cell_text(cell)
    if kind == "code" and MD_MAGIC.match(text):
        return "markdown", MD_MAGIC.sub("", text, count=1).lstrip()
    return kind, text


def normalized(cell) -> tuple[str, str]:
    """What must match for a cell to be a release cell: its kind and its source with all whitespace collapsed
    (line endings, indentation, trailing newlines; `source` as a string or as a list)."""
    kind, text = cell_kind_and_text(cell)
    return kind, " ".join(text.split())


def similarity(a: str, b: str, at_least: float = SIMILAR) -> float:
    """difflib's ratio of two normalized texts (their first SIMILARITY_CHARS), or 0.0 where it is under at_least."""
    matcher = difflib.SequenceMatcher(None, a[:SIMILARITY_CHARS], b[:SIMILARITY_CHARS], autojunk=False)
    if matcher.real_quick_ratio() < at_least or matcher.quick_ratio() < at_least:
        return 0.0
    ratio = matcher.ratio()
    return ratio if ratio >= at_least else 0.0


def written_by_databricks(nb) -> bool:
    """Whether the notebook was written by Databricks (its own metadata on the notebook or a cell)."""
    return DATABRICKS_NOTEBOOK in nb.get("metadata", {}) or any(
        DATABRICKS_CELL in c.get("metadata", {}) for c in nb.get("cells", []))


def _lcs(anchor_keys: list, student_keys: list) -> dict[int, int]:
    """anchor index -> student index of a longest common subsequence (anchor keys are unique); among equally
    long ones, each anchor takes the latest student cell it can."""
    where = {key: i for i, key in enumerate(anchor_keys)}
    if len(student_keys) > MAX_CELLS:
        raise _Unalignable
    cands = [(s, where[key]) for s, key in enumerate(student_keys) if key in where]
    n, m = len(anchor_keys), len(cands)
    # best[i][j]: the longest common subsequence of anchors[i:] and cands[j:]
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = best[i], best[i + 1]
        for j in range(m - 1, -1, -1):
            row[j] = max(row[j + 1], below[j], below[j + 1] + 1 if cands[j][1] == i else 0)
    found, i, j = {}, 0, 0
    while i < n and j < m:
        if best[i][j + 1] == best[i][j]:
            j += 1  # this candidate is not needed here: keep looking at later copies
        elif cands[j][1] == i:
            found[i] = cands[j][0]
            i, j = i + 1, j + 1
        else:
            i += 1
    return found


class _Unalignable(Exception):
    pass


@dataclass
class _Gap:
    """Release cells (missing anchors and slots) and student cells between two found anchors."""
    release: list[int]
    student: list[int]


def align(student_nb, release_nb) -> Alignment:
    release, student = release_nb.cells, list(student_nb.cells)
    anchors = [i for i, c in enumerate(release) if not is_solution(c)]
    try:
        if len(student) > MAX_CELLS:  # before any cell is read: similarity searches grow with the cells
            raise _Unalignable
        exact = {anchors[a]: s for a, s in _lcs([normalized(release[i]) for i in anchors],
                                                 [normalized(c) for c in student]).items()}
    except _Unalignable:
        return Alignment(None, unplaced=[grade_id(release[i]) for i in anchors])
    placed: dict[int, int] = dict(exact)  # release index -> student index, anchors only, in order in both
    for gap in _gaps(release, student, exact):
        placed.update(_edited_in(gap, release, student))
    used = set(placed.values())
    own_code = any(s not in used and cell_kind_and_text(c)[0] == "code" and cell_text(c).strip()
                   for s, c in enumerate(student))
    if len(placed) < FOUND_AT_LEAST * len(anchors) and own_code:
        return Alignment(None, unplaced=[grade_id(release[i]) for i in anchors if i not in placed])

    build = _Build(release, student)
    bounds = [(-1, -1), *sorted(placed.items()), (len(release), len(student))]
    for (r0, s0), (r1, s1) in zip(bounds, bounds[1:]):
        if r0 >= 0:
            build.anchor(r0, s0, edited=r0 not in exact)
        build.between(list(range(r0 + 1, r1)), list(range(s0 + 1, s1)))
    return build.alignment(release_nb.metadata)


def _gaps(release, student, found: dict[int, int]) -> list[_Gap]:
    order = sorted(found.items())
    bounds = [(-1, -1), *order, (len(release), len(student))]
    return [_Gap(list(range(r0 + 1, r1)), list(range(s0 + 1, s1))) for (r0, s0), (r1, s1) in zip(bounds, bounds[1:])]


def _edited_in(gap: _Gap, release, student) -> dict[int, int]:
    """Missing anchors of a gap found as edited cells: by their grade_id in the cell's metadata or by reading
    much alike, in order; then, where no answer belongs, the student's cells standing in their place."""
    found: dict[int, int] = {}
    start = 0
    for r in gap.release:
        if is_solution(release[r]):
            continue
        want_id, (want_kind, want_text) = grade_id(release[r]), normalized(release[r])
        for k in range(start, len(gap.student)):
            cell = student[gap.student[k]]
            kind, text = normalized(cell)
            if kind == want_kind and (grade_id(cell) == want_id or similarity(text, want_text) >= SIMILAR):
                found[r], start = gap.student[k], k + 1
                break
    # Between what is placed now: a stretch with no solution cell, where missing anchors and the student's cells
    # of their kind stand in each other's place, pair them in order.
    bounds = [(-1, -1), *sorted(found.items()), (len(release), len(student))]
    for (r0, s0), (r1, s1) in zip(bounds, bounds[1:]):
        rel = [r for r in gap.release if r0 < r < r1]
        if any(is_solution(release[r]) for r in rel):
            continue
        stu = [s for s in gap.student if s0 < s < s1]
        for r in rel:
            kind = release[r].cell_type
            match = next((s for s in stu if cell_kind_and_text(student[s])[0] == kind), None)
            if match is not None:
                found[r] = match
                stu = stu[stu.index(match) + 1:]
    return found


def _split(release, student, slots: list[int], stu: list[int]) -> dict[int, list[int]]:
    """Each slot's student cells, in order: contiguous runs, cut where the cells' grade_ids say so, else where
    the cells read most like each slot's release blank."""
    if len(slots) == 1:
        return {slots[0]: stu}
    ids = {grade_id(release[r]): k for k, r in enumerate(slots)}
    blanks = [normalized(release[r])[1] for r in slots]

    def score(s: int, k: int) -> float:
        cell = student[s]
        if grade_id(cell) in ids:
            return 10.0 if ids[grade_id(cell)] == k else -10.0
        return similarity(normalized(cell)[1], blanks[k]) if cell_kind_and_text(cell)[0] == "code" else 0.0

    # best[j][k]: the best total for stu[j:] given slot k takes stu[j] onward (monotone assignment)
    n, m = len(stu), len(slots)
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for j in range(n - 1, -1, -1):
        for k in range(m - 1, -1, -1):
            stay = score(stu[j], k) + best[j + 1][k]
            move = best[j][k + 1] if k + 1 < m else float("-inf")
            best[j][k] = max(stay, move)
    chunks: dict[int, list[int]] = {r: [] for r in slots}
    k = 0
    for j in range(n):
        while k + 1 < m and best[j][k + 1] > score(stu[j], k) + best[j + 1][k]:
            k += 1
        chunks[slots[k]].append(stu[j])
    return chunks




class _Build:
    """The aligned notebook, cell by cell, and what each student cell became (a release cell's grade_id, or None
    for the student's own cells): the report's facts are read from that."""

    def __init__(self, release, student):
        self.release, self.student = release, student
        self.cells: list = []
        self.role: dict[int, str | None] = {}
        self.deleted: list[str] = []
        self.edited: list[str] = []
        self.by_content = False
        self.taken = {c.get("id") for c in release}
        self.count = 0

    def anchor(self, r: int, s: int, edited: bool) -> None:
        ref = self.release[r]
        self.cells.append(copy.deepcopy(ref))
        self.role[s] = grade_id(ref)
        if not grade_id(self.student[s]):
            self.by_content = True  # found by content alone (a wrong grade_id is metadata_ignored's to report)
        if edited and ref.cell_type == "code":
            self.edited.append(grade_id(ref))

    def between(self, rel: list[int], stu: list[int]) -> None:
        """The cells between two placed anchors: missing anchors put back, each solution cell filled with the
        student's cells (split between several where the anchors between them are gone), the rest kept."""
        slots = [r for r in rel if is_solution(self.release[r])]
        if not slots:
            for s in stu:
                self._own(s)
        chunks = _split(self.release, self.student, slots, stu) if slots else {}
        for r in rel:
            if r in chunks:
                self._slot(r, chunks[r])
            else:
                self._put_back(r)

    def _put_back(self, r: int) -> None:
        ref = self.release[r]
        self.cells.append(copy.deepcopy(ref))
        if ref.cell_type == "code":
            self.deleted.append(grade_id(ref))

    def _slot(self, r: int, stu: list[int]) -> None:
        """A solution cell: the student's cells in order, one code cell carrying the release's metadata and id
        (the one whose own metadata names it, else the one most like the release's blank, the first of equals);
        the release's blank where there is no code."""
        ref, gid = self.release[r], grade_id(self.release[r])
        code = [s for s in stu if cell_kind_and_text(self.student[s])[0] == "code"]
        named = [s for s in code if grade_id(self.student[s]) == gid]
        blank = normalized(ref)[1]
        likeness = {s: similarity(normalized(self.student[s])[1], blank, at_least=0.0) for s in code}
        carrier = named[0] if named else max(code, key=lambda s: (likeness[s], -s)) if code else None
        if code and not any(grade_id(self.student[s]) for s in code):
            self.by_content = True
        for s in stu:
            self._own(s, ref if s == carrier else None)
            self.role[s] = gid
        if carrier is None:
            self.cells.append(copy.deepcopy(ref))

    def _own(self, s: int, ref=None) -> None:
        """The student's cell as plain nbformat 4.5: its kind (a `%md` cell as markdown) and source, no outputs;
        the release cell's metadata and id where it carries a solution cell, else neither."""
        kind, text = cell_kind_and_text(self.student[s])
        make = {"markdown": nbformat.v4.new_markdown_cell, "raw": nbformat.v4.new_raw_cell}.get(
            kind, nbformat.v4.new_code_cell)
        cell = make(text)
        if ref is not None:
            cell.metadata, cell.id = copy.deepcopy(ref.metadata), ref.get("id") or self._new_id()
        else:
            cell.metadata, cell.id = {}, self._new_id()
        self.cells.append(cell)
        self.role.setdefault(s, None)

    def _new_id(self) -> str:
        while True:
            self.count += 1
            candidate = f"student-{self.count}"
            if candidate not in self.taken:
                self.taken.add(candidate)
                return candidate

    def alignment(self, metadata) -> Alignment:
        nb = nbformat.v4.new_notebook(metadata=copy.deepcopy(metadata), cells=self.cells)
        ignored = [grade_id(c) for s, c in enumerate(self.student) if grade_id(c) and self.role.get(s) != grade_id(c)]
        return Alignment(nb, deleted=self.deleted, edited=self.edited, by_content=self.by_content,
                         metadata_ignored=list(dict.fromkeys(ignored)))
