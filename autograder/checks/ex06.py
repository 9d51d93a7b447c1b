"""ex06 MLflow: checks on the student's tracking store (SQLite), read with MlflowClient outside the kernel
(tracking_store.py), and on the registered model and the notebook's functions, run in fresh processes
(runner_processes.py, with the programs in runners/)."""
from __future__ import annotations

import builtins
import importlib
import json
import math
import subprocess
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from packaging.version import Version

from coursegrader.config import Profile
from coursegrader.precision import Precision
from coursegrader.grading.tier import RunSetup
from coursegrader.course_dataset import course_split, load_course_dataset
from coursegrader.execution.forked import report_line
from coursegrader.execution.fresh_python import StandbyPython
from coursegrader.fmapi.matchers import ANSWER_TAG
from coursegrader.metrics.gozaru import gozaru_rate, is_gozaru
from coursegrader.notebook import function_with_dependencies
from coursegrader.sandbox.policy import profile_paths
from coursegrader.statuses import ProfileName

from ..evidence import Evidence, Verdict, fail, ok
from ..metrics.text import bleu, rouge
from ..reference_lm import ReferenceLM
from . import check, promotion_rule, stands_by, warms_up
from .ex05 import question_of
from .promotion_rule import meets_criteria
from .runner_processes import ask_over_unix_socket, runner_process, runner_program
from .tracking_store import (ArtifactsOutside, NoRuns, RunsMissing, StoreMissing, StoreProblem, TableMissing,
                             WrongExperiment, has_png_figure, logged_runs, logged_table, remembered, store_client,
                             store_env)

EX = "ex06"
REQUIRED_PARAMS = ("model_name", "num_parameters", "eval_samples", "max_new_tokens", "temperature")
# metric -> valid range
METRIC_RANGES = {"bleu": (0, 100), "rouge1": (0, 1), "rouge2": (0, 1), "rougeL": (0, 1), "bertscore_f1": (-1, 1),
                 "gozaru_rate": (0, 1), "gozaru/mean": (0, 1), "avg_prediction_chars": (0, math.inf),
                 "avg_reference_chars": (0, math.inf), "avg_inference_seconds": (0, math.inf)}
JUDGE_SCHEMA = "judge_result"
REGENERATED_PER_SAMPLE = 4  # the grader answers at most 4 × EVAL_SAMPLES logged questions
# Hidden cases for meets_production_criteria: (metrics, expected decision) come from the thresholds.
CRITERIA_KEYS = {"gozaru_rate": "min_gozaru_rate", "rougeL": "min_rougeL", "llm_judge_improvement": "min_judge_improvement"}
PROMOTION_RULE = Path(promotion_rule.__file__)  # meets_criteria's module: its text goes to the promotion runner


def _tolerance(ev: Evidence) -> float:
    return ev.course.mlflow.metric_tolerance


def _close(logged, value: float, tolerance: float, relative: bool = False) -> bool:
    """A logged metric equals our value: a finite number within tolerance (course.toml's metric_tolerance; NaN
    never is)."""
    if not isinstance(logged, (int, float)) or not math.isfinite(logged):
        return False
    return abs(logged - value) <= tolerance * (max(1.0, abs(value)) if relative else 1.0)


def store_verdict(problem: StoreProblem) -> Verdict:
    """The verdict of a store the checks cannot read (no store, the wrong experiment, …), whichever check met it."""
    match problem:
        case StoreMissing(store=store):
            return fail("mlflow_store_missing", store=store)
        case NoRuns():
            return fail("mlflow_no_runs")
        case WrongExperiment(experiment=experiment, found=found):
            return fail("mlflow_wrong_experiment", experiment=experiment, found=", ".join(found))
        case RunsMissing(runs=runs):
            return fail("ex06_runs_missing", runs=", ".join(runs))
        case ArtifactsOutside(runs=runs):
            return fail("work_link", entries=", ".join(f"run {n} artifact_uri" for n in runs))
        case TableMissing(run=run, artifact=artifact):
            return fail("ex06_table_missing", run=run, artifact=artifact)
    raise TypeError(f"no verdict for {problem!r}")


def store_check(fn=None, *, waits: bool = False):
    """Register an ex06 check that reads the store: a StoreProblem it meets is its verdict (waits: see check)."""
    if fn is None:
        return lambda f: store_check(f, waits=waits)

    def wrapped(ev: Evidence) -> Verdict:
        try:
            return fn(ev)
        except StoreProblem as problem:
            return store_verdict(problem)
    wrapped.__name__ = fn.__name__
    return check(EX, waits=waits)(wrapped)


