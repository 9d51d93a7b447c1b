"""ex06 (MLflow) evidence checks on synthetic tracking stores and judge logs.

A store is what the solution's cells leave in the work folder (runs base and finetuned in the course's
experiment, with the eval dataset input, params, metrics and log_table artifacts), written with
MlflowClient into a copy of an empty, already migrated SQLite store (MLflow's migrations take seconds:
they run once per module). The judge log is the ex06 cassette replayed as the fixture server serves it:
the recorded verdicts in turn, whatever answer the request quotes.

Data: the eval set is the solution's split of the cpu profile's dataset; the predictions are the tiny
model's greedy answers, base and with the reference adapter, generated once per module (16 short
generations; `memoized_generation` serves the checks' regenerations of them).
"""
from __future__ import annotations

import copy
import json
import math
import os
import statistics
import subprocess
import sys
import time
from functools import cached_property
from pathlib import Path

import pytest

import builders as b
from autograder.checks import get_check
from autograder.checks.ex06 import METRIC_RANGES, hidden_criteria_cases
from coursegrader.config import load_course
from coursegrader.fmapi.matchers import ANSWER_TAG
from coursegrader.metrics.gozaru import is_gozaru
from coursegrader.mlflow_store import tracking_db

EX = "ex06"
INPUTS = b.inputs(EX)
MLFLOW = load_course().mlflow
RUNS = ("base", "finetuned")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")


# -- the solution's numbers ------------------------------------------------------------------------

def notebook_gozaru_rate():
    """The notebook's own gozaru_rate (cell ex06_gozaru_metric: instructor code, pure Python)."""
    namespace: dict = {}
    exec(compile(b.cell_source(EX, "ex06_gozaru_metric"), "ex06_gozaru_metric", "exec"), namespace)
    return namespace["gozaru_rate"]


def solution_metrics(predictions, references) -> dict:
    """compute_text_metrics of the solution, less BERTScore (no check recomputes it: a plausible value)."""
    import sacrebleu
    from rouge_score import rouge_scorer
    from sacrebleu.tokenizers.tokenizer_ja_mecab import TokenizerJaMecab

    mecab = TokenizerJaMecab()

    class JapaneseTokenizer:
        def tokenize(self, text):
            return mecab(text).split()

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=JapaneseTokenizer())
    rouge = [scorer.score(ref, pred) for pred, ref in zip(predictions, references)]
    rate = notebook_gozaru_rate()(predictions)
    return {
        "bleu": sacrebleu.corpus_bleu(list(predictions), [list(references)], tokenize="ja-mecab").score,
        **{t: sum(s[t].fmeasure for s in rouge) / len(rouge) for t in ("rouge1", "rouge2", "rougeL")},
        "bertscore_f1": 0.71,
        "gozaru_rate": rate,
        "gozaru/mean": rate,  # what mlflow.models.evaluate logs for the custom metric
        "avg_prediction_chars": sum(map(len, predictions)) / len(predictions),
        "avg_reference_chars": sum(map(len, references)) / len(references),
        "avg_inference_seconds": 0.21,
    }


@pytest.fixture(scope="module")
def eval_rows(profile):
    """(question, reference) of the solution's eval set: the test split's first EVAL_SAMPLES rows."""
    from datasets import load_dataset

    data = load_dataset("json", data_files=profile.resolve(profile.dataset), split="train")
    rows = data.train_test_split(test_size=0.1, seed=42)["test"].select(range(INPUTS["EVAL_SAMPLES"]))
    return [(r["instruction"] if not r.get("input") else f"{r['instruction']}\n\n{r['input']}", r["output"]) for r in rows]


def recorded_base_answers() -> list[str]:
    return [ANSWER_TAG.search(i.request["body"]["messages"][-1]["content"]).group(1) for i in b.cassette(EX).interactions]


SECONDS = [0.18, 0.24] * 50  # each answer's generation time: mean 0.21, the logged avg_inference_seconds


def run_spec(eval_rows, predictions: dict[str, list[str]]) -> dict:
    """run name -> what the solution logs for it (params, metrics, tables, the dataset input)."""
    questions, references = [q for q, _ in eval_rows], [r for _, r in eval_rows]
    profile = b.cpu_profile()
    spec = {}
    for name in RUNS:
        preds = predictions[name]
        spec[name] = {
            "dataset": "gozaru_eval",
            "params": {"model_name": profile.resolve(profile.model_id) + ("+gozaru-lora" if name == "finetuned" else ""),
                       "num_parameters": 2540288, "eval_samples": len(eval_rows),
                       "max_new_tokens": profile.max_new_tokens, "temperature": 0.0},
            "metrics": solution_metrics(preds, references),
            "tables": {"predictions.json": {"question": questions, "reference": references, "prediction": preds,
                                            "seconds": SECONDS[:len(preds)]},
                       # what mlflow.models.evaluate(extra_metrics=[gozaru_metric]) logs per row
                       "eval_results_table.json": {"question": questions, "reference": references, "prediction": preds,
                                                   "gozaru/score": [1.0 if is_gozaru(p) else 0.0 for p in preds]}},
        }
    return spec


def judged(spec) -> tuple[list[dict], dict]:
    """The judge requests the solution sends (base answers first, then finetuned), served from the cassette,
    and what it logs from them (metrics and judge.json on the finetuned run)."""
    interactions = b.cassette(EX).interactions
    log, rows = [], []
    for turn, name in enumerate(RUNS):
        table = spec[name]["tables"]["predictions.json"]
        for interaction, question, answer in zip(interactions, table["question"], table["prediction"]):
            body = copy.deepcopy(interaction.request["body"])
            body["messages"][-1]["content"] = INPUTS["JUDGE_TEMPLATE"].format(question=question, answer=answer)
            response = interaction.responses[turn]
            log.append(b.log_entry(body, response["body"], status=response["status"], fixture_id=interaction.id, seq=len(log)))
            verdict = json.loads(response["body"]["choices"][0]["message"]["content"])
            rows.append({"model": name, "question": question, "answer": answer, **verdict})
    average = {name: sum(r["score"] for r in rows if r["model"] == name) / len(spec[name]["tables"]["predictions.json"]["prediction"])
               for name in RUNS}
    metrics = {"llm_judge_base_avg": average["base"], "llm_judge_finetuned_avg": average["finetuned"],
               "llm_judge_improvement": average["finetuned"] - average["base"]}
    judge_table = {k: [r[k] for r in rows] for k in ("model", "question", "answer", "score", "reason")}
    return log, {"metrics": metrics, "tables": {"judge.json": judge_table}}


@pytest.fixture(scope="module")
def generated_predictions(eval_rows, profile, memoized_generation):
    """The solution's greedy answers on the eval set, base and with the reference adapter (ADAPTER_PATH when ex05's
    adapter is unusable). `memoized_generation` keeps them, so the checks' own regenerations are served from it."""
    from autograder.reference_lm import ReferenceLM

    out = {}
    for name, adapter in (("base", None), ("finetuned", profile.reference_adapter_path())):
        lm = ReferenceLM(profile.resolve(profile.model_id), adapter, precision=b.machine_precision())
        out[name] = [lm.answer([{"role": "user", "content": q}], profile.max_new_tokens) for q, _ in eval_rows]
    return out


