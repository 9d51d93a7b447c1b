"""ex06 MLflow: checks on the student's tracking store (SQLite), read with MlflowClient outside the kernel."""
from __future__ import annotations

import builtins
import importlib
import inspect
import http.client
import json
import math
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from packaging.version import Version

from coursegrader.config import Profile, load_course
from coursegrader.course_dataset import course_split, load_course_dataset
from coursegrader.execution.forked import IN_A_FORK, report_line
from coursegrader.execution.fresh_python import StandbyPython, fresh_python
from coursegrader.fmapi.matchers import ANSWER_TAG
from coursegrader.grading.untrusted import temporary_folder
from coursegrader.metrics.gozaru import gozaru_rate, is_gozaru
from coursegrader.mlflow_store import tracking_db
from coursegrader.notebook import function_with_dependencies
from coursegrader.sandbox.policy import profile_paths

from ..evidence import Evidence, Verdict, fail, ok
from ..metrics.text import bleu, rouge
from ..reference_lm import ReferenceLM
from . import check, stands_by, warms_up
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
REGENERATED_PER_SAMPLE = 4  # the grader answers at most 4 × EVAL_SAMPLES logged questions
# Hidden cases for meets_production_criteria: (metrics, expected decision) come from the thresholds.
CRITERIA_KEYS = {"gozaru_rate": "min_gozaru_rate", "rougeL": "min_rougeL", "llm_judge_improvement": "min_judge_improvement"}


class StoreProblem(Exception):
    def __init__(self, verdict: Verdict):
        self.verdict = verdict


def _tolerance() -> float:
    return load_course().mlflow.metric_tolerance


def _close(logged, value: float, relative: bool = False) -> bool:
    """A logged metric equals our value: a finite number within tolerance (NaN never is)."""
    if not isinstance(logged, (int, float)) or not math.isfinite(logged):
        return False
    return abs(logged - value) <= _tolerance() * (max(1.0, abs(value)) if relative else 1.0)


def _memo(ev: Evidence, key, compute):
    """Compute once per submission (the store does not change while the checks read it);
    a StoreProblem is remembered and raised again. Checks run apart share it under ev.lock."""
    with ev.lock:
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
        raise StoreProblem(fail("mlflow_store_missing", store=db.name))
    uri = f"sqlite:///{db}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _runs(ev: Evidence) -> dict:
    """run name -> the latest run of that name in the configured experiment."""
    return _memo(ev, "runs", lambda: _find_runs(ev))


def _find_runs(ev: Evidence) -> dict:
    client = _client(ev)
    expected = load_course().mlflow.experiment
    experiment = client.get_experiment_by_name(expected)
    runs = client.search_runs([experiment.experiment_id], order_by=["attribute.start_time DESC"]) if experiment else []
    if not runs:
        others = [e.name for e in client.search_experiments() if client.search_runs([e.experiment_id], max_results=1)]
        if not others:
            raise StoreProblem(fail("mlflow_no_runs"))
        raise StoreProblem(fail("mlflow_wrong_experiment", experiment=expected, found=", ".join(others)))
    found = {}
    for run in runs:
        found.setdefault(run.info.run_name, run)
    missing = [n for n in RUN_NAMES if n not in found]
    if missing:
        raise StoreProblem(fail("ex06_runs_missing", runs=", ".join(missing)))
    outside = [n for n in RUN_NAMES if not _inside(found[n].info.artifact_uri, ev.work_dir)]
    if outside:  # the store is the student's: it may point the grader (and a TA's MLflow UI) anywhere
        raise StoreProblem(fail("work_link", entries=", ".join(f"run {n} artifact_uri" for n in outside)))
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
            raise StoreProblem(fail("ex06_table_missing", run=run.info.run_name, artifact=name))
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {col: [row[i] for row in data["data"]] for i, col in enumerate(data["columns"])}


def store_check(fn=None, *, apart: bool = False):
    """Turn a StoreProblem into its verdict (the wrong experiment, no store, …)."""
    if fn is None:
        return lambda f: store_check(f, apart=apart)

    def wrapped(ev: Evidence) -> Verdict:
        try:
            return fn(ev)
        except StoreProblem as problem:
            return problem.verdict
    wrapped.__name__ = fn.__name__
    return check(EX, apart=apart)(wrapped)


@lru_cache(maxsize=2)
def eval_set(dataset_path: str, samples: int) -> tuple[tuple[str, str], ...]:
    rows = course_split(load_course_dataset(dataset_path))["test"].select(range(samples))
    return tuple((question_of(r), r["output"]) for r in rows)


def _expected_eval_set(ev: Evidence):
    return eval_set(ev.profile.resolve(ev.profile.dataset), int(ev.inputs["EVAL_SAMPLES"]))


@store_check
def eval_set_logged(ev: Evidence) -> Verdict:
    expected = _expected_eval_set(ev)
    for name, run in _runs(ev).items():
        inputs = [d for d in run.inputs.dataset_inputs if d.dataset.name == "gozaru_eval"]
        if not inputs:
            return fail("ex06_eval_input_missing", run=name)
        if not any(t.key == "mlflow.data.context" and t.value == "evaluation" for d in inputs for t in d.tags):
            return fail("ex06_eval_input_context", run=name)
        table = _table(ev, run, "predictions.json")
        if list(zip(table.get("question", []), table.get("reference", []))) != list(expected):
            return fail("ex06_eval_set_mismatch", run=name, count=len(expected))
    return ok()


