"""The class's results in nbgrader's own gradebook (SQLite), so nbgrader's tools can read them.

Idempotent: students, submissions and grades are updated in place, so regrading a
student and writing again replaces their scores and never duplicates them.
"""
from __future__ import annotations

import datetime as dt
import shutil
import warnings
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy import text
from sqlalchemy.exc import SAWarning

from coursegrader.config import load_course
from coursegrader.execution.nbgrader_course import grader_cache_dir
from coursegrader.execution.nbgrader_job import empty_gradebook


def _utc_naive(when: dt.datetime | None) -> dt.datetime | None:
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None) if when else None


def write_gradebook(results, db_path: Path, deadline: dt.datetime) -> None:
    course = load_course()
    exercises = sorted({ex for r in results for ex in r.grade["exercises"]})
    if not Path(db_path).exists():
        shutil.copy(empty_gradebook(grader_cache_dir()), db_path)
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{Path(db_path).resolve()}") as gb:
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's own autoflush notices
        # nbgrader commits per grade: without a sync per commit, 300 students take seconds, not tens of them
        # (the file is rebuilt from grade.json files whenever `report` runs again).
        gb.db.execute(text("PRAGMA synchronous = OFF"))
        gb.db.execute(text("PRAGMA journal_mode = MEMORY"))
        # Nothing else writes this file while we do: keep loaded rows across nbgrader's commits instead of
        # reloading the assignment's cells for every submission.
        gb.db.registry().expire_on_commit = False
        for ex_id in exercises:
            exercise = course.exercises[ex_id]
            gb.update_or_create_assignment(ex_id, duedate=_utc_naive(deadline))
            try:
                gb.find_notebook(exercise.notebook_name, ex_id)
            except MissingEntry:
                gb.add_notebook(exercise.notebook_name, ex_id)
            for cell in exercise.cells:
                gb.update_or_create_grade_cell(cell.grade_id, exercise.notebook_name, ex_id, max_score=cell.points,
                                               cell_type="code")
        for r in results:
            gb.update_or_create_student(r.student_id)
            for ex_id, data in r.grade["exercises"].items():
                submission = gb.update_or_create_submission(ex_id, r.student_id, timestamp=_utc_naive(r.committed_at))
                grades = {g.name: g for notebook in submission.notebooks for g in notebook.grades}  # no query per grade
                for check in data["checks"]:
                    grades[check["id"]].auto_score = float(check["score"])
                    grades[check["id"]].needs_manual_grade = False
            gb.db.commit()