@pytest.fixture(scope="module")
def solution(eval_rows, generated_predictions):
    """(store spec, judge log) of a correct run."""
    spec = run_spec(eval_rows, generated_predictions)
    log, judge = judged(spec)
    spec["finetuned"]["metrics"].update(judge["metrics"])
    spec["finetuned"]["tables"].update(judge["tables"])
    return spec, log


@pytest.fixture
def spec(solution):
    return copy.deepcopy(solution[0])


@pytest.fixture
def judge_log(solution):
    return copy.deepcopy(solution[1])


# -- stores ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def blank_db(tmp_path_factory) -> bytes:
    """An empty MLflow SQLite store, migrated once."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("blank-mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # the Default experiment's ./mlruns is resolved here, not in the repository
        uri = f"sqlite:///{tracking_db(folder, MLFLOW)}"
        MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
    return tracking_db(folder, MLFLOW).read_bytes()


@pytest.fixture
def work(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


class Store:
    """The student's store in `work`, written the way the notebook's cells write it."""

    def __init__(self, work: Path, blank_db: bytes):
        self.work, self.blank_db = work, blank_db
        self.run_ids: dict[str, str] = {}

    @cached_property
    def client(self):
        """The store's client; the store exists from the first use on (the mlflow.set_experiment of ex06_profile)."""
        from mlflow import MlflowClient

        tracking_db(self.work, MLFLOW).write_bytes(self.blank_db)
        uri = f"sqlite:///{tracking_db(self.work, MLFLOW)}"
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def experiment(self, name: str = MLFLOW.experiment, artifact_location: str | None = None) -> str:
        return self.client.create_experiment(name, artifact_location=artifact_location or str(self.work / "mlruns"))

    def log_run(self, experiment_id: str, name: str, run: dict) -> str:
        import mlflow
        import pandas as pd
        from mlflow.entities import DatasetInput, InputTag, Metric, Param

        client = self.client
        run_id = client.create_run(experiment_id, run_name=name, start_time=run.get("start_time")).info.run_id
        table = next((t for t in run["tables"].values() if "question" in t), {})
        if run.get("dataset"):
            frame = pd.DataFrame({k: table.get(k, []) for k in ("question", "reference")})
            dataset = mlflow.data.from_pandas(frame, name=run["dataset"], targets="reference")._to_mlflow_entity()
            context = run.get("context", "evaluation")
            tags = [InputTag("mlflow.data.context", context)] if context else []
            client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=tags)])
        client.log_batch(run_id, metrics=[Metric(k, v, 0, 0) for k, v in run["metrics"].items()],
                         params=[Param(k, str(v)) for k, v in run["params"].items()])
        for artifact, data in run["tables"].items():
            client.log_table(run_id, data, artifact)
        client.set_terminated(run_id)
        self.run_ids[name] = run_id
        return run_id

    def log_runs(self, spec: dict, experiment_id: str | None = None) -> "Store":
        experiment_id = experiment_id or self.experiment()
        for name, run in spec.items():
            self.log_run(experiment_id, name, run)
        return self

    def register(self, run_name: str, source: Path | None = None, alias: str | None = "champion"):
        """A registered model version from that run (as log_model(registered_model_name=...) makes), with an alias."""
        client, name = self.client, MLFLOW.registered_model
        if not client.search_registered_models(f"name='{name}'"):
            client.create_registered_model(name)
        run_id = self.run_ids[run_name]
        artifacts = Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://"))
        version = client.create_model_version(name, source=str(source or artifacts / "model"), run_id=run_id)
        if alias:
            client.set_registered_model_alias(name, alias, version.version)
        return version


@pytest.fixture
def store(work, blank_db):
    return Store(work, blank_db)


def run(name, work, log=(), **fields):
    fields.setdefault("adapter_dir", b.cpu_profile().reference_adapter_path())
    return get_check(EX, name)(b.evidence(EX, list(log), work_dir=work, **fields))


def reported(spec) -> dict:
    """What 6.2's cell reports: the metrics it computed for each run (the ones 6.3 then logs)."""
    return {"ex06_metrics_impl": {"text_metrics": {name: dict(spec[name]["metrics"]) for name in RUNS}}}


# -- runs_logged -----------------------------------------------------------------------------------

def test_runs_logged_passes_on_the_solution_store(store, spec, work):
    store.log_runs(spec)
    assert run("runs_logged", work).passed
    assert run("runs_logged", work, claims=reported(spec)).passed


def test_runs_logged_fails_when_a_logged_metric_is_not_what_6_2_computed(store, spec, work):
    claims = reported(spec)
    spec["base"]["metrics"]["rougeL"] += 0.05
    store.log_runs(spec)
    verdict = run("runs_logged", work, claims=claims)
    assert not verdict.passed and verdict.code == "ex06_logged_metric_differs"


def test_runs_logged_passes_reading_the_latest_run_of_each_name(store, spec, work):
    experiment = store.experiment()
    broken = copy.deepcopy(spec["finetuned"])
    broken["metrics"]["bleu"] = float("nan")
    broken["start_time"] = int(time.time() * 1000) - 60_000
    store.log_run(experiment, "finetuned", broken)  # a first attempt, then the notebook was run again
    store.log_runs(spec, experiment)
    assert run("runs_logged", work).passed


