"""ex06 MLflow: checks on the student's tracking store (SQLite), read with MlflowClient outside the kernel."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import urllib.parse
from functools import lru_cache
from pathlib import Path

from ...config import load_course
from ...execute import kernel_env
from ...fmapi.matchers import ANSWER_TAG
from ...metrics.gozaru import gozaru_rate
from ...metrics.text import bleu, rouge
from ... import sandbox
from ...mlflow_store import tracking_db
from ...sandbox.policy import SandboxPolicy, profile_paths
from ..untrusted import copy_regular_tree
from ..evidence import Evidence, Verdict, fail, ok
from ..reference_lm import ReferenceLM
from . import check
from .ex05 import question_of

EX = "ex06"
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
RUN_NAMES = ("base", "finetuned")
REQUIRED_PARAMS = ("model_name", "num_parameters", "eval_samples", "max_new_tokens", "temperature")
# metric -> valid range
METRIC_RANGES = {"bleu": (0, 100), "rouge1": (0, 1), "rouge2": (0, 1), "rougeL": (0, 1), "bertscore_f1": (-1, 1),
                 "gozaru_rate": (0, 1), "gozaru/mean": (0, 1), "avg_prediction_chars": (0, math.inf),
                 "avg_reference_chars": (0, math.inf), "avg_inference_seconds": (0, math.inf)}
JUDGE_SCHEMA = "judge_result"
# Hidden cases for meets_production_criteria: (metrics, expected decision) come from the thresholds.
CRITERIA_KEYS = {"gozaru_rate": "min_gozaru_rate", "rougeL": "min_rougeL", "llm_judge_improvement": "min_judge_improvement"}


class StoreProblem(Exception):
    def __init__(self, verdict: Verdict):
        self.verdict = verdict


def _tolerance() -> float:
    return float(load_course().mlflow["metric_tolerance"])


def _close(logged, value: float, relative: bool = False) -> bool:
    """A logged metric equals our value: a finite number within tolerance (NaN never is)."""
    if not isinstance(logged, (int, float)) or not math.isfinite(logged):
        return False
    return abs(logged - value) <= _tolerance() * (max(1.0, abs(value)) if relative else 1.0)


def _memo(ev: Evidence, key, compute):
    """Compute once per submission (the store does not change while the checks read it);
    a StoreProblem is remembered and raised again."""
    if key not in ev.memo:
        try:
            ev.memo[key] = (compute(), None)
        except StoreProblem as problem:
            ev.memo[key] = (None, problem)
    value, problem = ev.memo[key]
    if problem:
        raise problem
    return value


def _client(ev: Evidence):
    from mlflow import MlflowClient

    db = tracking_db(ev.work_dir)
    if not db.is_file():
        raise StoreProblem(Verdict(False, f"MLflow の記録（{db.name}）がありません。run を記録してください。"
                                          " / No MLflow tracking store.", "mlflow_store_missing"))
    uri = f"sqlite:///{db}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _runs(ev: Evidence) -> dict:
    """run name -> the latest run of that name in the configured experiment."""
    return _memo(ev, "runs", lambda: _find_runs(ev))


def _find_runs(ev: Evidence) -> dict:
    client = _client(ev)
    expected = load_course().mlflow["experiment"]
    experiment = client.get_experiment_by_name(expected)
    runs = client.search_runs([experiment.experiment_id], order_by=["attribute.start_time DESC"]) if experiment else []
    if not runs:
        others = [e.name for e in client.search_experiments() if client.search_runs([e.experiment_id], max_results=1)]
        if not others:
            raise StoreProblem(Verdict(False, "MLflow に run が 1 つも記録されていません。 / No runs were logged.",
                                       "mlflow_no_runs"))
        raise StoreProblem(Verdict(False, f"実験 {expected} に run がありません（記録先: {', '.join(others)}）。"
                                          " / No runs in the expected experiment.", "mlflow_wrong_experiment"))
    found = {}
    for run in runs:
        found.setdefault(run.info.run_name, run)
    missing = [n for n in RUN_NAMES if n not in found]
    if missing:
        raise StoreProblem(fail(f"run {', '.join(missing)} が記録されていません（run 名は base と finetuned）。"))
    outside = [n for n in RUN_NAMES if not _inside(found[n].info.artifact_uri, ev.work_dir)]
    if outside:  # the store is the student's: it may point the grader (and a TA's MLflow UI) anywhere
        raise StoreProblem(Verdict(False, f"run {', '.join(outside)} の artifact の保存先が作業フォルダの外です。"
                                          " / Run artifacts point outside the work folder.", "work_link"))
    return {n: found[n] for n in RUN_NAMES}


def _inside(uri: str, folder: Path) -> bool:
    path = Path(urllib.parse.urlparse(uri).path if uri.startswith("file:") else uri)
    return path.is_absolute() and Path(os.path.normpath(path)).is_relative_to(Path(folder).resolve())


def _table(ev: Evidence, run, name: str) -> dict:
    """A `mlflow.log_table` artifact as {column: values}."""
    return _memo(ev, ("table", run.info.run_id, name), lambda: _download_table(ev, run, name))


def _download_table(ev: Evidence, run, name: str) -> dict:
    client = _client(ev)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run.info.run_id, name, tmp)
        except Exception:  # noqa: BLE001 - a missing artifact is the student's, reported
            raise StoreProblem(fail(f"run {run.info.run_name} に {name} がありません（mlflow.log_table で記録してください）。"))
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {col: [row[i] for row in data["data"]] for i, col in enumerate(data["columns"])}


def store_check(fn):
    """Turn a StoreProblem into its verdict (the wrong experiment, no store, …)."""
    def wrapped(ev: Evidence) -> Verdict:
        try:
            return fn(ev)
        except StoreProblem as problem:
            return problem.verdict
    wrapped.__name__ = fn.__name__
    return check(EX)(wrapped)


@lru_cache(maxsize=2)
def eval_set(dataset_path: str, samples: int) -> tuple[tuple[str, str], ...]:
    from datasets import load_dataset

    data = load_dataset("json", data_files=dataset_path, split="train")
    rows = data.train_test_split(test_size=0.1, seed=42)["test"].select(range(samples))
    return tuple((question_of(r), r["output"]) for r in rows)


def _expected_eval_set(ev: Evidence):
    return eval_set(ev.profile.resolve(ev.profile.dataset), int(ev.inputs["EVAL_SAMPLES"]))


@store_check
def eval_set_logged(ev: Evidence) -> Verdict:
    expected = _expected_eval_set(ev)
    for name, run in _runs(ev).items():
        if not any(d.dataset.name == "gozaru_eval" for d in run.inputs.dataset_inputs):
            return fail(f"run {name} に評価データ gozaru_eval が記録されていません（mlflow.log_input）。")
        table = _table(ev, run, "predictions.json")
        if list(zip(table.get("question", []), table.get("reference", []))) != list(expected):
            return fail(f"run {name} の評価データが、課題の分割（test 側の先頭 {len(expected)} 件）と一致しません。")
    return ok()


def _metric_problems(run, ranges: dict) -> list[str]:
    bad = []
    for name, (low, high) in ranges.items():
        value = run.data.metrics.get(name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or not low <= value <= high:
            bad.append(f"{run.info.run_name}.{name}={value!r}")
    return bad


@store_check
def runs_logged(ev: Evidence) -> Verdict:
    runs = _runs(ev)
    for name, run in runs.items():
        missing = [p for p in REQUIRED_PARAMS if p not in run.data.params]
        if missing:
            return fail(f"run {name} にパラメータ {', '.join(missing)} がありません。")
        if str(run.data.params["eval_samples"]) != str(ev.inputs["EVAL_SAMPLES"]):
            return fail(f"run {name} の eval_samples が {ev.inputs['EVAL_SAMPLES']} ではありません。")
    bad = [b for run in runs.values() for b in _metric_problems(run, METRIC_RANGES)]
    if bad:
        return Verdict(False, f"メトリクスが欠けているか、NaN・範囲外です: {', '.join(bad[:6])}"
                              f" / Metrics missing, NaN or out of range.", "mlflow_invalid_metric")
    for name, run in runs.items():
        if not _close(run.data.metrics["gozaru/mean"], run.data.metrics["gozaru_rate"]):
            return fail(f"run {name} のカスタム指標 gozaru/mean が gozaru_rate と一致しません。")
    return ok()


def _reference_predictions(ev: Evidence, adapter: str | None) -> list[str]:
    lm = ReferenceLM(ev.profile.resolve(ev.profile.model_id), adapter)
    return [lm.answer([{"role": "user", "content": q}], ev.profile.max_new_tokens) for q, _ in _expected_eval_set(ev)]


@store_check
def metrics_recomputed(ev: Evidence) -> Verdict:
    runs = _runs(ev)
    for name, run in runs.items():
        table = _table(ev, run, "predictions.json")
        preds, refs = [str(p) for p in table.get("prediction", [])], [str(r) for r in table.get("reference", [])]
        if not preds or len(preds) != len(refs):
            return fail(f"run {name} の predictions.json に prediction / reference 列がありません。")
        if preds != _reference_predictions(ev, ev.adapter_dir if name == "finetuned" else None):
            return fail(f"run {name} の予測が、採点側で同じモデルから貪欲に生成した回答と一致しません。")
        ours = {"bleu": bleu(preds, refs), **rouge(preds, refs), "gozaru_rate": gozaru_rate(preds),
                "avg_prediction_chars": sum(map(len, preds)) / len(preds),
                "avg_reference_chars": sum(map(len, refs)) / len(refs)}
        for metric, value in ours.items():
            logged = run.data.metrics.get(metric)
            if not _close(logged, value, relative=True):
                return fail(f"run {name} の {metric}（記録 {logged}）が、記録された予測から計算し直した値 {value:.4f} と一致しません。")
    if ev.profile.name == "gpu":
        return ok("BLEU・ROUGE・ござる率を再計算して一致")
    return ok("BLEU・ROUGE・ござる率を再計算して一致。BERTScore はコードの動作確認のみ: オフライン採点の英語エンコーダによる値で、品質の指標ではありません"
              " / BERTScore here checks the code path only, not quality")


def _served_scores(ev: Evidence) -> list[tuple[str, float]]:
    """(answer under review, score the judge returned), in the order they were served."""
    out = []
    for x in ev.served(lambda x: x.schema_name == JUDGE_SCHEMA):
        user = next((m.get("content") for m in reversed(x.messages) if m.get("role") == "user"), "") or ""
        found = ANSWER_TAG.search(str(user))
        try:
            score = float(json.loads(x.reply.get("content") or "{}")["score"])
        except (ValueError, KeyError, TypeError):
            continue
        if found:
            out.append((found.group(1), score))
    return out


@store_check
def judge_averages(ev: Evidence) -> Verdict:
    runs = _runs(ev)
    served = _served_scores(ev)
    if not served:
        return fail("LLM-as-a-judge の API 呼び出し（スキーマ名 judge_result）が記録されていません。")
    averages = {}
    for name, run in runs.items():
        preds = [str(p) for p in _table(ev, run, "predictions.json").get("prediction", [])]
        scores = []
        for pred in preds:
            hit = next((i for i, (answer, _) in enumerate(served) if answer.strip() == pred.strip()), None)
            if hit is None:
                return fail(f"run {name} の予測のうち、審査員に送られていないものがあります。")
            scores.append(served.pop(hit)[1])
        averages[name] = sum(scores) / len(scores)
    metrics = runs["finetuned"].data.metrics
    expected = {"llm_judge_base_avg": averages["base"], "llm_judge_finetuned_avg": averages["finetuned"],
                "llm_judge_improvement": averages["finetuned"] - averages["base"]}
    for metric, value in expected.items():
        logged = metrics.get(metric)
        if not _close(logged, value):
            return fail(f"{metric}（記録 {logged}）が、実際に審査員が返した点数の平均 {value:.4f} と一致しません。")
    _table(ev, runs["finetuned"], "judge.json")
    return ok()


@store_check
def champion_alias(ev: Evidence) -> Verdict:
    runs = _runs(ev)
    client, name = _client(ev), load_course().mlflow["registered_model"]
    try:
        version = client.get_model_version_by_alias(name, "champion")
    except Exception as err:  # noqa: BLE001 - no model / no alias is the student's, reported
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        return Verdict(False, f"登録モデル {name} にエイリアス champion がありません（ステージではなくエイリアスを使います）: {first}"
                              " / No champion alias.", "registry_failed")
    if version.run_id != runs["finetuned"].info.run_id:
        return fail("champion が指すバージョンが finetuned の run から登録されたものではありません。")
    return _loads_in_a_fresh_process(ev, f"models:/{name}@champion")


def fresh_python(ev: Evidence, code: str, *args: str, timeout: int, stdin: str | None = None, files: Path | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -c code args…` on student code in a new process with a kernel's minimal environment:
    in the sandbox (official tier), with a copy of `files` (links left out) at its own path, writable,
    so nothing it does reaches the grader or what the grader reads next. Raises TimeoutExpired."""
    command = [sys.executable, "-c", code, *args]
    with tempfile.TemporaryDirectory(prefix="fresh-python-") as tmp:
        work = Path(tmp) / "work"
        copy_regular_tree(files, work) if files else work.mkdir()
        if not ev.sandboxed:
            return subprocess.run(command, input=stdin, cwd=work, env=kernel_env(env or {}, Path(tmp)),
                                  capture_output=True, text=True, timeout=timeout)
        policy = SandboxPolicy(Path(files or work), work_source=work, readable=profile_paths(ev.profile))
        return sandbox.run(policy, command, env=kernel_env(env or {}, Path("/tmp")), stdin=stdin, timeout=timeout)