def _same_number(logged: str, expected: float) -> bool:
    """A param (MLflow stores params as text) that reads as the expected number."""
    try:
        return float(logged) == float(expected)
    except (TypeError, ValueError):
        return False


def _metric_problems(run, ranges: dict) -> list[str]:
    bad = []
    for name, (low, high) in ranges.items():
        value = run.data.metrics.get(name)
        slack = _tolerance() * max(1.0, abs(high) if math.isfinite(high) else 1.0)  # 100.00000000000004 is BLEU 100
        if not isinstance(value, (int, float)) or not math.isfinite(value) or not low - slack <= value <= high + slack:
            bad.append(f"{run.info.run_name}.{name}={value!r}")
    return bad


def _text_metrics(ev: Evidence) -> dict | None:
    """What 6.2's cell reported it computed, per run name; None when it reported nothing."""
    try:
        return ev.claim("ex06_metrics_impl", "text_metrics")
    except KeyError:
        return None


def _logged_unlike_computed(ev: Evidence, runs: dict) -> Verdict | None:
    """6.3 logs the metrics 6.2 computed (its report), unchanged."""
    claimed = _text_metrics(ev)
    if claimed is None:
        return None  # nothing reported: 6.2's metrics_recomputed says so
    for name, run in runs.items():
        computed = claimed.get(name) if isinstance(claimed, dict) else None
        for metric, value in (computed.items() if isinstance(computed, dict) else ()):
            if isinstance(value, (int, float)) and math.isfinite(value) and \
                    not _close(run.data.metrics.get(metric), value, relative=True):
                return fail("ex06_logged_metric_differs", run=name, metric=metric,
                            logged=run.data.metrics.get(metric), value=value)
    return None


@store_check
def runs_logged(ev: Evidence) -> Verdict:
    runs = _runs(ev)
    for name, run in runs.items():
        missing = [p for p in REQUIRED_PARAMS if p not in run.data.params]
        if missing:
            return fail("ex06_params_missing", run=name, params=", ".join(missing))
        dictated = {"eval_samples": ev.inputs["EVAL_SAMPLES"], "max_new_tokens": ev.profile.max_new_tokens,
                    "temperature": 0.0}
        for param, expected in dictated.items():
            if not _same_number(run.data.params[param], expected):
                return fail("ex06_param_wrong", run=name, param=param, expected=expected,
                            logged=run.data.params[param])
    bad = [b for run in runs.values() for b in _metric_problems(run, METRIC_RANGES)]
    if bad:
        return fail("mlflow_invalid_metric", metrics=", ".join(bad[:6]))
    if differs := _logged_unlike_computed(ev, runs):
        return differs
    for name, run in runs.items():
        if not _close(run.data.metrics["gozaru/mean"], run.data.metrics["gozaru_rate"]):
            return fail("ex06_gozaru_mean_mismatch", run=name)
        seconds = _table(ev, run, "predictions.json").get("seconds") or []
        if not seconds or not _close(run.data.metrics["avg_inference_seconds"], _mean(seconds), relative=True):
            return fail("ex06_avg_seconds_mismatch", run=name)
        if failed := _evaluated_by_mlflow(ev, run):
            return failed
    return ok()


def _mean(values: list) -> float:
    try:
        return sum(float(v) for v in values) / len(values)
    except (TypeError, ValueError):
        return math.nan


def _evaluated_by_mlflow(ev: Evidence, run) -> Verdict | None:
    """The custom metric came out of mlflow.models.evaluate: its per-row table (eval_results_table.json) holds
    a gozaru/score for each logged prediction, as the grader scores it, and gozaru/mean is their mean. A
    gozaru/mean logged by hand leaves no such table."""
    try:
        table = _table(ev, run, "eval_results_table.json")
    except StoreProblem:
        return fail("ex06_not_evaluated", run=run.info.run_name)
    predictions, scores = table.get("prediction") or [], table.get("gozaru/score") or []
    expected = [1.0 if is_gozaru(str(p)) else 0.0 for p in predictions]
    if not scores or len(scores) != len(expected) or any(not _close(s, e) for s, e in zip(scores, expected)):
        return fail("ex06_not_evaluated", run=run.info.run_name)
    if not _close(run.data.metrics["gozaru/mean"], sum(expected) / len(expected)):
        return fail("ex06_gozaru_mean_mismatch", run=run.info.run_name)
    return None


def _reference_predictions(ev: Evidence, adapter: str | None, questions: list[str],
                           predictions: list[str]) -> list[str] | None:
    """The grader's greedy answers to the questions the run logged (each logged prediction is confirmed first):
    whether those are the right questions is 6.1's (eval_set_logged), charged once. None for more questions
    than the grader answers."""
    if len(questions) > REGENERATED_PER_SAMPLE * int(ev.inputs["EVAL_SAMPLES"]):
        return None
    lm = ReferenceLM(ev.profile.resolve(ev.profile.model_id), adapter)
    return [lm.answer([{"role": "user", "content": q}], ev.profile.max_new_tokens, expect=p)
            for q, p in zip(questions, predictions)]