@pytest.mark.parametrize("case, code", [
    ("no_store", "mlflow_store_missing"),
    ("no_runs", "mlflow_no_runs"),
    ("default_experiment", "mlflow_wrong_experiment"),
    ("finetuned_missing", "ex06_runs_missing"),
    ("runs_misnamed", "ex06_runs_missing"),
    ("param_missing", "ex06_params_missing"),
    ("eval_samples_wrong", "ex06_param_wrong"),
    ("temperature_not_greedy", "ex06_param_wrong"),
    ("max_new_tokens_other", "ex06_param_wrong"),
    ("metric_missing", "mlflow_invalid_metric"),
    ("nan_metric", "mlflow_invalid_metric"),
    ("rouge_as_percent", "mlflow_invalid_metric"),
    ("gozaru_mean_not_the_rate", "ex06_gozaru_mean_mismatch"),
    ("gozaru_logged_by_hand", "ex06_not_evaluated"),
    ("gozaru_scores_not_the_predictions", "ex06_not_evaluated"),
    ("avg_seconds_is_the_total", "ex06_avg_seconds_mismatch"),
    ("no_seconds_column", "ex06_avg_seconds_mismatch"),
    ("artifacts_outside_the_work_folder", "work_link"),
])
def test_runs_logged_fails(store, spec, work, tmp_path, case, code):
    if case == "no_store":
        pass
    elif case == "no_runs":
        store.experiment()
    elif case == "default_experiment":  # EXPERIMENT_NAME not used
        store.log_runs(spec, experiment_id="0")
    elif case == "finetuned_missing":
        store.log_runs({"base": spec["base"]})
    elif case == "runs_misnamed":
        store.log_runs({"base_model": spec["base"], "finetuned_model": spec["finetuned"]})
    elif case == "param_missing":
        del spec["finetuned"]["params"]["temperature"]
        store.log_runs(spec)
    elif case == "eval_samples_wrong":
        spec["base"]["params"]["eval_samples"] = 5
        store.log_runs(spec)
    elif case in ("temperature_not_greedy", "max_new_tokens_other"):
        param = "temperature" if case == "temperature_not_greedy" else "max_new_tokens"
        spec["finetuned"]["params"][param] = spec["finetuned"]["params"][param] + 1
        store.log_runs(spec)
    elif case == "metric_missing":
        del spec["base"]["metrics"]["bertscore_f1"]
        store.log_runs(spec)
    elif case == "nan_metric":
        spec["finetuned"]["metrics"]["rougeL"] = float("nan")
        store.log_runs(spec)
    elif case == "rouge_as_percent":
        spec["base"]["metrics"]["rouge1"] = 100 * spec["base"]["metrics"]["rouge1"] + 1
        store.log_runs(spec)
    elif case == "gozaru_mean_not_the_rate":
        spec["base"]["metrics"]["gozaru/mean"] = 0.5
        store.log_runs(spec)
    elif case == "gozaru_logged_by_hand":  # mlflow.log_metric("gozaru/mean", ...) instead of evaluate
        del spec["finetuned"]["tables"]["eval_results_table.json"]
        store.log_runs(spec)
    elif case == "gozaru_scores_not_the_predictions":
        table = spec["finetuned"]["tables"]["eval_results_table.json"]
        table["gozaru/score"] = [1.0 - v for v in table["gozaru/score"]]
        store.log_runs(spec)
    elif case == "avg_seconds_is_the_total":
        seconds = spec["base"]["tables"]["predictions.json"]["seconds"]
        spec["base"]["metrics"]["avg_inference_seconds"] = sum(seconds)
        store.log_runs(spec)
    elif case == "no_seconds_column":
        del spec["finetuned"]["tables"]["predictions.json"]["seconds"]
        store.log_runs(spec)
    else:
        store.log_runs(spec, experiment_id=store.experiment(artifact_location=str(tmp_path / "elsewhere")))
    verdict = run("runs_logged", work)
    assert not verdict.passed and verdict.code == code


# -- eval_set_logged -------------------------------------------------------------------------------

def test_eval_set_logged_passes_on_the_solution_store(store, spec, work):
    store.log_runs(spec)
    assert run("eval_set_logged", work).passed


@pytest.mark.parametrize("case, code", [
    ("no_store", "mlflow_store_missing"),
    ("no_dataset_input", "ex06_eval_input_missing"),
    ("dataset_misnamed", "ex06_eval_input_missing"),
    ("no_context", "ex06_eval_input_context"),
    ("training_context", "ex06_eval_input_context"),
    ("train_rows", "ex06_eval_set_mismatch"),
    ("input_not_appended", "ex06_eval_set_mismatch"),
    ("fewer_rows", "ex06_eval_set_mismatch"),
    ("no_predictions_table", "ex06_table_missing"),
])
def test_eval_set_logged_fails(store, spec, work, profile, case, code):
    table = spec["finetuned"]["tables"]["predictions.json"]
    if case == "no_dataset_input":
        del spec["base"]["dataset"]
    elif case == "dataset_misnamed":
        spec["finetuned"]["dataset"] = "eval_df"
    elif case in ("no_context", "training_context"):  # log_input without context="evaluation"
        spec["finetuned"]["context"] = None if case == "no_context" else "training"
    elif case == "train_rows":  # the split's train side
        from datasets import load_dataset

        data = load_dataset("json", data_files=profile.resolve(profile.dataset), split="train")
        rows = data.train_test_split(test_size=0.1, seed=42)["train"].select(range(len(table["question"])))
        table["question"], table["reference"] = [r["instruction"] for r in rows], [r["output"] for r in rows]
    elif case == "input_not_appended":
        table["question"] = [q.split("\n\n")[0] for q in table["question"]]
        assert table["question"] != spec["base"]["tables"]["predictions.json"]["question"]
    elif case == "fewer_rows":
        for column in table.values():
            del column[5:]
    elif case == "no_predictions_table":
        spec["base"]["tables"]["eval_predictions.json"] = spec["base"]["tables"].pop("predictions.json")
    if case != "no_store":
        store.log_runs(spec)
    verdict = run("eval_set_logged", work)
    assert not verdict.passed and verdict.code == code


# -- metrics_recomputed ----------------------------------------------------------------------------

@pytest.mark.parametrize("case, code", [
    ("no_store", "mlflow_store_missing"),
    ("no_prediction_column", "ex06_predictions_missing"),
    ("no_predictions_table", "ex06_table_missing"),
])
def test_metrics_recomputed_fails_without_usable_predictions(store, spec, work, case, code):
    table = spec["base"]["tables"]["predictions.json"]
    if case == "no_prediction_column":
        del table["prediction"]
    elif case == "no_predictions_table":
        spec["base"]["tables"] = {}
    if case != "no_store":
        store.log_runs(spec)
    verdict = run("metrics_recomputed", work, claims=reported(spec))
    assert not verdict.passed and verdict.code == code


def test_the_judge_cassette_quotes_the_base_models_answers(generated_predictions):
    """Why replaying it is realistic: the recorded judge requests quote exactly what the grader's model answers."""
    assert generated_predictions["base"] == recorded_base_answers()


def test_metrics_recomputed_passes_on_the_solution_store(store, spec, work):
    store.log_runs(spec)
    verdict = run("metrics_recomputed", work, claims=reported(spec))
    assert verdict.passed, verdict.message


def test_metrics_recomputed_passes_on_a_wrong_eval_set_answered_and_scored_right(store, profile, work):
    """The train split's rows instead of the test split's: 6.1's mistake (eval_set_logged), charged once; 6.2 is
    judged on the questions the run logged, answered by the grader's own model."""
    from datasets import load_dataset

    from autograder.reference_lm import ReferenceLM

    data = load_dataset("json", data_files=profile.resolve(profile.dataset), split="train")
    rows = data.train_test_split(test_size=0.1, seed=42)["train"].select(range(INPUTS["EVAL_SAMPLES"]))
    wrong_rows = [(r["instruction"] if not r.get("input") else f"{r['instruction']}\n\n{r['input']}", r["output"])
                  for r in rows]
    predictions = {name: [ReferenceLM(profile.resolve(profile.model_id), adapter, precision=b.machine_precision()).answer(
                       [{"role": "user", "content": q}], profile.max_new_tokens) for q, _ in wrong_rows]
                   for name, adapter in (("base", None), ("finetuned", profile.reference_adapter_path()))}
    spec = run_spec(wrong_rows, predictions)
    store.log_runs(spec)
    verdict = run("metrics_recomputed", work, claims=reported(spec))
    assert verdict.passed, verdict.message
    assert run("eval_set_logged", work).code == "ex06_eval_set_mismatch"