def _loads_in_a_fresh_process(ev: Evidence, uri: str) -> Verdict:
    db = f"sqlite:///{tracking_db(ev.work_dir)}"
    timeout = int(load_course().mlflow["load_timeout_s"])
    try:
        proc = fresh_python(ev, "import mlflow, sys; mlflow.pyfunc.load_model(sys.argv[1])", uri, timeout=timeout,
                            files=ev.work_dir, env={"MLFLOW_TRACKING_URI": db, "MLFLOW_REGISTRY_URI": db,
                                                    "HF_HUB_OFFLINE": "1"})
    except subprocess.TimeoutExpired:
        return Verdict(False, f"champion のモデルが {timeout} 秒以内に読み込めませんでした。", "registry_failed")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1][:200]
        return Verdict(False, f"champion のモデルを読み込めません: {last} / The champion model does not load.", "registry_failed")
    return ok()


def hidden_criteria_cases(criteria: dict) -> list[tuple[dict, bool]]:
    """Metric cases around each threshold, with the decision the rule requires."""
    passing = {metric: criteria[key] + 0.05 for metric, key in CRITERIA_KEYS.items()}
    cases = [(passing, True), ({m: criteria[k] for m, k in CRITERIA_KEYS.items()}, True)]  # exactly at the thresholds
    for metric, key in CRITERIA_KEYS.items():
        cases.append(({**passing, metric: criteria[key] - 0.01}, False))
        cases.append(({m: v for m, v in passing.items() if m != metric}, False))
        cases.append(({**passing, metric: float("nan")}, False))
    return cases


