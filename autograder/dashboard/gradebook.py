"""The class's results in nbgrader's own gradebook (SQLite), so nbgrader's tools can read them.

Idempotent: students, submissions and grades are updated in place, so regrading a
student and writing again replaces their scores and never duplicates them.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import warnings
from contextlib import closing
from pathlib import Path

from nbgrader.api import Base, Gradebook, MissingEntry
from sqlalchemy import text
from sqlalchemy.exc import SAWarning

from coursegrader.config import Course
from coursegrader.execution.nbgrader_course import grader_cache_dir
from coursegrader.execution.nbgrader_job import empty_gradebook

from .load import StudentResult


def _utc_naive(when: dt.datetime | None) -> dt.datetime | None:
    return when.astimezone(dt.timezone.utc).replace(tzinfo=None) if when else None


def write_gradebook(results: list[StudentResult], db_path: Path, course: Course, deadline: dt.datetime,
                    exercises: list[str] | None = None) -> None:
    """The results of these exercises (default: all of theirs) into the gradebook at db_path (new or not)."""
    exercises = sorted(exercises if exercises is not None else {ex for r in results for ex in r.grade.exercises})
    new = not Path(db_path).exists()  # then nothing is looked up before it is added (a query each: a fifth of the time)
    if new:
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
        add_student, add_submission = ((gb.add_student, gb.add_submission) if new else
                                       (gb.update_or_create_student, gb.update_or_create_submission))
        for r in results:
            add_student(r.student_id)
            for ex_id, graded in r.grade.exercises.items():
                if ex_id not in exercises:
                    continue
                submission = add_submission(ex_id, r.student_id, timestamp=_utc_naive(r.committed_at))
                grades = {g.name: g for notebook in submission.notebooks for g in notebook.grades}  # no query per grade
                for check in graded.checks:
                    grades[check.id].auto_score = float(check.score)
                    grades[check.id].needs_manual_grade = False
            gb.db.commit()


SHARED_TABLES = {"course", "student"}  # the same rows in every part; the rest are its own (alembic's: the first's)


def merge_gradebooks(parts: list[Path], db_path: Path) -> None:
    """New gradebooks of disjoint exercises, written side by side, as one at db_path (the parts are removed).
    Rows are copied table by table in nbgrader's own order; only the shared ones may repeat."""
    merged = Path(db_path).with_name(f".{Path(db_path).name}.merging")
    shutil.copyfile(parts[0], merged)
    with closing(sqlite3.connect(merged)) as db:
        for k, part in enumerate(parts[1:]):
            db.execute(f"ATTACH DATABASE ? AS part{k}", (str(part),))
            for table in (t.name for t in Base.metadata.sorted_tables):
                verb = "INSERT OR IGNORE" if table in SHARED_TABLES else "INSERT"
                db.execute(f'{verb} INTO main."{table}" SELECT * FROM part{k}."{table}"')
            db.commit()
            db.execute(f"DETACH DATABASE part{k}")
    os.replace(merged, db_path)
    for part in parts:
        Path(part).unlink()