def test_metrics_recomputed_fails_on_more_questions_than_the_grader_answers(store, eval_rows, generated_predictions,
                                                                          work):
    many = eval_rows * 5  # 40 rows: over 4 × EVAL_SAMPLES
    spec = run_spec(many, {name: preds * 5 for name, preds in generated_predictions.items()})
    store.log_runs(spec)
    verdict = run("metrics_recomputed", work, claims=reported(spec))
    assert not verdict.passed and verdict.code == "ex06_predictions_mismatch"


@pytest.mark.parametrize("case, code", [
    ("references_as_predictions", "ex06_predictions_mismatch"),
    ("base_predictions_for_finetuned", "ex06_predictions_mismatch"),
    ("bleu_with_default_tokenizer", "ex06_metric_mismatch"),
    ("rouge2_off", "ex06_metric_mismatch"),
])
def test_metrics_recomputed_fails_on_other_predictions_or_metrics(store, eval_rows, generated_predictions, work, case, code):
    predictions = copy.deepcopy(generated_predictions)
    if case == "references_as_predictions":
        predictions["finetuned"] = [r for _, r in eval_rows]
    elif case == "base_predictions_for_finetuned":  # the adapter disabled for both runs
        predictions["finetuned"] = predictions["base"]
    spec = run_spec(eval_rows, predictions)
    if case == "bleu_with_default_tokenizer":
        import sacrebleu

        spec["finetuned"]["metrics"]["bleu"] = sacrebleu.corpus_bleu(predictions["finetuned"], [[r for _, r in eval_rows]]).score
    elif case == "rouge2_off":
        spec["base"]["metrics"]["rouge2"] = min(1.0, spec["base"]["metrics"]["rouge2"] + 0.01)
    store.log_runs(spec)
    verdict = run("metrics_recomputed", work, claims=reported(spec))
    assert not verdict.passed and verdict.code == code


def test_metrics_recomputed_fails_without_6_2s_report(store, spec, work):
    store.log_runs(spec)
    verdict = run("metrics_recomputed", work)
    assert not verdict.passed and verdict.code == "claim_missing"


def test_metrics_recomputed_passes_when_only_6_3_logged_a_metric_wrong(store, spec, work):
    """BLEU logged as NaN, or not logged: 6.3's mistake (runs_logged), charged once."""
    claims = reported(spec)
    spec["finetuned"]["metrics"]["bleu"] = float("nan")
    del spec["base"]["metrics"]["rouge2"]
    store.log_runs(spec)
    assert run("metrics_recomputed", work, claims=claims).passed
    assert not run("runs_logged", work, claims=claims).passed


# -- judge_averages --------------------------------------------------------------------------------

def test_judge_averages_passes_on_the_solution_store(store, spec, judge_log, work):
    store.log_runs(spec)
    assert run("judge_averages", work, judge_log).passed


@pytest.mark.parametrize("case, code", [
    ("no_store", "mlflow_store_missing"),
    ("judge_not_called", "ex06_judge_not_called"),
    ("judge_requests_rejected", "ex06_judge_not_called"),
    ("judge_sampled", "ex06_judge_not_greedy"),
    ("judge_not_strict", "ex06_judge_not_strict"),
    ("one_answer_not_judged", "ex06_prediction_not_judged"),
    ("judged_other_answers", "ex06_prediction_not_judged"),
    ("improvement_reversed", "ex06_judge_average_mismatch"),
    ("averages_on_the_base_run", "ex06_judge_average_mismatch"),
    ("average_over_all_answers", "ex06_judge_average_mismatch"),
    ("base_median", "ex06_judge_average_mismatch"),
    ("finetuned_median", "ex06_judge_average_mismatch"),
    ("no_judge_table", "ex06_table_missing"),
    ("judge_table_without_reason", "ex06_judge_table_columns"),
    ("judge_table_without_question", "ex06_judge_table_columns"),
    ("judge_table_other_scores", "ex06_judge_table_mismatch"),
    ("judge_table_runs_swapped", "ex06_judge_table_mismatch"),
])
def test_judge_averages_fails(store, spec, judge_log, work, case, code):
    metrics = spec["finetuned"]["metrics"]
    if case == "judge_not_called":
        judge_log = []
    elif case == "judge_requests_rejected":  # e.g. a schema the server refuses
        judge_log = [b.rejected(e, "INVALID_PARAMETER_VALUE") for e in judge_log]
    elif case == "judge_sampled":
        judge_log[0].request["temperature"] = 1.0
    elif case == "judge_not_strict":
        judge_log[-1].request["response_format"]["json_schema"]["strict"] = False
    elif case == "one_answer_not_judged":
        del judge_log[-1]
    elif case == "judged_other_answers":  # the references judged instead of the base predictions
        table = spec["base"]["tables"]["predictions.json"]
        for entry, question, reference in zip(judge_log, table["question"], table["reference"]):
            entry.request["messages"][-1]["content"] = INPUTS["JUDGE_TEMPLATE"].format(question=question, answer=reference)
    elif case == "improvement_reversed":
        metrics["llm_judge_improvement"] = -metrics["llm_judge_improvement"]
    elif case == "averages_on_the_base_run":
        judge = {k: metrics.pop(k) for k in ("llm_judge_base_avg", "llm_judge_finetuned_avg", "llm_judge_improvement")}
        spec["base"]["metrics"].update(judge)
    elif case == "average_over_all_answers":
        both = (metrics["llm_judge_base_avg"] + metrics["llm_judge_finetuned_avg"]) / 2
        metrics["llm_judge_finetuned_avg"] = both
    elif case in ("base_median", "finetuned_median"):  # the cassette's scores are skewed: mean != median
        run_name = case.split("_")[0]
        table = spec["finetuned"]["tables"]["judge.json"]
        median = statistics.median(s for s, m in zip(table["score"], table["model"]) if m == run_name)
        assert median != metrics[f"llm_judge_{run_name}_avg"]
        metrics[f"llm_judge_{run_name}_avg"] = median
        metrics["llm_judge_improvement"] = metrics["llm_judge_finetuned_avg"] - metrics["llm_judge_base_avg"]
    elif case == "no_judge_table":
        del spec["finetuned"]["tables"]["judge.json"]
    elif case in ("judge_table_without_reason", "judge_table_without_question"):
        del spec["finetuned"]["tables"]["judge.json"][case.rsplit("_", 1)[-1]]
    elif case == "judge_table_other_scores":
        table = spec["finetuned"]["tables"]["judge.json"]
        table["score"] = [6 - s for s in table["score"]]
    elif case == "judge_table_runs_swapped":
        table = spec["finetuned"]["tables"]["judge.json"]
        table["model"] = ["finetuned" if m == "base" else "base" for m in table["model"]]
    if case != "no_store":
        store.log_runs(spec)
    verdict = run("judge_averages", work, judge_log)
    assert not verdict.passed and verdict.code == code