@lru_cache(maxsize=2)
def eval_set(dataset_path: str, samples: int) -> tuple[tuple[str, str], ...]:
    rows = course_split(load_course_dataset(dataset_path))["test"].select(range(samples))
    return tuple((question_of(r), r["output"]) for r in rows)


def _expected_eval_set(ev: Evidence):
    return eval_set(ev.profile.resolve(ev.profile.dataset), int(ev.inputs["EVAL_SAMPLES"]))


@store_check
def eval_set_logged(ev: Evidence) -> Verdict:
    expected = _expected_eval_set(ev)
    for name, run in logged_runs(ev).items():
        inputs = [d for d in run.inputs.dataset_inputs if d.dataset.name == "gozaru_eval"]
        if not inputs:
            return fail("ex06_eval_input_missing", run=name)
        if not any(t.key == "mlflow.data.context" and t.value == "evaluation" for d in inputs for t in d.tags):
            return fail("ex06_eval_input_context", run=name)
        table = logged_table(ev, run, "predictions.json")
        if list(zip(table.get("question", []), table.get("reference", []))) != list(expected):
            return fail("ex06_eval_set_mismatch", run=name, count=len(expected))
    return ok()


def _same_number(logged: str, expected: float) -> bool:
    """A param (MLflow stores params as text) that reads as the expected number."""
    try:
        return float(logged) == float(expected)
    except (TypeError, ValueError):
        return False


def _metric_problems(run, ranges: dict, tolerance: float) -> list[str]:
    bad = []
    for name, (low, high) in ranges.items():
        value = run.data.metrics.get(name)
        slack = tolerance * max(1.0, abs(high) if math.isfinite(high) else 1.0)  # 100.00000000000004 is BLEU 100
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
                    not _close(run.data.metrics.get(metric), value, _tolerance(ev), relative=True):
                return fail("ex06_logged_metric_differs", run=name, metric=metric,
                            logged=run.data.metrics.get(metric), value=value)
    return None


@store_check
def runs_logged(ev: Evidence) -> Verdict:
    runs = logged_runs(ev)
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
    bad = [b for run in runs.values() for b in _metric_problems(run, METRIC_RANGES, _tolerance(ev))]
    if bad:
        return fail("mlflow_invalid_metric", metrics=", ".join(bad[:6]))
    if differs := _logged_unlike_computed(ev, runs):
        return differs
    for name, run in runs.items():
        if not _close(run.data.metrics["gozaru/mean"], run.data.metrics["gozaru_rate"], _tolerance(ev)):
            return fail("ex06_gozaru_mean_mismatch", run=name)
        seconds = logged_table(ev, run, "predictions.json").get("seconds") or []
        if not seconds or not _close(run.data.metrics["avg_inference_seconds"], _mean(seconds), _tolerance(ev),
                                     relative=True):
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
        table = logged_table(ev, run, "eval_results_table.json")
    except StoreProblem:
        return fail("ex06_not_evaluated", run=run.info.run_name)
    predictions, scores = table.get("prediction") or [], table.get("gozaru/score") or []
    expected = [1.0 if is_gozaru(str(p)) else 0.0 for p in predictions]
    if not scores or len(scores) != len(expected) or \
            any(not _close(s, e, _tolerance(ev)) for s, e in zip(scores, expected)):
        return fail("ex06_not_evaluated", run=run.info.run_name)
    if not _close(run.data.metrics["gozaru/mean"], sum(expected) / len(expected), _tolerance(ev)):
        return fail("ex06_gozaru_mean_mismatch", run=run.info.run_name)
    return None


def _reference_predictions(ev: Evidence, adapter: str | None, questions: list[str],
                           predictions: list[str]) -> list[str] | None:
    """The grader's greedy answers to the questions the run logged (each logged prediction is confirmed first):
    whether those are the right questions is 6.1's (eval_set_logged), charged once. None for more questions
    than the grader answers."""
    if len(questions) > REGENERATED_PER_SAMPLE * int(ev.inputs["EVAL_SAMPLES"]):
        return None
    lm = ReferenceLM(ev.profile.resolve(ev.profile.model_id), adapter, precision=ev.precision)
    return [lm.answer([{"role": "user", "content": q}], ev.profile.max_new_tokens, expect=p)
            for q, p in zip(questions, predictions)]


