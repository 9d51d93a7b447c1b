"""ex06's criteria runner: the student's meets_production_criteria on the grader's hidden cases.

Sent to a fresh process after coursegrader.execution.forked.IN_A_FORK, which defines in_a_fork.
argv: the PROMOTION_CRITERIA (JSON), the cases (a JSON list of metric dicts); stdin: the student's function
with the notebook's imports and the helpers it uses. It prints one JSON line: {"decided": one bool per case,
or null where the function crashed}.
"""
import json, math, sys
criteria, cases, source = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.stdin.read()

def decide():
    namespace = {"math": math, "PROMOTION_CRITERIA": criteria}
    exec(compile(source, "meets_production_criteria", "exec"), namespace)
    return [bool(namespace["meets_production_criteria"](case)) for case in cases]

status, decided = in_a_fork(decide)
print(json.dumps({"decided": decided if status == 0 else None}))