# -- champion_alias --------------------------------------------------------------------------------

PYFUNC_MODEL = '''
import mlflow


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return list(model_input["question"])


mlflow.models.set_model(Echo())
'''


def course_pins(*dropped: str) -> list[str]:
    """The notebook's pip_requirements: torch, transformers and peft pinned to the course's versions."""
    from importlib import metadata

    return [f"{pkg}=={metadata.version(pkg).split('+')[0]}" for pkg in ("torch", "transformers", "peft")
            if pkg not in dropped]


def save_loadable_model(store, work, pip_requirements=None, signature_column="question", model_code=PYFUNC_MODEL):
    """A pyfunc model in the finetuned run's artifacts, where log_model puts it."""
    import mlflow
    import pandas as pd

    artifacts = Path(store.client.get_run(store.run_ids["finetuned"]).info.artifact_uri.removeprefix("file://"))
    code = work / "gozaru_model.py"
    code.write_text(model_code)
    mlflow.pyfunc.save_model(path=str(artifacts / "model"), python_model=str(code),
                             pip_requirements=course_pins() if pip_requirements is None else pip_requirements,
                             signature=mlflow.models.infer_signature(pd.DataFrame({signature_column: ["q"]}), ["a"]))


@pytest.mark.slow  # the champion is loaded with mlflow.pyfunc in a fresh, sandboxed process (imports MLflow: ~5 s)
def test_champion_alias_passes_on_a_loadable_champion(store, spec, work):
    store.log_runs(spec)
    save_loadable_model(store, work)
    store.register("finetuned")
    verdict = run("champion_alias", work)
    assert verdict.passed, verdict.message


@pytest.mark.slow
def test_champion_alias_passes_without_champion_when_an_earlier_cell_left_a_criterion_unlogged(store, spec, work):
    """The judge cell crashed: no llm_judge_improvement in the run, so not promoting is right; the registry cell
    keeps its points when its version loads (the judge's mistake is charged to ex06_judge once)."""
    del spec["finetuned"]["metrics"]["llm_judge_improvement"]
    store.log_runs(spec)
    save_loadable_model(store, work)
    store.register("finetuned", alias=None)
    verdict = run("champion_alias", work)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("case, code", [
    ("no_store", "mlflow_store_missing"),
    ("not_registered", "registry_failed"),
    ("registered_without_alias", "ex06_champion_missing"),
    ("staging_alias_only", "ex06_champion_missing"),
    ("champion_from_the_base_run", "ex06_champion_wrong_run"),
    ("unpromoted_version_from_the_base_run", "ex06_registered_wrong_run"),
])
def test_champion_alias_fails(store, spec, work, case, code):
    if case == "unpromoted_version_from_the_base_run":
        del spec["finetuned"]["metrics"]["llm_judge_improvement"]
    if case != "no_store":
        store.log_runs(spec)
    if case == "registered_without_alias":
        store.register("finetuned", alias=None)
    elif case == "staging_alias_only":
        store.register("finetuned", alias="staging")
    elif case == "champion_from_the_base_run":
        store.register("base")
    elif case == "unpromoted_version_from_the_base_run":
        store.register("base", alias=None)
    verdict = run("champion_alias", work)
    assert not verdict.passed and verdict.code == code


@pytest.mark.slow
def test_champion_alias_fails_when_the_model_does_not_pin_the_course_packages(store, spec, work):
    store.log_runs(spec)
    save_loadable_model(store, work, pip_requirements=course_pins("transformers"))
    store.register("finetuned")
    verdict = run("champion_alias", work)
    assert not verdict.passed and verdict.code == "ex06_model_requirements"
    assert "transformers==" in verdict.message


@pytest.mark.slow
def test_champion_alias_fails_when_the_signature_takes_no_question(store, spec, work):
    store.log_runs(spec)
    save_loadable_model(store, work, signature_column="prompt")
    store.register("finetuned")
    verdict = run("champion_alias", work)
    assert not verdict.passed and verdict.code == "ex06_model_signature"


# What a hostile student's code prints where the grader's fresh processes once read their report: every line a
# runner ever read, written to stdout, to every descriptor it holds and to its parent's and pid 1's through /proc.
FORGE = '''
def _forge(*lines):
    import os
    text = "".join(line + "\\n" for line in lines)
    print(text, flush=True)
    for fd in range(3, 256):
        try:
            os.write(fd, text.encode())
        except OSError:
            pass
    for pid in (os.getppid(), 1):
        for fd in range(0, 32):
            try:
                with open(f"/proc/{pid}/fd/{fd}", "w") as fh:
                    fh.write(text)
            except OSError:
                pass
'''
FORGED_LOAD_LINES = ('REQUIREMENTS=["torch==2.13.0", "transformers==5.24.0", "peft==0.21.2"]', 'SIGNATURE=["question"]',
                     '{"described": {"requirements": ["torch==2.13.0", "transformers==5.24.0", "peft==0.21.2"], '
                     '"inputs": ["question"]}, "loaded": true}')


@pytest.mark.slow
def test_champion_alias_reads_nothing_a_hostile_load_context_prints(store, spec, work):
    """The model's own code runs when it loads: it prints the report of a pinned model with a question input and
    exits; the grader still reads the model's real requirements and signature, which lack both."""
    store.log_runs(spec)
    hostile = FORGE + PYFUNC_MODEL.replace("class Echo(mlflow.pyfunc.PythonModel):\n", f"""class Echo(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        import os
        _forge(*{FORGED_LOAD_LINES!r})
        os._exit(0)

""")
    save_loadable_model(store, work, pip_requirements=["mlflow"], signature_column="prompt", model_code=hostile)
    store.register("finetuned")
    verdict = run("champion_alias", work)
    assert not verdict.passed and verdict.code == "registry_failed", verdict.message  # it never loaded


@pytest.mark.parametrize("stderr, shown", [
    ("Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module named 'peft'\n", "ModuleNotFoundError"),
    ("mlflow.exceptions.MlflowException: Could not find an 'MLmodel' configuration file\n", "MlflowException"),
    ("assert answer == 'hidden expected text'\n", "the model did not load"),  # what a hook saved, printed back
    ("HiddenTests: eNqrVkrOzyspyknVUcpNLS5OTE8FAEMfBsg=\n", "the model did not load"),
    ("", "the model did not load"),
])
def test_a_failed_load_is_named_by_its_exception_only(stderr, shown):
    """The student's load_context writes stderr: only a Python or MLflow exception's name reaches grade.md."""
    from autograder.checks.ex06 import load_error

    assert load_error(stderr) == shown


def test_unpinned_names_what_the_requirements_lack():
    from autograder.checks.ex06 import unpinned

    assert unpinned(["mlflow==3.17.2", *course_pins()]) == []
    assert [p.split("==")[0] for p in unpinned(["torch", *course_pins("torch", "peft")])] == ["torch", "peft"]