# MLflow's SQL stores (tracking, registry): importing them sets up their ORM, about a second.
MLFLOW_STORES = ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store")


@warms_up(EX)
def load_reference_model(inputs: dict, profile: Profile) -> None:
    """Loads only: generating now would fight the student's kernel for the same cores."""
    eval_set(profile.resolve(profile.dataset), int(inputs["EVAL_SAMPLES"]))
    ReferenceLM(profile.resolve(profile.model_id))
    for module in ("peft", *MLFLOW_STORES):  # what the adapter and store checks import next (the stores: 1.1 s)
        importlib.import_module(module)
    importlib.import_module("sqlalchemy.orm").configure_mappers()  # the stores' ORM, set up once per process


@store_check
def metrics_recomputed(ev: Evidence) -> Verdict:
    """6.2's metrics, as its cell reported them, against the grader's recomputation from the logged predictions
    (whether 6.3 logged those metrics faithfully is runs_logged's, charged once)."""
    runs = _runs(ev)
    claimed = _text_metrics(ev)
    if claimed is None:
        return fail("claim_missing", name="text_metrics", grade_id="ex06_metrics_impl")
    for name, run in runs.items():
        table = _table(ev, run, "predictions.json")
        preds, refs = [str(p) for p in table.get("prediction", [])], [str(r) for r in table.get("reference", [])]
        if not preds or len(preds) != len(refs):
            return fail("ex06_predictions_missing", run=name)
        questions = [str(q) for q in table.get("question", [])]
        if len(questions) != len(preds) or \
                preds != _reference_predictions(ev, ev.adapter_dir if name == "finetuned" else None, questions, preds):
            return fail("ex06_predictions_mismatch", run=name)
        ours = {"bleu": bleu(preds, refs), **rouge(preds, refs), "gozaru_rate": gozaru_rate(preds),
                "avg_prediction_chars": sum(map(len, preds)) / len(preds),
                "avg_reference_chars": sum(map(len, refs)) / len(refs)}
        computed = claimed.get(name) if isinstance(claimed, dict) else None
        for metric, value in ours.items():
            theirs = computed.get(metric) if isinstance(computed, dict) else None
            if not _close(theirs, value, relative=True):
                return fail("ex06_metric_mismatch", run=name, metric=metric, computed=theirs, value=value)
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
        return fail("ex06_judge_not_called")
    averages = {}
    requests = ev.served(lambda x: x.schema_name == JUDGE_SCHEMA)
    sampled = [x for x in requests if not _same_number(x.request.get("temperature"), 0.0)]
    if sampled:
        return fail("ex06_judge_not_greedy", temperature=sampled[0].request.get("temperature"))
    if any(((x.request.get("response_format") or {}).get("json_schema") or {}).get("strict") is not True
           for x in requests):
        return fail("ex06_judge_not_strict")
    judged = []  # (run, question, answer, score): what judge.json must hold
    for name, run in runs.items():
        table = _table(ev, run, "predictions.json")
        preds = [str(p) for p in table.get("prediction", [])]
        scores = []
        for question, pred in zip(list(table.get("question", [])) + [None] * len(preds), preds):
            hit = next((i for i, (answer, _) in enumerate(served) if answer.strip() == pred.strip()), None)
            if hit is None:
                return fail("ex06_prediction_not_judged", run=name)
            scores.append(served.pop(hit)[1])
            judged.append((name, str(question).strip(), pred.strip(), float(scores[-1])))
        averages[name] = sum(scores) / len(scores)
    metrics = runs["finetuned"].data.metrics
    expected = {"llm_judge_base_avg": averages["base"], "llm_judge_finetuned_avg": averages["finetuned"],
                "llm_judge_improvement": averages["finetuned"] - averages["base"]}
    for metric, value in expected.items():
        logged = metrics.get(metric)
        if not _close(logged, value):
            return fail("ex06_judge_average_mismatch", metric=metric, logged=logged, value=value)
    return _judge_table_matches(_table(ev, runs["finetuned"], "judge.json"), judged)


JUDGE_COLUMNS = ("model", "question", "answer", "score", "reason")


def _judge_table_matches(table: dict, judged: list[tuple]) -> Verdict:
    """judge.json holds every judged answer with its run (model), question, the score served and a reason."""
    missing = [c for c in JUDGE_COLUMNS if c not in table]
    if missing:
        return fail("ex06_judge_table_columns", columns=", ".join(missing))
    try:
        rows = sorted((str(m), str(q).strip(), str(a).strip(), float(s))
                      for m, q, a, s in zip(table["model"], table["question"], table["answer"], table["score"]))
    except (TypeError, ValueError):
        rows = None
    if rows != sorted(judged):
        return fail("ex06_judge_table_mismatch", count=len(judged))
    return ok()


def meets_criteria(metrics: dict, criteria: dict, keys: dict) -> bool:
    """The grader's own promotion rule: every criterion metric (keys: metric -> criterion) present, a number,
    not NaN, at least its minimum."""
    for metric, key in keys.items():
        value = metrics.get(metric)
        if not isinstance(value, (int, float)) or math.isnan(value) or value < criteria[key]:
            return False
    return True


