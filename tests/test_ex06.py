"""ex06 pieces that need no grading run: Japanese metrics, judge matching, the promotion rule, the TA store copy."""
import json
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest

from coursegrader.config import REPO_ROOT, SOURCE_DIR, load_course
from coursegrader.fmapi.matchers import mismatches, signature
from autograder.checks import get_check
from autograder.checks.ex06 import hidden_criteria_cases
from autograder.evidence import Evidence
from coursegrader.notebook import literals_in
from autograder.metrics.text import bleu, rouge
from commands import autograder


def test_rouge_scores_japanese_only_with_a_japanese_tokenizer():
    from rouge_score import rouge_scorer

    ref, pred = "りんごは赤くて甘い果物でござる。", "りんごは赤い果物です。"
    assert rouge_scorer.RougeScorer(["rouge1"]).score(ref, ref)["rouge1"].fmeasure == 0.0  # the trap
    ours = rouge([pred], [ref])
    assert 0.3 < ours["rouge1"] < 1 and 0 < ours["rouge2"] < ours["rouge1"] and ours["rougeL"] > 0
    assert rouge([ref], [ref]) == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}


def test_bleu_uses_mecab_tokens():
    assert bleu(["東京は日本の首都でござる。"], ["東京は日本の首都でござる。"]) == pytest.approx(100)
    assert 0 < bleu(["りんごは赤い果物です。"], ["りんごは赤くて甘い果物でござる。"]) < 100


def test_judge_requests_match_whatever_answer_they_quote():
    def body(answer):
        return {"model": "m", "temperature": 0.0, "response_format": {"type": "json_schema", "json_schema": {"name": "judge_result"}},
                "messages": [{"role": "system", "content": "審査員"},
                             {"role": "user", "content": f"質問:\n猫とは？\n\n回答:\n<answer>{answer}</answer>"}]}
    assert not mismatches(signature(body("猫は動物です。")), signature(body("猫は動物でござる。")))
    other_question = body("x")
    other_question["messages"][1]["content"] = "質問:\n犬とは？\n\n回答:\n<answer>x</answer>"
    assert mismatches(signature(body("x")), signature(other_question))


def _criteria_evidence(tmp_path, function_source: str) -> Evidence:
    nb = nbformat.read(SOURCE_DIR / "ex06" / "ex06.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata["nbgrader"]["grade_id"] == "ex06_registry_impl":
            cell.source = function_source
    nbformat.write(nb, tmp_path / "ex06.ipynb")  # a file the kernel could have written: the check must not read it
    (tmp_path / "ex06.ipynb").write_text("{}")
    inputs = literals_in(next(c.source for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == "ex06_inputs"))
    return Evidence(log=[], inputs=inputs, source_literals={}, course=load_course(), work_dir=tmp_path, notebook=nb,
                    profile=load_course().profile())


CORRECT = '''
def meets_production_criteria(metrics):
    keys = {"gozaru_rate": "min_gozaru_rate", "rougeL": "min_rougeL", "llm_judge_improvement": "min_judge_improvement"}
    for metric, criterion in keys.items():
        value = metrics.get(metric)
        if not isinstance(value, (int, float)) or math.isnan(value) or value < PROMOTION_CRITERIA[criterion]:
            return False
    return True
'''


@pytest.mark.parametrize("source, passes", [
    (CORRECT, True),
    (CORRECT.replace("value < PROMOTION", "value <= PROMOTION"), False),  # a threshold is "at least"
    (CORRECT.replace(" or math.isnan(value)", ""), False),                # NaN must not promote
    ("def meets_production_criteria(metrics):\n    return metrics.get('gozaru_rate', 0) >= 0.8\n", False),
    ("def meets_production_criteria(metrics):\n    while True:\n        pass\n", False),  # runs with a time limit
    ("x = 1\n", False),
])
def test_criteria_are_judged_on_hidden_cases_in_a_fresh_process(tmp_path, source, passes):
    verdict = get_check("ex06", "criteria_hidden_cases")(_criteria_evidence(tmp_path, source))
    assert verdict.passed is passes, verdict.message


def test_hidden_cases_sit_on_both_sides_of_every_threshold():
    criteria = literals_in(next(c.source for c in nbformat.read(SOURCE_DIR / "ex06" / "ex06.ipynb", as_version=4).cells
                                if c.metadata["nbgrader"]["grade_id"] == "ex06_inputs"))["PROMOTION_CRITERIA"]
    cases = hidden_criteria_cases(criteria)
    assert {want for _, want in cases} == {True, False}
    assert any(any(isinstance(v, float) and math.isnan(v) for v in c.values()) for c, _ in cases)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ta_can_open_a_graded_students_mlflow_store(graded, tmp_path):
    """`mlflow-ui` serves the kept store on localhost, with runs and artifacts readable after the work dir is gone."""
    from mlflow import MlflowClient

    _, _, out = graded("solution")
    db = out / "ex06" / "mlflow" / "mlflow.db"
    assert db.is_file()
    with sqlite3.connect(db) as conn:
        uris = [r[0] for r in conn.execute("SELECT artifact_uri FROM runs")]
    assert uris and all(u.startswith(str(db.parent.resolve())) for u in uris)
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name(load_course().mlflow.experiment)
    runs = client.search_runs([experiment.experiment_id])
    assert {r.info.run_name for r in runs} == {"base", "finetuned"}
    path = client.download_artifacts(runs[0].info.run_id, "predictions.json", str(tmp_path))
    assert json.loads(Path(path).read_text())["columns"][:2] == ["question", "reference"]

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "mlflow-ui", str(out), "--port", str(port)],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        body = None
        deadline = time.monotonic() + 240  # MLflow's server imports for a minute on a busy 2-core machine
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        assert body == b"OK"
        search = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name="
            + urllib.parse.quote(load_course().mlflow.experiment))
        assert json.loads(urllib.request.urlopen(search, timeout=5).read())["experiment"]["name"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_mlflow_ui_says_when_there_is_no_store(tmp_path):
    run = autograder("mlflow-ui", str(tmp_path))
    assert run.returncode == 1 and "no MLflow store" in run.stderr


def test_report_labels_offline_bertscore_as_a_code_path_check(graded):
    _, grade, out = graded("solution")
    ex06 = next(r for r in grade.runs if r.exercise.id == "ex06")
    metrics = next(c for c in ex06.checks if c.id == "ex06_metrics")
    assert metrics.passed and "BERTScore" in metrics.message and "品質の指標ではありません" in metrics.message
    assert "品質の指標ではありません" in (out / "grade.md").read_text()


@pytest.mark.parametrize("outside", [True, False])
def test_a_store_pointing_outside_its_folder_is_refused(tmp_path, outside):
    """The student's store decides where artifacts live; the grader reads (and a TA's UI serves) none outside."""
    from mlflow import MlflowClient

    work = tmp_path / "work"
    work.mkdir()
    uri = f"sqlite:///{work / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    location = str(REPO_ROOT / "source") if outside else str(work / "mlruns")
    experiment = client.create_experiment(load_course().mlflow.experiment, artifact_location=location)
    for name in ("base", "finetuned"):
        client.set_terminated(client.create_run(experiment, run_name=name).info.run_id)
    ev = Evidence(log=[], inputs={"EVAL_SAMPLES": 8}, source_literals={}, course=load_course(), work_dir=work,
                  profile=load_course().profile())
    verdict = get_check("ex06", "runs_logged")(ev)
    assert not verdict.passed
    assert (verdict.code == "work_link") is outside, verdict