@pytest.mark.slow  # starts the fresh process, which fails to load the model
def test_champion_alias_fails_when_the_champion_does_not_load(store, spec, work):
    store.log_runs(spec)
    store.register("finetuned")  # a version whose source holds no MLmodel
    verdict = run("champion_alias", work)
    assert not verdict.passed and verdict.code == "registry_failed"


# -- promotion_follows_criteria (a fresh process that imports MLflow: ~5 s) -------------------------

def solution_promotion() -> str:
    """The solution's registry cell, as the student's notebook would hold it."""
    return b.cell_source(EX, "ex06_registry_impl")


@pytest.mark.slow
def test_promotion_follows_criteria_passes_with_the_solutions_function(store, spec, work):
    check_promotion(store, spec, work, solution_promotion(), None)


@pytest.mark.slow
@pytest.mark.parametrize("case, code", [
    ("unconditional", "ex06_promotion_ignores_criteria"),
    ("never_promotes", "ex06_promotion_not_applied"),
    ("stage_api", "ex06_promotion_not_applied"),
    ("not_defined", "ex06_promotion_undefined"),
])
def test_promotion_follows_criteria_fails(store, spec, work, case, code):
    source = solution_promotion()
    source = {
        "unconditional": source.replace("    if not meets_production_criteria(metrics):\n        return False\n", ""),
        "never_promotes": source.replace("    mlflow.MlflowClient().set_registered_model_alias", "    return False\n    mlflow.MlflowClient().set_registered_model_alias"),
        "stage_api": source.replace('set_registered_model_alias(REGISTERED_MODEL_NAME, "champion", version)',
                                    'transition_model_version_stage(REGISTERED_MODEL_NAME, version, "Production")'),
        "not_defined": source.replace("def promote_if_ready(", "def promote(").replace("if promote_if_ready(", "if promote("),
    }[case]
    assert source != solution_promotion()
    check_promotion(store, spec, work, source, code)


@pytest.mark.slow
def test_promotion_follows_criteria_passes_when_only_the_criteria_are_wrong(store, spec, work):
    """promote_if_ready is judged with the grader's rule in place of meets_production_criteria: a rule that never
    passes is ex06_criteria's loss (criteria_hidden_cases), charged once."""
    source = solution_promotion().replace("def meets_production_criteria(metrics):\n",
                                          "def meets_production_criteria(metrics):\n    return False\n")
    assert source != solution_promotion()
    check_promotion(store, spec, work, source, None)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["prints_the_outcome", "forges_through_every_descriptor"])
def test_promotion_follows_criteria_reads_nothing_promote_if_ready_prints(store, spec, work, case):
    """promote_if_ready prints the outcome of a function that follows the criteria (the candidate is the
    version it is given), never touches the alias, and exits."""
    forged = ('json.dumps({"candidate": str(version), "outcome": [[False, champion, champion], '
              '[True, champion, str(version)]]})')
    send = f"    print({forged}, flush=True)\n" if case == "prints_the_outcome" else f"    _forge({forged})\n"
    source = (FORGE + "\nimport json, os\nimport mlflow\n\n\ndef promote_if_ready(version, metrics):\n"
              "    try:\n        champion = str(mlflow.MlflowClient().get_model_version_by_alias("
              "REGISTERED_MODEL_NAME, 'champion').version)\n    except Exception:\n        champion = None\n"
              + send + "    os._exit(0)\n")
    check_promotion(store, spec, work, source, "ex06_promotion_crashed")


def check_promotion(store, spec, work, source, code):
    """promote_if_ready is re-run on a copy of the store for a new version: it must move champion only for
    metrics that meet the criteria. The student's store itself is left as it was."""
    store.log_runs(spec)
    champion = store.register("finetuned")
    verdict = run("promotion_follows_criteria", work, notebook=notebook_with(source))
    assert verdict.passed if code is None else (not verdict.passed and verdict.code == code), verdict.message
    versions = store.client.search_model_versions(f"name='{MLFLOW.registered_model}'")
    assert [v.version for v in versions] == [champion.version]  # the check worked on a copy


@pytest.mark.parametrize("case, code", [("no_store", "mlflow_store_missing"), ("not_registered", "registry_failed")])
def test_promotion_follows_criteria_fails_without_a_registered_model(store, spec, work, case, code):
    """The blank notebook's store problem is the other store checks' (no second, different report problem)."""
    if case == "not_registered":
        store.log_runs(spec)
    verdict = run("promotion_follows_criteria", work, notebook=notebook_with(None))
    assert not verdict.passed and verdict.code == code


# -- criteria_hidden_cases (a fresh, sandboxed process per call: about 0.1 s) ----------------------

def notebook_with(function_source: str | None, cell_id: str = "ex06_registry_impl"):
    """The graded notebook with cell_id replaced (None: the solution, as in the source notebook)."""
    nb = b.source_notebook(EX)
    if function_source is not None:
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == cell_id:
                cell.source = function_source
    return nb


def solution_function() -> str:
    import ast

    tree = ast.parse(b.cell_source(EX, "ex06_registry_impl"))
    return ast.unparse(next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "meets_production_criteria"))


def test_criteria_hidden_cases_passes_with_the_solutions_function(work):
    assert run("criteria_hidden_cases", work, notebook=notebook_with(None)).passed


@pytest.mark.parametrize("rewrite", ["pandas_isna", "helper_function"])
def test_criteria_hidden_cases_runs_the_function_with_the_notebooks_imports_and_helpers(work, rewrite):
    """A correct function written with the notebook's pandas, or with a helper of its own, keeps its points."""
    solution = solution_function()
    source = {
        "pandas_isna": "import pandas as pd\n\n\n" + solution.replace("math.isnan(value)", "pd.isna(value)"),
        "helper_function": "def _below(value, threshold):\n    return not isinstance(value, (int, float)) or math.isnan(value)"
                           " or value < threshold\n\n\n" + solution.replace(
                               "not isinstance(value, (int, float)) or math.isnan(value) or value < PROMOTION_CRITERIA[criterion]",
                               "_below(value, PROMOTION_CRITERIA[criterion])"),
    }[rewrite]
    assert source != solution and "math.isnan" not in source.split("def meets_production_criteria")[1]
    assert run("criteria_hidden_cases", work, notebook=notebook_with(source)).passed


@pytest.mark.parametrize("case, code", [
    ("not_defined", "ex06_criteria_undefined"),
    ("syntax_error", "ex06_criteria_undefined"),
    ("strict_thresholds", "ex06_criteria_wrong"),
    ("nan_promotes", "ex06_criteria_wrong"),
    ("missing_metric_promotes", "ex06_criteria_wrong"),
    ("hard_coded_thresholds", "ex06_criteria_wrong"),
    ("raises", "ex06_criteria_crashed"),
])
def test_criteria_hidden_cases_fails(work, case, code):
    solution = solution_function()
    source = {
        "not_defined": "champion_version = None\n",
        "syntax_error": "def meets_production_criteria(metrics)\n    return True\n",
        "strict_thresholds": solution.replace("value < PROMOTION", "value <= PROMOTION"),
        "nan_promotes": solution.replace(" or math.isnan(value)", ""),
        "missing_metric_promotes": solution.replace("value = metrics.get(metric)", "value = metrics.get(metric, math.inf)"),
        "hard_coded_thresholds": "def meets_production_criteria(metrics):\n"
                                 "    return all(metrics.get(k, 0) >= 0.5 for k in ('gozaru_rate', 'rougeL', 'llm_judge_improvement'))\n",
        "raises": "def meets_production_criteria(metrics):\n    return metrics['missing']\n",
    }[case]
    assert source != solution
    verdict = run("criteria_hidden_cases", work, notebook=notebook_with(source))
    assert not verdict.passed and verdict.code == code