@store_check(apart=True)
def champion_alias(ev: Evidence) -> Verdict:
    """The model is registered from the finetuned run and loads in a fresh process; champion points to it when
    the finetuned run's logged metrics meet the criteria (by the grader's rule), and may be absent when they do
    not: a metric an earlier cell failed to log is that cell's loss, not this one's."""
    runs = _runs(ev)
    client, name = _client(ev), load_course().mlflow.registered_model
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except Exception as err:  # noqa: BLE001 - a broken registry is the student's, reported
        versions, detail = [], str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
    else:
        detail = "no registered version"
    if not versions:
        return fail("registry_failed", model=name, detail=detail)
    tuned = runs["finetuned"]
    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except Exception:  # noqa: BLE001 - no alias: decided below
        champion = None
    if champion is None:
        if meets_criteria(tuned.data.metrics, ev.inputs["PROMOTION_CRITERIA"], CRITERIA_KEYS):
            return fail("ex06_champion_missing")
        latest = max(versions, key=lambda v: int(v.version))
        if latest.run_id != tuned.info.run_id:
            return fail("ex06_registered_wrong_run")
        return _loads_in_a_fresh_process(ev, name, str(latest.version))
    if champion.run_id != tuned.info.run_id:
        return fail("ex06_champion_wrong_run")
    return _loads_in_a_fresh_process(ev, name, "@champion")


def _fresh_python(ev: Evidence, code: str, *args: str, standby: str | None = None, **kwargs):
    """fresh_python, in the process `standby` started with the kernel when it was started for these files."""
    waiting = ev.standby.get(standby)
    if waiting is not None and waiting.serves(kwargs.get("files"), kwargs.get("env")):
        return waiting.run(code, *args, timeout=kwargs["timeout"], stdin=kwargs.get("stdin"))
    return fresh_python(code, *args, sandboxed=ev.sandboxed, readable=profile_paths(ev.profile), **kwargs)


def _store_env(work_dir: Path) -> dict[str, str]:
    """A fresh process's view of the student's MLflow store (its copy sits at the same path)."""
    db = f"sqlite:///{tracking_db(work_dir)}"
    return {"MLFLOW_TRACKING_URI": db, "MLFLOW_REGISTRY_URI": db, "HF_HUB_OFFLINE": "1"}


# What the registry checks' fresh processes import before any student code runs (seconds each).
STANDBY_IMPORTS = {"load": ("mlflow", "mlflow.pyfunc", "mlflow.pyfunc.scoring_server", "uvicorn", "requests",
                            *MLFLOW_STORES, "torch", "transformers", "peft"),
                   "promotion": ("mlflow", *MLFLOW_STORES)}


@stands_by(EX)
def standby_processes(kernel_dir: Path, profile: Profile, sandboxed: bool) -> dict[str, StandbyPython]:
    return {name: StandbyPython(imports, files=kernel_dir, env=_store_env(kernel_dir), sandboxed=sandboxed,
                                readable=profile_paths(profile), exchange=name == "load")
            for name, imports in STANDBY_IMPORTS.items()}


# The model's requirements and signature are read in a fork that runs no student code (MLflow reads files), then
# the model is loaded, running the student's load_context, in another (coursegrader/execution/forked.py). When
# given a socket path, questions and the student's ask_served (stdin), that fork also serves the model with MLflow's
# scoring server (the app `mlflow models serve --env-manager local` runs) on two sockets: a Unix socket in the
# grader's exchange folder, which the grader asks from outside, and 127.0.0.1:<any port>. Once the grader's
# request is answered, it runs ask_served against 127.0.0.1 and answers with what it returned; a fork that only
# loads runs where serving did not report the model loaded.
LOAD_RUNNER = IN_A_FORK + """
import json, os, socket, sys, threading, time
os.environ["MLFLOW_SQLALCHEMYSTORE_POOLCLASS"] = "NullPool"
import mlflow
uri = sys.argv[1]
serve_at = sys.argv[2:5]
source = sys.stdin.read()

def warm_stores():
    # the tracking and registry stores, built once here (engine, schema check: 1.4 s) for every fork to
    # inherit; NullPool: no connection stays open, so none is carried across a fork
    client = mlflow.MlflowClient()
    for search in (client.search_experiments, client.search_registered_models):
        try:
            search(max_results=1)
        except Exception:
            pass

warm_stores()

def described():
    with open(mlflow.pyfunc.get_model_dependencies(uri)) as fh:
        requirements = [line.strip() for line in fh if line.strip()]
    signature = mlflow.models.get_model_info(uri).signature
    return {"requirements": requirements,
            "inputs": signature.inputs.input_names() if signature and signature.inputs else []}

def loaded():
    mlflow.pyfunc.load_model(uri)
    return True

def served(unix_path, questions, timeout):
    import uvicorn
    from mlflow.pyfunc import scoring_server
    deadline = time.monotonic() + float(timeout)
    answered = threading.Event()

    def watched(app):
        async def middleware(scope, receive, send):
            async def sending(message):
                await send(message)
                if message.get("type") == "http.response.body" and not message.get("more_body") \\
                        and scope.get("path") == "/invocations" and (scope.get("server") or (0, None))[1] is None:  # a Unix socket: no port
                    answered.set()
            await app(scope, receive, sending)
        return middleware

    app = scoring_server.init(mlflow.pyfunc.load_model(uri))
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    unix.listen(8)
    tcp = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(watched(app), log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [unix, tcp]}, daemon=True).start()
    answered.wait(max(0.0, deadline - time.monotonic()))
    try:
        namespace = {"__name__": "ask_served"}
        exec(compile(source, "ask_served", "exec"), namespace)
        return {"loaded": True, "asked": [str(a) for a in namespace["ask_served"](
            f"http://127.0.0.1:{tcp.getsockname()[1]}", json.loads(questions))]}
    except BaseException:
        return {"loaded": True, "asked": None}

report = {"described": in_a_fork(described)[1]}
if len(serve_at) == 3:
    report["served"] = in_a_fork(served, *serve_at)[1]
# serving loaded the model already; a load of its own only where serving did not say so
report["loaded"] = (report.get("served") or {}).get("loaded") is True or in_a_fork(loaded) == (0, True)
print(json.dumps(report))
"""
PINNED_PACKAGES = ("torch", "transformers", "peft")
# The exceptions a failed load is named by in the report (grade.md): Python's own and MLflow's. The student's
# load_context writes stderr as it likes, and could print what its kernel saw, hidden tests included.
NAMED_LOAD_ERRORS = {name for name, value in vars(builtins).items()
                     if isinstance(value, type) and issubclass(value, BaseException)} | {"MlflowException"}


