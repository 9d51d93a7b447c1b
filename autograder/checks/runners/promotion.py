"""ex06's promotion runner: the student's promote_if_ready, re-run on a copy of the store for a new model version.

Sent to a fresh process after coursegrader.execution.forked.IN_A_FORK, which defines in_a_fork; its
environment points MLflow at the copy. argv: the registered model's name, the PROMOTION_CRITERIA (JSON), the
metric cases (JSON), the text of the grader's promotion rule (autograder/checks/promotion_rule.py, which
defines meets_criteria), the criterion keys (JSON); stdin: the student's promote_if_ready with the notebook's
imports and the helpers it uses. It prints one JSON line: {"candidate": the new version or null, "outcome":
[returned, champion before, champion after] per case}.

Each step that touches the store is a fork of its own; the runner builds the stores first and holds no open
connection when it forks (NullPool); only the forks that call promote_if_ready run student code.
"""
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
