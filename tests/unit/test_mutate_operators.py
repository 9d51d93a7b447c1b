"""The mutation operators on small cells: each makes exactly the mistake it names, inside solution regions only."""
from __future__ import annotations

import pytest

from autograder.mutate.mutants import cell_mutants, exercise_mutants, solution_regions
from autograder.mutate.operators import OPERATORS
from coursegrader.config import load_course


def mutated(text: str, operator: str) -> list[str]:
    return [m.mutated for m in cell_mutants("ex00", "cell", text, [operator])]


def region(body: str) -> str:
    return f"print('before')\n### BEGIN SOLUTION\n{body}\n### END SOLUTION\nprint('after')\n"


def test_regions_are_between_the_markers():
    assert solution_regions(region("a = 1\nb = 2")) == [(3, 4)]


def test_code_outside_the_solution_regions_is_never_mutated():
    text = "x = [1, 2]\nif x[0] < 2:\n    pass\n" + region("y = 3")
    assert {m.line for m in cell_mutants("ex00", "cell", text)} == {6}


@pytest.mark.parametrize("body, operator, expected", [
    ("ok = a <= 5", "compare", "ok = a < 5"),
    ("ok = a < 5", "compare", "ok = a <= 5"),
    ("ok = a not in b", "compare", "ok = a in b"),
    ("ok = a in b", "compare", "ok = a not in b"),
    ("ok = a is not None", "compare", "ok = a is None"),
    ("t = a * 9 / 5 + 32", "arithmetic", "t = a * 9 / 5 - 32"),
    ("total += n", "arithmetic", "total -= n"),
    ("n = 41", "constant", "n = 42"),
    ("flag = True", "constant", "flag = False"),
    ("xs = [a, b]", "drop_item", "xs = [b]"),
    ("xs = [a, b]", "drop_item", "xs = [a]"),
    ('d = {"k": 1, "v": 2}', "drop_item", 'd = {"v": 2}'),
    ("f(x, temperature=t)", "drop_item", "f(x)"),
    ("f(x, y)", "swap_arguments", "f(y, x)"),
    ("for call in calls:\n    run(call)", "first_only", "for call in list(calls)[:1]:\n    run(call)"),
    ("m = df['r'].mean()", "aggregate", "m = df['r'].median()"),
    ("m = max(xs)", "aggregate", "m = min(xs)"),
    ("log.append(x)", "remove_call", "pass"),
    ("answer = compute(x)", "hard_code", "answer = None"),
])
def test_each_operator_makes_its_mistake(body, operator, expected):
    assert region(expected) in mutated(region(body), operator)


def test_japanese_text_keeps_its_offsets():
    """AST columns are UTF-8 bytes; edits land on the right characters after multi-byte text."""
    body = 'msg = {"role": "ユーザー", "content": q}\nok = len(msg) >= 2'
    assert region('msg = {"role": "ユーザー", "content": q}\nok = len(msg) > 2') in mutated(region(body), "compare")


def test_a_mutant_that_does_not_parse_is_left_out():
    assert all(compile(m.mutated, "cell", "exec") for m in cell_mutants("ex00", "cell", region("x = f(a, b=1)")))


def test_ids_are_stable_and_unique():
    ex01 = load_course().exercises["ex01"]
    first = exercise_mutants(ex01)
    assert [m.id for m in first] == [m.id for m in exercise_mutants(ex01)]
    assert len({m.id for m in first}) == len(first)
    assert {m.operator for m in first} <= set(OPERATORS)


def test_the_diff_shows_the_mistake():
    mutant = next(m for m in cell_mutants("ex00", "cell", region("ok = a <= 5"), ["compare"]))
    assert "-ok = a <= 5\n+ok = a < 5\n" in mutant.diff()