def load_error(stderr: str) -> str:
    """The exception a failed load ended in, by name only, where it is one of NAMED_LOAD_ERRORS."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    name = lines[-1].split(":", 1)[0].rsplit(".", 1)[-1] if lines else ""
    return name if name in NAMED_LOAD_ERRORS else "the model did not load"


@dataclass(frozen=True)
class ChampionJob:
    """One sandboxed run of LOAD_RUNNER for a registered model (champion_alias and champion_served share it)."""
    returncode: int | None  # None: it ran out of time
    report: dict  # its report: described, loaded, and served (what ask_served returned)
    stderr: str
    answer: tuple  # the grader's own /invocations request: (HTTP status, JSON answer), or (None, why there is none)


def _champion_job(ev: Evidence, uri: str) -> ChampionJob:
    """LOAD_RUNNER for uri, once per submission: a lock of its own, so the checks that only read the store wait
    for nothing."""
    with ev.lock:
        slot = ev.memo.setdefault(("champion job", uri), {"lock": threading.Lock()})
    with slot["lock"]:
        if "job" not in slot:
            slot["job"] = _run_champion_job(ev, uri)
    return slot["job"]


def _served_questions(ev: Evidence) -> list[str]:
    """The first questions of the finetuned run's predictions.json: what the grader asks the served model."""
    try:
        table = _table(ev, _runs(ev)["finetuned"], "predictions.json")
    except StoreProblem:
        return []
    return [str(q) for q in table.get("question", [])][:SERVED_QUESTIONS]


def _ask_served_source(ev: Evidence) -> str | None:
    """6.6's ask_served with the notebook's imports and the helpers it uses (None: not defined, or no notebook)."""
    return function_with_dependencies(ev.notebook, "ex06_serving_impl", "ask_served") if ev.notebook else None


def _run_champion_job(ev: Evidence, uri: str) -> ChampionJob:
    """In the standby "load" process where it was started for these files, else in a fresh one; meanwhile, the
    grader asks the served model over the Unix socket in the exchange folder."""
    questions = _served_questions(ev)
    source = _ask_served_source(ev) or ""
    waiting, files, env = ev.standby.get("load"), ev.work_dir, _store_env(ev.work_dir)
    standby = waiting is not None and waiting.serves(files, env)
    timeout = load_course().mlflow.load_timeout_s
    with temporary_folder(prefix="served-") as spare:
        path = (waiting.exchange if standby else spare) / SERVED_SOCKET
        args = [uri, str(path), json.dumps(questions, ensure_ascii=False), str(timeout)] if questions else [uri]
        stop, out, deadline = threading.Event(), {}, time.monotonic() + timeout
        asker = threading.Thread(target=lambda: out.setdefault("answer", _ask_over_unix_socket(
            path, questions, deadline, stop)), daemon=True)
        if questions:
            asker.start()
        try:
            if standby:
                proc = waiting.run(LOAD_RUNNER, *args, timeout=timeout, stdin=source)
            else:
                proc = fresh_python(LOAD_RUNNER, *args, timeout=timeout, sandboxed=ev.sandboxed, stdin=source,
                                    readable=profile_paths(ev.profile), files=files, env=env, exchange=spare)
        except subprocess.TimeoutExpired:
            proc = None
        finally:
            stop.set()
            if questions:
                asker.join()
    if proc is None:
        return ChampionJob(None, {}, "", out.get("answer", (None, f"TimeoutExpired ({timeout} s)")))
    return ChampionJob(proc.returncode, report_line(proc.stdout) or {}, proc.stderr,
                       out.get("answer", (None, "no request was made")))


