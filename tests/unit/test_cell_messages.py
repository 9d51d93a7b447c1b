"""A failed cell's message names its cause: the implementation cell above it, and for a NameError the earlier
section whose error left the name undefined (a crash cascade)."""
from types import SimpleNamespace

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from coursegrader.execution.nbgrader_course import AutogradeResult, CellResult
from coursegrader.grading.pipeline import _failed_test_message
from coursegrader.fmapi.log import LogEntry
from coursegrader.fmapi.server import CHAT_PATH


def cell(grade_id, *, test=False, error=None, source="..."):
    meta = {"nbgrader": {"grade_id": grade_id, "grade": test, "solution": not test, "locked": test,
                         **({"points": 1} if test else {})}}
    outputs = [new_output("error", ename=error[0], evalue=error[1], traceback=[])] if error else []
    return new_code_cell(source, metadata=meta, outputs=outputs)


def run_of(cells, log=()) -> SimpleNamespace:
    """The run as the official tier's pipeline holds it; the cells' sources are the source notebook's."""
    from autograder.official import OFFICIAL

    nb = new_notebook(cells=cells)
    results = {c.metadata["nbgrader"]["grade_id"]: CellResult(c.metadata["nbgrader"]["grade_id"], 0, 1,
                                                              [(o.ename, o.evalue) for o in c.outputs])
               for c in cells if c.metadata["nbgrader"]["grade"]}
    return SimpleNamespace(autograded=AutogradeResult(results, nbformat.from_dict(nb), None, None),
                           source_nb=nbformat.from_dict(nb), log=list(log), tier=OFFICIAL)


def test_a_name_error_names_the_earlier_cell_that_failed():
    run = run_of([
        cell("lora_impl", error=("ValueError", "Target modules {'query'} not found in the base model.")),
        cell("lora", test=True, error=("NameError", "name 'peft_model' is not defined")),
        cell("train_impl", error=("NameError", "name 'peft_model' is not defined")),
        cell("train", test=True, error=("NameError", "name 'trainer' is not defined")),
    ])
    message = _failed_test_message(run, run.autograded.cells["train"])
    assert message.startswith("実装セル train_impl でエラーが発生しました: NameError: name 'peft_model'")
    assert "原因は前のセル lora_impl のエラー ValueError: Target modules" in message
    assert "先に lora_impl を直してください" in message
    first = _failed_test_message(run, run.autograded.cells["lora"])
    assert first.startswith("実装セル lora_impl でエラーが発生しました: ValueError") and "原因は前のセル" not in first


def test_a_name_error_in_a_test_cell_names_the_earlier_cell():
    run = run_of([
        cell("judge_impl", error=("ValidationError", "1 validation error for JudgeResult")),
        cell("judge", test=True, error=("NameError", "name 'judge_df' is not defined")),
        cell("registry_impl"),
        cell("registry", test=True, error=("NameError", "name 'judge_tuned_avg' is not defined")),
    ])
    message = _failed_test_message(run, run.autograded.cells["registry"])
    assert message.startswith("テストが失敗しました: NameError") and "judge_impl のエラー ValidationError" in message


def test_other_errors_and_clean_earlier_cells_name_no_earlier_cause():
    run = run_of([
        cell("a_impl"), cell("a", test=True),
        cell("b_impl", error=("NameError", "name 'typo' is not defined")),
        cell("b", test=True, error=("NameError", "name 'typo' is not defined")),
        cell("c_impl", error=("KeyError", "'x'")),
        cell("c", test=True, error=("KeyError", "'x'")),
    ])
    assert "原因は前のセル" not in _failed_test_message(run, run.autograded.cells["b"])  # its own typo
    assert "原因は前のセル" not in _failed_test_message(run, run.autograded.cells["c"])  # not a NameError


def test_after_the_first_hidden_test_only_grader_written_text_is_shown():
    """From the first hidden test on, student code may have seen hidden tests: an exception's text is shown only
    when the instructor wrote it, an API error by its code; what ran before that first hidden test is shown."""
    from coursegrader.grading.pipeline import WITHHELD

    hidden = "### BEGIN HIDDEN TESTS\nassert answer == 42, 'the answer must be 42'\n### END HIDDEN TESTS"
    error = {"error_code": "NO_MATCHING_FIXTURE", "message": "No recorded fixture matches. got 'eJzLSM3JyQcABiwCFQ=='"}
    run = run_of([
        cell("a_impl", error=("ValueError", "before any hidden test")),
        cell("a", test=True, source=hidden, error=("NameError", "name 'x' is not defined")),
        cell("b_impl", error=("BadRequestError", f"Error code: 400 - {error['message']}")),
        cell("b", test=True, error=("AssertionError", "the answer must be 42")),
        cell("c_impl", error=("ValueError", "eJzLSM3JyQcABiwCFQ==")),
        cell("c", test=True, error=("NameError", "name 'y' is not defined")),
    ], log=[LogEntry("POST", CHAT_PATH, 400, response=error)])
    assert "before any hidden test" in _failed_test_message(run, run.autograded.cells["a"])
    shown_b = _failed_test_message(run, run.autograded.cells["b"])
    assert "Error code: 400 (NO_MATCHING_FIXTURE)" in shown_b and "eJz" not in shown_b
    shown_c = _failed_test_message(run, run.autograded.cells["c"])
    assert WITHHELD in shown_c and "eJz" not in shown_c
    run.autograded.notebook.cells[2].outputs = []  # b_impl ran cleanly: b's own error is the instructor's message
    assert "the answer must be 42" in _failed_test_message(run, run.autograded.cells["b"])
