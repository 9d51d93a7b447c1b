"""Mutation testing of the grader (`python -m autograder mutate`): the fast subset CI runs.

The full run is a benchmark-style command (figures in the README); here, the mutants that once survived
and a stable sample per exercise must lose points when graded officially."""
from __future__ import annotations

import pytest

from autograder.cli import main
from autograder.mutate.mutants import exercise_mutants
from autograder.mutate.run import grade_mutants, load_equivalent, sample_of
from coursegrader.config import load_course

COURSE = load_course()

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


# The catalog sample that makes the same mistake in the same cell, written the same or another way: test_samples
# grades it and holds it to losing its points, so the mutant is not graded a second time here.
WITNESSES = {
    ("ex01_qa_impl", "drop keyword argument max_tokens=MAX_TOKENS"): "ex01_no_max_tokens",
    ("ex02_models_impl", 'drop keyword argument description="製品名"'): "ex02_field_without_description",
    ("ex02_dataframe_impl", ".mean() -> .median() (aggregate)"): "ex02_median_rating",
    ("ex03_flow_impl", "only the first of message.tool_calls"): "ex03_first_tool_call_only",
    ("ex06_judge_impl", "True -> False (constant)"): "ex06_judge_not_strict",
    ("ex05_lora_impl", 'drop keyword argument task_type="CAUSAL_LM"'): "ex05_no_task_type",
    ("ex05_train_impl", "remove tokenizer.save_pretrained(ADAPTER_DIR)"): "ex05_tokenizer_not_saved",
}


def _witness(mutant):
    """The catalog sample witnessing this mutant's mistake, checked to edit that cell and to lose points."""
    from autograder.samples import load_catalog

    name = WITNESSES.get((mutant.cell, mutant.description))
    if name is None:
        return None
    sample = load_catalog(COURSE)[name]
    assert sample.exercises == [mutant.exercise] and sample.expected_failed(mutant.exercise), name
    assert {e.get("cell") for e in sample.edits} == {mutant.cell}, name
    return name


def test_every_witness_is_a_mutant_that_once_survived():
    assert set(WITNESSES) <= set(ONCE_SURVIVED) and all(_witness(m) for m in _once_survived()
                                                        if (m.cell, m.description) in WITNESSES)


def _once_survived():
    found = []
    for cell, description in ONCE_SURVIVED:
        mutants = [m for m in exercise_mutants(COURSE.exercises[cell[:4]]) if m.cell == cell and m.description == description]
        assert mutants, f"no mutant {description!r} of {cell}: update ONCE_SURVIVED"
        found.append(mutants[0])
    return found


def test_every_equivalent_entry_names_a_mutant_of_todays_solutions():
    """A stale entry (its solution text changed) must be removed or re-argued, not kept silently."""
    ids = {m.id for ex in COURSE.exercises.values() for m in exercise_mutants(ex)}
    assert set(load_equivalent()) <= ids


def test_mutate_lists_mutants_with_their_ids(capsys):
    assert main(["mutate", "--exercise", "ex01", "--operator", "compare", "--operator", "drop_item", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(":drop_item:" in line.split()[0] or ":compare:" in line.split()[0] for line in lines)
    wanted = [lines[0].split()[0], lines[-1].split()[0]]
    assert main(["mutate", "--exercise", "ex01", "--id", wanted[0], "--id", wanted[1], "--list"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == wanted


def _to_grade():
    """The mutants that once survived and a stable sample of ex01-ex03's, less the equivalent and the witnessed."""
    mutants = _once_survived() + [m for ex in ("ex01", "ex02", "ex03") for m in sample_of(exercise_mutants(COURSE.exercises[ex]), 2)]
    equivalent, witnessed = load_equivalent(), {m.id for m in _once_survived() if _witness(m)}
    return [m for m in mutants if m.id not in equivalent and m.id not in witnessed]


def wanted_mutants():
    """What the test below asks the session's shared gradings for (conftest queues it with the others)."""
    return _to_grade()[1:]


@pytest.mark.slow
def test_the_mutants_that_once_survived_and_a_sample_lose_points(gradings, tmp_path):
    """The first as `mutate` grades it (a `grade` process per mutant, its grade.json read back); the others in the
    session's shared official gradings, which grade in-process what `grade` grades."""
    first, *others = _to_grade()
    outcomes = grade_mutants([first], jobs=1, workdir=tmp_path, course=COURSE)
    survivors = [(o.mutant.id, o.mutant.description, o.score) for o in outcomes if not o.killed]
    for mutant in others:
        grade, _ = gradings.mutant(mutant)
        if not grade.score < grade.max_score:
            survivors.append((mutant.id, mutant.description, grade.score))
    assert not survivors


def test_a_mutant_that_costs_two_cells_is_flagged_as_charged_twice(capsys):
    """One mistake, one charge: `mutate` lists, per mutant, the graded cells it lost, and names every mutant
    that lost more than one."""
    from autograder.mutate.mutants import Mutant
    from autograder.mutate.run import Outcome, print_summary, report

    def outcome(cell, failed):
        mutant = Mutant(f"{cell}:constant:0", "ex02", cell, "constant", "a constant", 1, "x = 1\n", "x = 2\n")
        return Outcome(mutant, 12.0 - 2 * len(failed), 12.0, failed)

    once, twice = outcome("ex02_single_impl", ["ex02_single"]), outcome("ex02_models_impl", ["ex02_models", "ex02_detailed"])
    assert (once.charged_twice, twice.charged_twice) == (False, True)
    assert [m["charged_twice"] for m in report([once, twice])["mutants"]] == [False, True]
    print_summary([once, twice], min_score=1.0)
    shown = capsys.readouterr().out
    assert "CHARGED TWICE: 1 mutant" in shown and "ex02_models_impl:constant:0: ex02_models, ex02_detailed" in shown