def _loads_in_a_fresh_process(ev: Evidence, model: str, version: str) -> Verdict:
    """The registered model's version (a number, or @champion) loads with mlflow.pyfunc in a fresh process."""
    uri = f"models:/{model}/{version}" if version[0].isdigit() else f"models:/{model}{version}"
    job = _champion_job(ev, uri)
    if job.returncode is None:
        timeout = load_course().mlflow.load_timeout_s
        return fail("registry_failed", model=model, detail=f"mlflow.pyfunc.load_model: TimeoutExpired ({timeout} s)")
    described = job.report.get("described")
    if job.returncode != 0 or job.report.get("loaded") is not True or not isinstance(described, dict):
        return fail("registry_failed", model=model, detail=f"mlflow.pyfunc.load_model: {load_error(job.stderr)}")
    requirements, inputs = described.get("requirements"), described.get("inputs")
    if missing := unpinned(requirements if isinstance(requirements, list) else []):
        return fail("ex06_model_requirements", missing=", ".join(missing))
    if not isinstance(inputs, list) or "question" not in inputs:
        return fail("ex06_model_signature", inputs=inputs if isinstance(inputs, list) else [])
    return ok()


def unpinned(requirements: list[str]) -> list[str]:
    """The course's packages the model's requirements.txt does not pin to the installed version (a serving
    endpoint builds its environment from that file; MLflow adds only mlflow itself)."""
    pinned = {}
    for line in requirements:
        name, _, version = str(line).partition("==")
        pinned[name.strip().lower().replace("_", "-")] = version.strip().split("+")[0]
    wanted = {pkg: Version(metadata.version(pkg)).base_version for pkg in PINNED_PACKAGES}
    return [f"{pkg}=={version}" for pkg, version in wanted.items() if pinned.get(pkg) != version]


# Each step that touches the store is a fork of its own; the runner builds the stores first and holds no open
# connection when it forks (NullPool); only the forks that call promote_if_ready run student code
# (coursegrader/execution/forked.py).
PROMOTION_RUNNER = IN_A_FORK + """
import json, math, os, sys
os.environ["MLFLOW_SQLALCHEMYSTORE_POOLCLASS"] = "NullPool"
import mlflow
name, criteria, cases, rule, keys = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
source = sys.stdin.read()

def warm_registry():
    # the registry store, built once here (engine, schema check: 1.4 s) for every fork to inherit; NullPool: no
    # connection stays open, so none is carried across a fork (promotion needs no tracking store)
    try:
        mlflow.MlflowClient().search_registered_models(max_results=1)
    except Exception:
        pass

warm_registry()

def new_candidate():
    client = mlflow.MlflowClient()
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except Exception:
        versions = []
    if not versions:
        return None
    latest = max(versions, key=lambda v: int(v.version))
    return [str(client.create_model_version(name, latest.source, run_id=latest.run_id).version), champion()]

def champion():
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(name, "champion").version)
    except Exception:
        return None

def promote(version, metrics):
    namespace = {"math": math, "mlflow": mlflow, "REGISTERED_MODEL_NAME": name, "PROMOTION_CRITERIA": criteria}
    exec(compile(source, "promote_if_ready", "exec"), namespace)
    exec(rule, namespace)  # the grader's meets_criteria: ex06_criteria is charged for the student's
    namespace["meets_production_criteria"] = lambda metrics: namespace["meets_criteria"](metrics, criteria, keys)
    return bool(namespace["promote_if_ready"](version, metrics))

_, started = in_a_fork(new_candidate)
candidate, before = started if isinstance(started, list) else (None, None)
outcome = []
for metrics in cases if candidate else ():
    status, returned = in_a_fork(promote, candidate, metrics)
    after = in_a_fork(champion)[1]
    outcome.append([returned if status == 0 else None, before, after])
    before = after
print(json.dumps({"candidate": candidate, "outcome": outcome}))
"""


@store_check(apart=True)
def promotion_follows_criteria(ev: Evidence) -> Verdict:
    """Re-run the student's promote_if_ready on a copy of the store, for a new version of the model: metrics that
    fail the criteria must leave champion where it is, metrics that pass must move it there."""
    _runs(ev)  # no store, no runs, the wrong experiment: the same verdict as the other store checks
    source = function_with_dependencies(ev.notebook, "ex06_registry_impl", "promote_if_ready")
    if source is None:
        return fail("ex06_promotion_undefined")
    criteria, name = ev.inputs["PROMOTION_CRITERIA"], load_course().mlflow.registered_model
    failing = {metric: 0.0 for metric in CRITERIA_KEYS}
    passing = {metric: criteria[key] + 1.0 for metric, key in CRITERIA_KEYS.items()}
    try:
        proc = _fresh_python(ev, PROMOTION_RUNNER, name, json.dumps(criteria), json.dumps([failing, passing]),
                             inspect.getsource(meets_criteria), json.dumps(CRITERIA_KEYS), stdin=source,
                             timeout=load_course().mlflow.load_timeout_s, files=ev.work_dir,
                             env=_store_env(ev.work_dir), standby="promotion")
    except subprocess.TimeoutExpired:
        return fail("ex06_promotion_crashed")
    report = report_line(proc.stdout)
    if report is None or proc.returncode != 0:
        return fail("ex06_promotion_crashed")
    if report.get("candidate") is None:
        return fail("registry_failed", model=name, detail="no registered version")
    outcome = report.get("outcome")
    if not (isinstance(outcome, list) and len(outcome) == 2 and all(isinstance(o, list) and len(o) == 3 for o in outcome)
            and all(isinstance(returned, bool) for returned, _, _ in outcome)):
        return fail("ex06_promotion_crashed")
    (kept, before, after_failing), (moved, _, after_passing) = outcome
    if kept or after_failing != before:
        return fail("ex06_promotion_ignores_criteria")
    if not moved or after_passing != report["candidate"]:
        return fail("ex06_promotion_not_applied")
    return ok()


