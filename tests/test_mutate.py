"""Mutation testing of the grader (`python -m autograder mutate`): the fast subset CI runs.

The full run is a benchmark-style command (figures in the README); here, the mutants that once survived
and a stable sample per exercise must lose points when graded officially."""
from __future__ import annotations

import pytest

from autograder.cli import main
from autograder.mutate.mutants import exercise_mutants
from autograder.mutate.run import grade_mutants, load_equivalent, sample_of
from coursegrader.config import load_course

# Mistakes the grader once let through (issue: every point earned), by what kills them now.
ONCE_SURVIVED = [  # (cell, mutant description)
    ("ex01_qa_impl", "drop keyword argument max_tokens=MAX_TOKENS"),  # dictated settings checked
    ("ex02_models_impl", 'drop keyword argument description="製品名"'),  # field descriptions checked
    ("ex02_dataframe_impl", ".mean() -> .median() (aggregate)"),  # skewed recorded ratings
    ("ex02_validation_impl", "<= -> < (comparison)"),  # boundary values in the hidden cases
    ("ex03_flow_impl", "only the first of message.tool_calls"),  # a recorded two-call flow
    ("ex03_local_functions_impl", "0 -> 1 (constant)"),  # a product with one item in stock
    ("ex04_batch_impl", "only the first of prompts"),  # one batched generate call for all prompts
    ("ex04_pipeline_impl", "drop keyword argument max_new_tokens=max_new_tokens"),  # a short hidden generation
    ("ex06_metrics_impl", ".mean() -> .median() (aggregate)"),  # BERTScore's mean in a hidden case of three pairs
    ("ex06_judge_impl", "5 -> 6 (constant)"),  # hidden judge answers at the range's ends and just outside it
    ("ex06_judge_impl", "True -> False (constant)"),  # the judge's requests must be strict
    ("ex06_registry_impl", 'drop item "transformers==5.24.0"'),  # the model's requirements.txt pins the course's packages
    ("ex06_runs_impl", "0.0 -> 1.0 (constant)"),  # the logged params' values, not only their names
    ("ex06_runs_impl", "/ -> * (arithmetic)"),  # avg_inference_seconds is the mean of the table's seconds
    ("ex06_judge_impl", 'drop entry "reason": r.reason'),  # judge.json's rows and columns are checked
    ("ex06_judge_impl", ".mean() -> .median() (aggregate)"),  # a stand-in judge whose scores in a run are skewed
    ("ex05_lora_impl", 'drop keyword argument task_type="CAUSAL_LM"'),  # the saved config's task_type
    ("ex05_train_impl", "remove tokenizer.save_pretrained(ADAPTER_DIR)"),  # the tokenizer saved with the adapter
]


def _once_survived():
    found = []
    for cell, description in ONCE_SURVIVED:
        mutants = [m for m in exercise_mutants(cell[:4]) if m.cell == cell and m.description == description]
        assert mutants, f"no mutant {description!r} of {cell}: update ONCE_SURVIVED"
        found.append(mutants[0])
    return found


def test_every_equivalent_entry_names_a_mutant_of_todays_solutions():
    """A stale entry (its solution text changed) must be removed or re-argued, not kept silently."""
    ids = {m.id for ex in load_course().exercises for m in exercise_mutants(ex)}
    assert set(load_equivalent()) <= ids


def test_mutate_lists_mutants_with_their_ids(capsys):
    assert main(["mutate", "--exercise", "ex01", "--operator", "compare", "--operator", "drop_item", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(":drop_item:" in line.split()[0] or ":compare:" in line.split()[0] for line in lines)
    wanted = [lines[0].split()[0], lines[-1].split()[0]]
    assert main(["mutate", "--exercise", "ex01", "--id", wanted[0], "--id", wanted[1], "--list"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == wanted


def _catalog_twins(mutants, tmp_path) -> dict[str, str]:
    """mutant id -> the catalog sample whose notebook is that mutant's (the same code, as Python parses it):
    test_samples grades that sample and holds it to losing its points, so the mutant needs no grading of its own."""
    import ast

    import nbformat

    def code(source: str) -> str:
        try:
            return ast.dump(ast.parse(source))
        except SyntaxError:
            return source

    from autograder.samples import build_sample, load_catalog, solution_notebook
    from coursegrader.notebook import find_cell

    built = {}
    for name, sample in load_catalog().items():
        if sample.base == "solution" and len(sample.exercises) == 1 and sample.expect_failed:
            ex = sample.exercises[0]
            path = build_sample(sample, tmp_path / "catalog" / name) / ex / f"{ex}.ipynb"
            if path.is_file() and not path.is_symlink():
                built.setdefault(ex, {})[name] = [code(c.source) for c in nbformat.read(path, as_version=4).cells]
    twins = {}
    for mutant in mutants:
        nb = solution_notebook(mutant.exercise)
        find_cell(nb, mutant.cell).source = mutant.mutated
        sources = [code(c.source) for c in nb.cells]
        twins.update({mutant.id: name for name, cells in built.get(mutant.exercise, {}).items() if cells == sources})
    return twins


@pytest.mark.slow
def test_the_mutants_that_once_survived_and_a_sample_lose_points(tmp_path):
    mutants = _once_survived() + [m for ex in ("ex01", "ex02", "ex03") for m in sample_of(exercise_mutants(ex), 2)]
    equivalent = load_equivalent()
    mutants = [m for m in mutants if m.id not in equivalent]
    twins = _catalog_twins(mutants, tmp_path)
    print(f"{len(twins)} of {len(mutants)} mutants are catalog samples: {sorted(set(twins.values()))}")
    outcomes = grade_mutants([m for m in mutants if m.id not in twins], jobs=2, workdir=tmp_path)
    survivors = [(o.mutant.id, o.mutant.description, o.score) for o in outcomes if not o.killed]
    assert not survivors
