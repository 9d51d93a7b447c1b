"""One exercise's nbgrader work in one process: generate_assignment, autograde, generate_feedback.

Run as `python -m coursegrader.execution.nbgrader_job COURSE_ROOT EXERCISE STUDENT feedback|no-feedback`
with the course root as working directory; exit status 0 on success, 3 if autograde failed, 4 otherwise.
"""
from __future__ import annotations

import sys
from pathlib import Path

from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config.loader import PyFileConfigLoader


def main(root: str, exercise_id: str, student: str, feedback: str = "feedback") -> int:
    config = PyFileConfigLoader("nbgrader_config.py", path=str(Path(root))).load_config()
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    steps = (
        ("generate_assignment", lambda: api.generate_assignment(exercise_id, force=True, create=True), 4),
        ("autograde", lambda: api.autograde(exercise_id, student, force=True, create=True), 3),
        ("generate_feedback", lambda: api.generate_feedback(exercise_id, student, force=True), 0),
    )[:3 if feedback == "feedback" else 2]
    for name, step, failure_status in steps:
        result = step()
        if not result.get("success"):
            print(f"{name} failed:\n{result.get('log', '')}\n{result.get('error', '')}", file=sys.stderr)
            if failure_status:
                return failure_status
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