def hidden_criteria_cases(criteria: dict) -> list[tuple[dict, bool]]:
    """Metric cases around each threshold, with the decision the rule requires."""
    passing = {metric: criteria[key] + 0.05 for metric, key in CRITERIA_KEYS.items()}
    cases = [(passing, True), ({m: criteria[k] for m, k in CRITERIA_KEYS.items()}, True),  # exactly at the thresholds
             ({m: math.ceil(criteria[k]) for m, k in CRITERIA_KEYS.items()}, True)]  # ints, e.g. a rate of 1
    for metric, key in CRITERIA_KEYS.items():
        cases.append(({**passing, metric: criteria[key] - 0.01}, False))
        cases.append(({m: v for m, v in passing.items() if m != metric}, False))
        cases.append(({**passing, metric: float("nan")}, False))
    return cases


CRITERIA_RUNNER = IN_A_FORK + """
import json, math, sys
criteria, cases, source = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.stdin.read()

def decide():
    namespace = {"math": math, "PROMOTION_CRITERIA": criteria}
    exec(compile(source, "meets_production_criteria", "exec"), namespace)
    return [bool(namespace["meets_production_criteria"](case)) for case in cases]

status, decided = in_a_fork(decide)
print(json.dumps({"decided": decided if status == 0 else None}))
"""


@check(EX, apart=True)
def criteria_hidden_cases(ev: Evidence) -> Verdict:
    """Run the student's function, with the notebook's imports and helpers it uses, in a fresh (sandboxed)
    process on cases the notebook never saw: one decision per case, or it crashed."""
    source = function_with_dependencies(ev.notebook, "ex06_registry_impl", "meets_production_criteria")
    if source is None:
        return fail("ex06_criteria_undefined")
    criteria = ev.inputs["PROMOTION_CRITERIA"]
    cases = hidden_criteria_cases(criteria)
    try:
        proc = _fresh_python(ev, CRITERIA_RUNNER, json.dumps(criteria), json.dumps([c for c, _ in cases]),
                             stdin=source, timeout=load_course().mlflow.criteria_timeout_s)
    except subprocess.TimeoutExpired:
        return fail("ex06_criteria_crashed")
    decided = (report_line(proc.stdout) or {}).get("decided")
    if not (isinstance(decided, list) and len(decided) == len(cases) and all(isinstance(d, bool) for d in decided)):
        return fail("ex06_criteria_crashed")
    wrong = [c for (c, want), got in zip(cases, decided, strict=True) if want != got]
    if wrong:
        return fail("ex06_criteria_wrong", wrong=len(wrong), total=len(cases))
    return ok()


# -- 6.6 Model Serving -----------------------------------------------------------------------------------------
SERVED_QUESTIONS = 2  # the first questions of the finetuned run's predictions.json that the grader asks
SERVED_SOCKET = "served.sock"  # in the exchange folder: the grader's way in to the sandbox's scoring server
SERVED_ANSWER_LIMIT = 1 << 20  # bytes of the scoring server's answer the grader reads

class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def _ask_over_unix_socket(path: Path, questions: list[str], deadline: float, stop: threading.Event) -> tuple:
    """(HTTP status, JSON answer) of the grader's own /invocations request, once the server answers /ping;
    (None, reason) when it never does before the deadline or the runner ends."""
    body = json.dumps({"dataframe_records": [{"question": q} for q in questions]}, ensure_ascii=False).encode()
    while time.monotonic() < deadline and not stop.is_set():
        try:
            ping = _UnixHTTPConnection(path, timeout=5)
            ping.request("GET", "/ping")
            ready = ping.getresponse().status == 200
            ping.close()
        except OSError:
            ready = False
        if ready:
            break
        time.sleep(0.1)
    else:
        return None, "the server did not start"
    try:
        conn = _UnixHTTPConnection(path, timeout=max(1.0, deadline - time.monotonic()))
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read(SERVED_ANSWER_LIMIT + 1)
        conn.close()
    except OSError as err:
        return None, f"the request failed: {type(err).__name__}"
    if len(raw) > SERVED_ANSWER_LIMIT:
        return None, "the answer is too large"
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, None