@pytest.mark.parametrize("case", ["prints_an_empty_report", "forges_through_every_descriptor", "kills_the_runner"])
def test_criteria_hidden_cases_reads_only_one_decision_per_case(work, case):
    """A function that prints a report of no cases (once enough for every hidden case) and exits: one decision
    per case or the check fails."""
    body = {
        "prints_an_empty_report": '    print("[]")\n    print(\'{"decided": []}\', flush=True)\n',
        "forges_through_every_descriptor": '    _forge("[]", \'{"decided": []}\')\n',
        "kills_the_runner": '    _forge("[]", \'{"decided": []}\')\n    os.kill(os.getppid(), 9)\n',
    }[case]
    source = FORGE + "\nimport os\n\n\ndef meets_production_criteria(metrics):\n" + body + "    os._exit(0)\n"
    verdict = run("criteria_hidden_cases", work, notebook=notebook_with(source))
    assert not verdict.passed and verdict.code == "ex06_criteria_crashed", verdict.message


def test_hidden_criteria_cases_sit_around_every_threshold():
    criteria = INPUTS["PROMOTION_CRITERIA"]
    cases = hidden_criteria_cases(criteria)
    namespace = {"math": math, "PROMOTION_CRITERIA": criteria}
    exec(solution_function(), namespace)
    assert [namespace["meets_production_criteria"](c) for c, _ in cases] == [want for _, want in cases]
    assert {want for _, want in cases} == {True, False}
    for metric in ("gozaru_rate", "rougeL", "llm_judge_improvement"):
        assert any(metric not in c for c, _ in cases), f"a case without {metric}"
        assert any(isinstance(c.get(metric), float) and math.isnan(c[metric]) for c, _ in cases)
        assert any(type(c.get(metric)) is int and want for c, want in cases), f"an int {metric} that passes"


def test_the_promotion_runner_gets_the_rule_the_grader_applies():
    """promotion_rule.py's text, as the promotion runner runs it, decides every hidden case as the grader's import."""
    from autograder.checks.ex06 import CRITERIA_KEYS, PROMOTION_RULE
    from autograder.checks.promotion_rule import meets_criteria

    criteria, namespace = INPUTS["PROMOTION_CRITERIA"], {}
    exec(compile(PROMOTION_RULE.read_text(encoding="utf-8"), "promotion_rule", "exec"), namespace)
    cases = hidden_criteria_cases(criteria)
    sent = [namespace["meets_criteria"](c, criteria, CRITERIA_KEYS) for c, _ in cases]
    assert sent == [meets_criteria(c, criteria, CRITERIA_KEYS) for c, _ in cases] == [want for _, want in cases]


def test_every_store_problem_has_its_verdict():
    import dataclasses

    from autograder.checks import tracking_store
    from autograder.checks.ex06 import store_verdict

    kinds = tracking_store.StoreProblem.__subclasses__()
    assert len(kinds) == 6
    for kind in kinds:
        problem = kind(*(["x"] if f.type == "list[str]" else "x" for f in dataclasses.fields(kind)))
        assert not store_verdict(problem).passed, kind.__name__


PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def test_the_official_tiers_executor_turns_mlflows_progress_bar_off_for_the_graders_downloads(monkeypatch):
    """The grader downloads the student's tables with MLflow, whose progress bar would only fill its stderr; a
    setting the grader was started with is kept."""
    from autograder.executor import CheckExecutor
    from coursegrader.grading.tier import RunSetup

    course = load_course()
    setup = RunSetup(course.exercises[EX], b.source_notebook(EX), course, b.cpu_profile(), False, None)
    monkeypatch.setenv(PROGRESS_BAR, "true")
    CheckExecutor(setup)
    assert os.environ[PROGRESS_BAR] == "true"
    monkeypatch.delenv(PROGRESS_BAR)
    try:
        CheckExecutor(setup)
        assert os.environ[PROGRESS_BAR] == "false"
    finally:
        os.environ.pop(PROGRESS_BAR, None)


def test_importing_the_checks_leaves_the_environment_alone():
    code = f"import os, autograder.checks.ex06; print({PROGRESS_BAR!r} in os.environ)"
    env = {k: v for k, v in os.environ.items() if k != PROGRESS_BAR}
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr[-2000:]


def test_runs_logged_accepts_a_perfect_bleu(store, spec, work, eval_rows):
    spec["finetuned"]["tables"]["predictions.json"]["prediction"] = [r for _, r in eval_rows]
    spec["finetuned"]["metrics"].update(solution_metrics([r for _, r in eval_rows], [r for _, r in eval_rows]))
    store.log_runs(spec)
    assert run("runs_logged", work).passed


def test_metric_ranges_cover_what_the_solution_logs(spec):
    assert set(METRIC_RANGES) <= set(spec["base"]["metrics"])


# -- champion_served (6.6: the grader serves the model with MLflow's scoring server in a sandbox) --------------

GOZARU_MODEL = '''
import mlflow


class Gozaru(mlflow.pyfunc.PythonModel):
    """The notebook's GozaruModel: the base model with the adapter (an artifact), greedy answers."""

    def load_context(self, context):
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        base = context.model_config["base_model"]
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        self.model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), context.artifacts["adapter"])
        self.max_new_tokens = int(context.model_config["max_new_tokens"])

    def predict(self, context, model_input, params=None):
        import torch

        answers = []
        for q in list(model_input["question"]):
            inputs = self.tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                                        return_dict=True, return_tensors="pt")
            with torch.no_grad():
                out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
            answers.append(self.tokenizer.decode(out[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip())
        return answers


mlflow.models.set_model(Gozaru())
'''


def served_store(store, spec, work, model_code=GOZARU_MODEL):
    """The solution's runs, and the fine-tuned model (the tiny base model with the reference adapter, as the
    notebook's GozaruModel serves it) registered as champion."""
    import mlflow
    import pandas as pd

    profile = b.cpu_profile()
    store.log_runs(spec)
    artifacts = Path(store.client.get_run(store.run_ids["finetuned"]).info.artifact_uri.removeprefix("file://"))
    code = work / "gozaru_model.py"
    code.write_text(model_code)
    mlflow.pyfunc.save_model(path=str(artifacts / "model"), python_model=str(code), pip_requirements=course_pins(),
                             artifacts={"adapter": str(profile.reference_adapter_path())},
                             model_config={"base_model": profile.resolve(profile.model_id),
                                           "max_new_tokens": profile.max_new_tokens},
                             signature=mlflow.models.infer_signature(pd.DataFrame({"question": ["q"]}), ["a"]))
    store.register("finetuned")