# MLflow's SQL stores (tracking, registry): importing them sets up their ORM, about a second.
MLFLOW_STORES = ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store")


@warms_up(EX)
def load_reference_model(inputs: dict, profile: Profile, precision: Precision) -> None:
    """Loads only: generating now would fight the student's kernel for the same cores."""
    eval_set(profile.resolve(profile.dataset), int(inputs["EVAL_SAMPLES"]))
    ReferenceLM(profile.resolve(profile.model_id), precision=precision)
    for module in ("peft", *MLFLOW_STORES):  # what the adapter and store checks import next (the stores: 1.1 s)
        importlib.import_module(module)
    importlib.import_module("sqlalchemy.orm").configure_mappers()  # the stores' ORM, set up once per process


@store_check
def metrics_recomputed(ev: Evidence) -> Verdict:
    """6.2's metrics, as its cell reported them, against the grader's recomputation from the logged predictions
    (whether 6.3 logged those metrics faithfully is runs_logged's, charged once)."""
    runs = logged_runs(ev)
    claimed = _text_metrics(ev)
    if claimed is None:
        return fail("claim_missing", name="text_metrics", grade_id="ex06_metrics_impl")
    for name, run in runs.items():
        table = logged_table(ev, run, "predictions.json")
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
            if not _close(theirs, value, _tolerance(ev), relative=True):
                return fail("ex06_metric_mismatch", run=name, metric=metric, computed=theirs, value=value)
    if ev.profile.name == ProfileName.GPU:
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
    runs = logged_runs(ev)
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
        table = logged_table(ev, run, "predictions.json")
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
        if not _close(logged, value, _tolerance(ev)):
            return fail("ex06_judge_average_mismatch", metric=metric, logged=logged, value=value)
    return _judge_table_matches(logged_table(ev, runs["finetuned"], "judge.json"), judged)


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


@store_check(waits=True)
def champion_alias(ev: Evidence) -> Verdict:
    """The model is registered from the finetuned run and loads in a fresh process; champion points to it when
    the finetuned run's logged metrics meet the criteria (by the grader's rule), and may be absent when they do
    not: a metric an earlier cell failed to log is that cell's loss, not this one's."""
    runs = logged_runs(ev)
    client, name = store_client(ev), ev.course.mlflow.registered_model
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


# What the registry checks' fresh processes import before any student code runs (seconds each).
STANDBY_IMPORTS = {"load": ("mlflow", "mlflow.pyfunc", "mlflow.pyfunc.scoring_server", "uvicorn", "requests",
                            *MLFLOW_STORES, "torch", "transformers", "peft"),
                   "promotion": ("mlflow", *MLFLOW_STORES)}


@stands_by(EX)
def standby_processes(kernel_dir: Path, setup: RunSetup) -> dict[str, StandbyPython]:
    return {name: StandbyPython(imports, course=setup.course, files=kernel_dir,
                                env=store_env(kernel_dir, setup.course.mlflow),
                                sandboxed=setup.sandboxed, readable=profile_paths(setup.profile),
                                exchange=name == "load")
            for name, imports in STANDBY_IMPORTS.items()}


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
    """One sandboxed run of runners/load_model.py for a registered model (champion_alias and champion_served share
    it)."""
    returncode: int | None  # None: it ran out of time
    report: dict  # its report: described, loaded, and served (what ask_served returned)
    stderr: str
    answer: tuple  # the grader's own /invocations request: (HTTP status, JSON answer), or (None, why there is none)


def _champion_job(ev: Evidence, uri: str) -> ChampionJob:
    """The load runner for uri, once per submission: a lock of its own, so the checks that only read the store
    wait for nothing."""
    return remembered(ev, ("champion job", uri), lambda: _run_champion_job(ev, uri), alone=True)


