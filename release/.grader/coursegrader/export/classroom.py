"""GitHub Classroom: the payload `classroom-resources/autograding-grading-reporter` reads.

The reporter takes `runners: ex01,ex02,...` and, for each, the environment variable
`EX01_RESULTS`: base64 of {version: 1, status, max_score, tests: [{name, status, score, ...}]}.
It adds up `score` over tests, so each check keeps its partial credit (Classroom's own
command grader is all-or-nothing).
"""
from __future__ import annotations

import base64
import json


def payload(grade: dict, exercise_id: str) -> dict:
    ex = grade["exercises"][exercise_id]
    tests = [
        {
            "name": f"{exercise_id} / {c['id']}",
            "status": "pass" if c["passed"] else "fail",
            "score": c["score"],
            "max_score": c["max_score"],
            "message": c["message"],
            "test_code": c["id"],
            "filename": f"{exercise_id}/{exercise_id}.ipynb",
            "line_no": 0,
            "duration": 0,
        }
        for c in ex["checks"]
    ]
    if ex["status"] == "error":
        status = "error"
    else:
        status = "pass" if all(t["status"] == "pass" for t in tests) else "fail"
    return {"version": 1, "status": status, "max_score": ex["max_score"], "tests": tests}


def encode(data: dict) -> str:
    return base64.b64encode(json.dumps(data, ensure_ascii=False).encode("utf-8")).decode("ascii")


def github_output_line(grade: dict, exercise_id: str) -> str:
    """`<exercise>=<base64>`, for $GITHUB_OUTPUT: the reporter reads `steps.<id>.outputs.<exercise>`
    through the environment variable `<EXERCISE>_RESULTS`."""
    return f"{exercise_id}={encode(payload(grade, exercise_id))}"