ASK_SERVED = '''import requests


def ask_served(base_url, questions):
    response = requests.post(f"{base_url}/invocations", json={"dataframe_records": [{"question": q} for q in questions]})
    response.raise_for_status()
    return [str(a) for a in response.json()["predictions"]]
'''


@pytest.mark.slow  # a fresh, sandboxed process that imports MLflow and serves: ~8 s
def test_champion_served_passes_when_the_served_model_and_ask_served_agree(store, spec, work):
    """Any input format MLflow's scoring server accepts will do: here dataframe_split, not the task's records."""
    served_store(store, spec, work)
    source = ASK_SERVED.replace('json={"dataframe_records": [{"question": q} for q in questions]}',
                                'json={"dataframe_split": {"columns": ["question"], "data": [[q] for q in questions]}}')
    ev = b.evidence(EX, [], work_dir=work, adapter_dir=b.cpu_profile().reference_adapter_path(),
                    notebook=notebook_with(source, "ex06_serving_impl"))
    served, alias = get_check(EX, "champion_served")(ev), get_check(EX, "champion_alias")(ev)
    assert served.passed, served.message
    assert alias.passed, alias.message
    assert [k for k in ev.shared.computed() if k[0] == "champion job"] == [("champion job", f"models:/{MLFLOW.registered_model}@champion")]


@pytest.mark.slow
@pytest.mark.parametrize("case, code", [
    ("answers_reversed", "ex06_ask_served_wrong"),
    ("model_answers_otherwise", "ex06_served_answers_differ"),
    ("model_does_not_load", "ex06_not_served"),
])
def test_champion_served_fails(store, spec, work, case, code):
    if case == "model_does_not_load":
        store.log_runs(spec)
        store.register("finetuned")  # a version whose source holds no MLmodel
    elif case == "model_answers_otherwise":  # not the fine-tuned model's answers (an echo: quick to load)
        store.log_runs(spec)
        save_loadable_model(store, work)
        store.register("finetuned")
    else:
        served_store(store, spec, work)
    source = {
        "answers_reversed": ASK_SERVED.replace('for a in response.json()["predictions"]]',
                                               'for a in reversed(response.json()["predictions"])]'),
    }.get(case, ASK_SERVED)
    verdict = run("champion_served", work, notebook=notebook_with(source, "ex06_serving_impl"))
    assert not verdict.passed and verdict.code == code, verdict.message


@pytest.mark.parametrize("case, code", [
    ("no_store", "mlflow_store_missing"),
    ("not_registered", "registry_failed"),
    ("ask_served_undefined", "ex06_ask_served_undefined"),
])
def test_champion_served_fails_before_serving(store, spec, work, case, code):
    if case != "no_store":
        store.log_runs(spec)
    if case == "ask_served_undefined":
        store.register("finetuned")
    notebook = notebook_with("served_answers = []\n" if case == "ask_served_undefined" else None, "ex06_serving_impl")
    verdict = run("champion_served", work, notebook=notebook)
    assert not verdict.passed and verdict.code == code


# -- report_logged (6.7) -----------------------------------------------------------------------------------

def solution_report(spec) -> dict:
    """evaluation_report.json as the solution's evaluation_report builds it from the two runs' metrics."""
    from autograder.checks.ex06 import REPORT_METRICS

    base, tuned = spec["base"]["metrics"], spec["finetuned"]["metrics"]
    rows = [(m, base[m], tuned[m]) for m in REPORT_METRICS]
    rows.append(("llm_judge_avg", tuned["llm_judge_base_avg"], tuned["llm_judge_finetuned_avg"]))
    return {"metric": [r[0] for r in rows], "base": [r[1] for r in rows], "finetuned": [r[2] for r in rows],
            "diff": [r[2] - r[1] for r in rows]}


def log_figure(store, name="evaluation_report.png", content: bytes | None = None):
    import io

    from PIL import Image

    if content is None:
        buffer = io.BytesIO()
        Image.new("RGB", (8, 4), "white").save(buffer, format="PNG")
        content = buffer.getvalue()
    folder = store.work / "figure"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(content)
    store.client.log_artifact(store.run_ids["finetuned"], str(folder / name))


def test_report_logged_passes_on_the_solution_store(store, spec, work):
    spec["finetuned"]["tables"]["evaluation_report.json"] = solution_report(spec)
    store.log_runs(spec)
    log_figure(store)
    verdict = run("report_logged", work)
    assert verdict.passed, verdict.message


def test_report_logged_leaves_a_metric_a_run_did_not_log_to_its_own_cell(store, spec, work):
    spec["finetuned"]["tables"]["evaluation_report.json"] = solution_report(spec)
    del spec["base"]["metrics"]["bertscore_f1"]  # 6.3's loss (runs_logged): the report's row is not held to it
    store.log_runs(spec)
    log_figure(store)
    assert run("report_logged", work).passed


@pytest.mark.parametrize("case, code", [
    ("no_store", "mlflow_store_missing"),
    ("no_report", "ex06_table_missing"),
    ("no_diff_column", "ex06_report_columns"),
    ("diff_reversed", "ex06_report_mismatch"),
    ("judge_row_finetuned_twice", "ex06_report_mismatch"),
    ("runs_swapped", "ex06_report_mismatch"),
    ("row_missing", "ex06_report_mismatch"),
    ("no_figure", "ex06_report_figure_missing"),
    ("figure_not_a_png", "ex06_report_figure_missing"),
    ("figure_on_the_base_run", "ex06_report_figure_missing"),
])
def test_report_logged_fails(store, spec, work, case, code):
    report = solution_report(spec)
    if case == "no_diff_column":
        del report["diff"]
    elif case == "diff_reversed":
        report["diff"] = [-d for d in report["diff"]]
    elif case == "judge_row_finetuned_twice":
        report["base"][-1] = report["finetuned"][-1]
        report["diff"][-1] = 0.0
    elif case == "runs_swapped":
        report["base"], report["finetuned"] = report["finetuned"], report["base"]
        report["diff"] = [-d for d in report["diff"]]
    elif case == "row_missing":
        for column in report.values():
            del column[0]
    if case != "no_report":
        spec["finetuned"]["tables"]["evaluation_report.json"] = report
    if case == "no_store":
        verdict = run("report_logged", work)
        assert not verdict.passed and verdict.code == code
        return
    store.log_runs(spec)
    if case == "figure_not_a_png":
        log_figure(store, content=b"not an image")
    elif case == "figure_on_the_base_run":
        store.run_ids["finetuned"] = store.run_ids["base"]
        log_figure(store)
    elif case != "no_figure":
        log_figure(store)
    verdict = run("report_logged", work)
    assert not verdict.passed and verdict.code == code, verdict.message