def served_uri(ev: Evidence) -> str | None:
    """What 6.6 serves: the champion, or the latest registered version where there is none (the criteria not met)."""
    client, name = _client(ev), load_course().mlflow.registered_model
    try:
        client.get_model_version_by_alias(name, "champion")
        return f"models:/{name}@champion"
    except Exception:  # noqa: BLE001 - no alias: the latest version
        pass
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except Exception:  # noqa: BLE001 - a broken registry: nothing to serve
        versions = []
    return f"models:/{name}/{max(int(v.version) for v in versions)}" if versions else None


@store_check(apart=True)
def champion_served(ev: Evidence) -> Verdict:
    """The grader serves the student's registered model (the champion, else the latest version) with MLflow's scoring
    server in the sandbox and asks it the finetuned run's first questions from outside: the answers it receives must
    be the grader's own greedy answers of the base model with the adapter ex06 evaluated (whether the run logged
    those is metrics_recomputed's, charged once), and the student's ask_served, run against the same server, must
    return them."""
    runs = _runs(ev)
    _table(ev, runs["finetuned"], "predictions.json")  # none: the same verdict as the other store checks
    questions = _served_questions(ev)
    if not questions:
        return fail("ex06_predictions_missing", run="finetuned")
    if _ask_served_source(ev) is None:
        return fail("ex06_ask_served_undefined")
    uri = served_uri(ev)
    if uri is None:
        return fail("registry_failed", model=load_course().mlflow.registered_model, detail="no registered version")
    job = _champion_job(ev, uri)
    status, answer = job.answer
    if status is None:
        return fail("ex06_not_served", uri=uri, detail=answer if job.report.get("loaded") is not False
                    else "the model did not load")
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if status != 200 or not isinstance(predictions, list):
        return fail("ex06_not_served", uri=uri, detail=f"HTTP {status}")
    served = [str(p).strip() for p in predictions]
    if served != _reference_predictions(ev, ev.adapter_dir, questions, served):
        return fail("ex06_served_answers_differ", served=len(served), expected=len(questions))
    asked = (job.report.get("served") or {}).get("asked") if isinstance(job.report.get("served"), dict) else None
    if not isinstance(asked, list):
        return fail("ex06_ask_served_failed")
    if [str(a).strip() for a in asked] != served:
        return fail("ex06_ask_served_wrong")
    return ok()


# -- 6.7 the evaluation report ---------------------------------------------------------------------------------
REPORT_METRICS = ("bleu", "rouge1", "rouge2", "rougeL", "bertscore_f1", "gozaru_rate", "avg_prediction_chars",
                  "avg_inference_seconds")
REPORT_COLUMNS = ("metric", "base", "finetuned", "diff")
JUDGE_ROW = ("llm_judge_avg", "llm_judge_base_avg", "llm_judge_finetuned_avg")  # row, base's and finetuned's metric
FIGURE_MAX_BYTES = 16 << 20


def report_rows(base: dict, tuned: dict) -> dict[str, tuple]:
    """The report's rows as the grader builds them from the two runs' logged metrics: metric -> (base, finetuned)."""
    rows = {metric: (base.get(metric), tuned.get(metric)) for metric in REPORT_METRICS}
    rows[JUDGE_ROW[0]] = (tuned.get(JUDGE_ROW[1]), tuned.get(JUDGE_ROW[2]))
    return rows


@store_check
def report_logged(ev: Evidence) -> Verdict:
    """evaluation_report.json on the finetuned run holds, for every metric both runs logged, base, finetuned and
    their difference, as the grader computes them from the runs; a PNG figure sits beside it. A metric a run did
    not log is the loss of the cell that should have logged it."""
    runs = _runs(ev)
    tuned = runs["finetuned"]
    table = _table(ev, tuned, "evaluation_report.json")
    if missing := [c for c in REPORT_COLUMNS if c not in table]:
        return fail("ex06_report_columns", columns=", ".join(missing))
    logged = {}
    for metric, *values in zip(*(table[c] for c in REPORT_COLUMNS)):
        logged.setdefault(str(metric), dict(zip(REPORT_COLUMNS[1:], values)))
    for metric, (base, finetuned) in report_rows(runs["base"].data.metrics, tuned.data.metrics).items():
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (base, finetuned)):
            continue
        row = logged.get(metric, {})
        for column, value in (("base", base), ("finetuned", finetuned), ("diff", finetuned - base)):
            if not _close(row.get(column), value, relative=True):
                return fail("ex06_report_mismatch", metric=metric, column=column, logged=row.get(column), value=value)
    if not _has_png(ev, tuned):
        return fail("ex06_report_figure_missing")
    return ok()


def _has_png(ev: Evidence, run) -> bool:
    """A .png artifact at the run's top level that Pillow reads as a PNG (checked, not decoded)."""
    from PIL import Image

    client = _client(ev)
    try:
        names = [a.path for a in client.list_artifacts(run.info.run_id)
                 if not a.is_dir and a.path.lower().endswith(".png") and (a.file_size or 0) <= FIGURE_MAX_BYTES]
    except Exception:  # noqa: BLE001 - an unreadable artifact store: no figure
        return False
    for name in names[:4]:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                with Image.open(client.download_artifacts(run.info.run_id, name, tmp)) as image:
                    image.verify()
                    if image.format == "PNG" and min(image.size) > 0:
                        return True
            except Exception:  # noqa: BLE001 - not an image: look at the next
                continue
    return False
