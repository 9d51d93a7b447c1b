"""Mutation operators (after mutmut and cosmic-ray): each finds the places in a cell's source where it
applies and says what to write there instead. An edit is a span of the source (character offsets) and its
replacement text, so a mutant keeps the cell's formatting everywhere else."""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Callable, Iterator


@dataclass(frozen=True)
class Edit:
    start: int  # character offsets into the cell source
    end: int
    text: str
    description: str  # what the mistake is, in a few words


class Source:
    """A cell's source with AST node positions (UTF-8 byte columns) as character offsets."""

    def __init__(self, text: str):
        self.text = text
        self.tree = ast.parse(text)
        self._line_starts = [0]
        for line in text.splitlines(keepends=True):
            self._line_starts.append(self._line_starts[-1] + len(line))
        self._lines = text.splitlines(keepends=True)

    def offset(self, lineno: int, col_bytes: int) -> int:
        line = self._lines[lineno - 1] if lineno - 1 < len(self._lines) else ""
        return self._line_starts[lineno - 1] + len(line.encode()[:col_bytes].decode(errors="ignore"))

    def start(self, node) -> int:
        return self.offset(node.lineno, node.col_offset)

    def end(self, node) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)

    def segment(self, node) -> str:
        return self.text[self.start(node):self.end(node)]


Operator = Callable[[Source, ast.AST], Iterator[Edit]]

_COMPARE_SWAPS = {ast.Lt: (r"<(?!=)", "<="), ast.LtE: (r"<=", "<"), ast.Gt: (r">(?!=)", ">="), ast.GtE: (r">=", ">"),
                  ast.Eq: (r"==", "!="), ast.NotEq: (r"!=", "=="), ast.In: (r"(?<!not )\bin\b", "not in"),
                  ast.NotIn: (r"\bnot\s+in\b", "in"), ast.Is: (r"\bis\b(?!\s+not\b)", "is not"),
                  ast.IsNot: (r"\bis\s+not\b", "is")}
_ARITHMETIC_SWAPS = {ast.Add: (r"\+", "-"), ast.Sub: (r"-", "+"), ast.Mult: (r"\*", "/"), ast.Div: (r"/", "*"),
                     ast.FloorDiv: (r"//", "/"), ast.Mod: (r"%", "*")}
_AGGREGATE_SWAPS = {"mean": "median", "median": "mean", "sum": "mean", "max": "min", "min": "max"}


def _swap_between(src: Source, left_end: int, right_start: int, pattern: str, new: str, what: str) -> Iterator[Edit]:
    """Replace the operator token found between two operands."""
    between = src.text[left_end:right_start]
    match = re.search(pattern, between)
    if match:
        yield Edit(left_end + match.start(), left_end + match.end(), new, f"{match.group(0)} -> {new} ({what})")


def compare(src: Source, node) -> Iterator[Edit]:
    """`<` for `<=`, `==` for `!=`, `in` for `not in`, ..."""
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:]):
            if type(op) in _COMPARE_SWAPS:
                yield from _swap_between(src, src.end(left), src.start(right), *_COMPARE_SWAPS[type(op)], "comparison")


def arithmetic(src: Source, node) -> Iterator[Edit]:
    """`+` for `-`, `*` for `/`, `+=` for `-=`, ..."""
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC_SWAPS:
        yield from _swap_between(src, src.end(node.left), src.start(node.right), *_ARITHMETIC_SWAPS[type(node.op)],
                                 "arithmetic")
    elif isinstance(node, ast.AugAssign) and type(node.op) in _ARITHMETIC_SWAPS:
        pattern, new = _ARITHMETIC_SWAPS[type(node.op)]
        yield from _swap_between(src, src.end(node.target), src.start(node.value), pattern + "=", new + "=",
                                 "arithmetic")