CRITERIA_RUNNER = """
import json, math, sys
namespace = {"math": math, "PROMOTION_CRITERIA": json.loads(sys.argv[1])}
exec(compile(sys.stdin.read(), "meets_production_criteria", "exec"), namespace)
cases = json.loads(sys.argv[2])
print(json.dumps([bool(namespace["meets_production_criteria"](c)) for c in cases]))
"""


@check(EX)
def criteria_hidden_cases(ev: Evidence) -> Verdict:
    """Run only the student's function definition, in a fresh process, on cases the notebook never saw."""
    import ast

    source = next((c.source for c in ev.notebook.cells
                   if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "ex06_registry_impl"), "")
    try:
        defs = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "meets_production_criteria"]
    except SyntaxError:
        defs = []
    if not defs:
        return fail("meets_production_criteria が定義されていません。")
    criteria = ev.inputs["PROMOTION_CRITERIA"]
    cases = hidden_criteria_cases(criteria)
    try:
        proc = fresh_python(ev, CRITERIA_RUNNER, json.dumps(criteria), json.dumps([c for c, _ in cases]),
                            stdin=ast.unparse(defs[0]), timeout=30)
        decided = json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return fail("meets_production_criteria を採点用のケースで実行できませんでした（エラーか時間切れ）。")
    wrong = [c for (c, want), got in zip(cases, decided) if want != got]
    if wrong:
        return fail(f"meets_production_criteria の判定が {len(wrong)}/{len(cases)} 件の採点用ケースで基準と違います"
                    "（基準ちょうどの値・欠けた値・NaN の扱いを確認してください）。")
    return ok()