def _served_questions(ev: Evidence) -> list[str]:
    """The first questions of the finetuned run's predictions.json: what the grader asks the served model."""
    try:
        table = logged_table(ev, logged_runs(ev)["finetuned"], "predictions.json")
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
    timeout = ev.course.mlflow.load_timeout_s
    env = store_env(ev.work_dir, ev.course.mlflow)
    with runner_process(ev, "load", files=ev.work_dir, env=env, exchange=True) as process:
        path = process.exchange / SERVED_SOCKET
        args = [uri, str(path), json.dumps(questions, ensure_ascii=False), str(timeout)] if questions else [uri]
        stop, out, deadline = threading.Event(), {}, time.monotonic() + timeout
        asker = threading.Thread(target=lambda: out.setdefault("answer", ask_over_unix_socket(
            path, questions, deadline, stop)), daemon=True)
        if questions:
            asker.start()
        try:
            proc = process.run(runner_program("load_model"), *args, timeout=timeout, stdin=source)
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
        timeout = ev.course.mlflow.load_timeout_s
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


@store_check(waits=True)
def promotion_follows_criteria(ev: Evidence) -> Verdict:
    """Re-run the student's promote_if_ready on a copy of the store, for a new version of the model: metrics that
    fail the criteria must leave champion where it is, metrics that pass must move it there."""
    logged_runs(ev)  # no store, no runs, the wrong experiment: the same verdict as the other store checks
    source = function_with_dependencies(ev.notebook, "ex06_registry_impl", "promote_if_ready")
    if source is None:
        return fail("ex06_promotion_undefined")
    criteria, name = ev.inputs["PROMOTION_CRITERIA"], ev.course.mlflow.registered_model
    failing = {metric: 0.0 for metric in CRITERIA_KEYS}
    passing = {metric: criteria[key] + 1.0 for metric, key in CRITERIA_KEYS.items()}
    try:
        env = store_env(ev.work_dir, ev.course.mlflow)
        with runner_process(ev, "promotion", files=ev.work_dir, env=env) as process:
            proc = process.run(runner_program("promotion"), name, json.dumps(criteria), json.dumps([failing, passing]),
                               PROMOTION_RULE.read_text(encoding="utf-8"), json.dumps(CRITERIA_KEYS), stdin=source,
                               timeout=ev.course.mlflow.load_timeout_s)
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


@check(EX, waits=True)
def criteria_hidden_cases(ev: Evidence) -> Verdict:
    """Run the student's function, with the notebook's imports and helpers it uses, in a fresh (sandboxed)
    process on cases the notebook never saw: one decision per case, or it crashed."""
    source = function_with_dependencies(ev.notebook, "ex06_registry_impl", "meets_production_criteria")
    if source is None:
        return fail("ex06_criteria_undefined")
    criteria = ev.inputs["PROMOTION_CRITERIA"]
    cases = hidden_criteria_cases(criteria)
    try:
        with runner_process(ev) as process:
            proc = process.run(runner_program("criteria"), json.dumps(criteria), json.dumps([c for c, _ in cases]),
                               stdin=source, timeout=ev.course.mlflow.criteria_timeout_s)
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


def served_uri(ev: Evidence) -> str | None:
    """What 6.6 serves: the champion, or the latest registered version where there is none (the criteria not met)."""
    client, name = store_client(ev), ev.course.mlflow.registered_model
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


@store_check(waits=True)
def champion_served(ev: Evidence) -> Verdict:
    """The grader serves the student's registered model (the champion, else the latest version) with MLflow's scoring
    server in the sandbox and asks it the finetuned run's first questions from outside: the answers it receives must
    be the grader's own greedy answers of the base model with the adapter ex06 evaluated (whether the run logged
    those is metrics_recomputed's, charged once), and the student's ask_served, run against the same server, must
    return them."""
    runs = logged_runs(ev)
    logged_table(ev, runs["finetuned"], "predictions.json")  # none: the same verdict as the other store checks
    questions = _served_questions(ev)
    if not questions:
        return fail("ex06_predictions_missing", run="finetuned")
    if _ask_served_source(ev) is None:
        return fail("ex06_ask_served_undefined")
    uri = served_uri(ev)
    if uri is None:
        return fail("registry_failed", model=ev.course.mlflow.registered_model, detail="no registered version")
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
    runs = logged_runs(ev)
    tuned = runs["finetuned"]
    table = logged_table(ev, tuned, "evaluation_report.json")
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
            if not _close(row.get(column), value, _tolerance(ev), relative=True):
                return fail("ex06_report_mismatch", metric=metric, column=column, logged=row.get(column), value=value)
    if not has_png_figure(ev, tuned, FIGURE_MAX_BYTES):
        return fail("ex06_report_figure_missing")
    return ok()