def constant(src: Source, node) -> Iterator[Edit]:
    """Off by one: n for n + 1; True for False."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
        if isinstance(node.value, bool):
            new = repr(not node.value)
        elif isinstance(node.value, int):
            new = repr(node.value + 1)
        else:
            new = repr(node.value + 1.0)
        yield Edit(src.start(node), src.end(node), new, f"{src.segment(node)} -> {new} (constant)")


def _drop_from(src: Source, spans: list[tuple[int, int]], what: str, droppable=None) -> Iterator[Edit]:
    """Elements of a display or call (spans, in order) removed one at a time with their separating comma."""
    for i in range(len(spans)) if droppable is None else droppable:
        start, end = spans[i]
        if i + 1 < len(spans):
            cut_start, cut_end = start, spans[i + 1][0]
        elif i > 0:
            cut_start, cut_end = spans[i - 1][1], end
        else:
            cut_start, cut_end = start, end + (re.match(r"\s*,?", src.text[end:]).end())
        yield Edit(cut_start, cut_end, "", f"drop {what} {src.text[start:end].splitlines()[0][:50]}")


def drop_item(src: Source, node) -> Iterator[Edit]:
    """A list, tuple or set item, a dict entry, or a keyword argument left out."""
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and not isinstance(getattr(node, "ctx", None), ast.Store):
        yield from _drop_from(src, [(src.start(e), src.end(e)) for e in node.elts], "item")
    elif isinstance(node, ast.Dict) and None not in node.keys:
        yield from _drop_from(src, [(src.start(k), src.end(v)) for k, v in zip(node.keys, node.values)], "entry")
    elif isinstance(node, ast.Call) and all(k.arg for k in node.keywords):
        spans = [(src.start(a), src.end(a)) for a in node.args]
        spans += [(src.offset(k.lineno, k.col_offset), src.end(k.value)) for k in node.keywords]
        yield from _drop_from(src, spans, "keyword argument", range(len(node.args), len(spans)))


def swap_arguments(src: Source, node) -> Iterator[Edit]:
    """The first two positional arguments in each other's place."""
    if isinstance(node, ast.Call) and len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args[:2]):
        first, second = node.args[:2]
        a, b = src.segment(first), src.segment(second)
        yield Edit(src.start(first), src.end(second), b + src.text[src.end(first):src.start(second)] + a,
                   f"swap arguments {a[:30]}, {b[:30]}")


def first_only(src: Source, node) -> Iterator[Edit]:
    """A loop or comprehension over the first element instead of all of them."""
    if isinstance(node, (ast.For, ast.comprehension)):
        it = node.iter
        yield Edit(src.start(it), src.end(it), f"list({src.segment(it)})[:1]", f"only the first of {src.segment(it)[:40]}")


def aggregate(src: Source, node) -> Iterator[Edit]:
    """mean for median, sum for mean, max for min (method calls; and the builtins max and min)."""
    if not isinstance(node, ast.Call):
        return
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in _AGGREGATE_SWAPS:
        end = src.offset(func.end_lineno, func.end_col_offset)
        new = _AGGREGATE_SWAPS[func.attr]
        yield Edit(end - len(func.attr), end, new, f".{func.attr}() -> .{new}() (aggregate)")
    elif isinstance(func, ast.Name) and func.id in ("max", "min"):
        new = _AGGREGATE_SWAPS[func.id]
        yield Edit(src.start(func), src.end(func), new, f"{func.id}() -> {new}() (aggregate)")


def remove_call(src: Source, node) -> Iterator[Edit]:
    """A statement that only calls something, left out."""
    if isinstance(node, ast.Expr) and isinstance(node.value, (ast.Call, ast.Await)):
        yield Edit(src.start(node), src.end(node), "pass", f"remove {src.segment(node).splitlines()[0][:50]}")


def hard_code(src: Source, node) -> Iterator[Edit]:
    """A literal where a value is computed: `return None`, `answer = None`."""
    if isinstance(node, ast.Return) and node.value is not None and not isinstance(node.value, ast.Constant):
        yield Edit(src.start(node.value), src.end(node.value), "None", f"return None instead of {src.segment(node.value)[:40]}")
    elif (isinstance(node, ast.Assign) and node.col_offset == 0 and isinstance(node.value, (ast.Call, ast.ListComp, ast.Dict))
          and all(isinstance(t, ast.Name) for t in node.targets)):
        yield Edit(src.start(node.value), src.end(node.value), "None",
                   f"{node.targets[0].id} = None instead of computing it")


OPERATORS: dict[str, Operator] = {
    "compare": compare,
    "arithmetic": arithmetic,
    "constant": constant,
    "drop_item": drop_item,
    "swap_arguments": swap_arguments,
    "first_only": first_only,
    "aggregate": aggregate,
    "remove_call": remove_call,
    "hard_code": hard_code,
}
