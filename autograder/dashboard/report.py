"""report: a class's graded submissions as a gradebook CSV and a static HTML dashboard.

Input: GRADED_DIR/<student_id>/grade.json, as `grade --out` writes it (or grade_failed.json, as
grade-all writes it when the grader failed), optionally GRADED_DIR/<student_id>/submission.json
(as collect writes it), and optionally the roster, so that every student on it is accounted for.
Output: gradebook.csv, gradebook.db (nbgrader's SQLite gradebook), index.html,
students/<student_id>.html, feedback copies. Totals are grade.json's core score and max_score; bonus
exercises' points are shown as their own figure (bonus_score, bonus_max_score), never added to them.

load.py reads the folders into typed records, policy.py is the late penalty, render.py writes the CSV and the
pages (templates/), gradebook.py nbgrader's gradebook; this module runs them.
"""
from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path

from coursegrader.config import Course

from ..collect import roster_ids
from .gradebook import merge_gradebooks, write_gradebook
from .load import Accounted, StudentResult, accounted_for, exercise_ids, load_failures, load_results
from .render import copy_with_csp, write_csv, write_pages

__all__ = ["Accounted", "StudentResult", "accounted_for", "copy_with_csp", "load_failures", "load_results",
           "write_csv", "write_report"]

GRADEBOOK_WRITERS = 2  # processes that write a new gradebook (the machine's 2 cores, beside the pages)


def write_report(graded_dir: Path, out_dir: Path, roster: Path | None, course: Course) -> dict:
    """roster: a roster CSV (collect's, or Classroom 50's roster.csv; None: no roster); every student on it gets
    a row."""
    deadline = dt.datetime.fromisoformat(course.deadline)
    results, skipped = load_results(graded_dir)
    accounted = accounted_for(graded_dir, results, skipped, load_failures(graded_dir),
                              roster_ids(roster) if roster else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "students").mkdir(exist_ok=True)
    write_csv(results, out_dir / "gradebook.csv", course, deadline)
    # nbgrader's gradebook (its API commits submission by submission: about 15 s for 300 students here) is
    # written by other processes while this one renders the pages: a new one by GRADEBOOK_WRITERS, each a share
    # of the exercises into a file of its own, merged at the end; an existing one in place, by one. Fresh
    # interpreters (spawn), not forks: a fork copies whatever locks other threads of this process held then.
    # Each reads the grade.json files itself: results handed through spawn's pipe kept this process waiting
    # until the new interpreter had started and read them (a second).
    db_path = out_dir / "gradebook.db"
    shares = [[db_path, None]] if db_path.exists() else [
        [out_dir / f".gradebook-{k}.db", share] for k, share in enumerate(_balanced(exercise_ids(results), course))]
    for path, _ in shares:
        if path != db_path:
            path.unlink(missing_ok=True)
    writers = [multiprocessing.get_context("spawn").Process(target=_write_gradebook_of, name="gradebook",
                                                           args=(graded_dir, path, course, deadline, share))
               for path, share in shares]
    for writer in writers:
        writer.start()
    try:
        summary = write_pages(results, skipped, accounted, graded_dir, out_dir, course, deadline)
    finally:
        for writer in writers:
            writer.join()
    if any(w.exitcode != 0 for w in writers):
        raise RuntimeError(f"writing {db_path} failed (exit status {[w.exitcode for w in writers]}); see above")
    if len(shares) > 1:
        merge_gradebooks([path for path, _ in shares], db_path)
    return summary


def _balanced(exercises: list[str], course: Course) -> list[list[str]]:
    """The exercises in GRADEBOOK_WRITERS shares of about as many graded cells (a grade row each per student),
    the largest first into the smallest share."""
    shares: list[list[str]] = [[] for _ in range(GRADEBOOK_WRITERS)]
    for ex in sorted(exercises, key=lambda ex: -len(course.exercises[ex].cells)):
        min(shares, key=lambda share: sum(len(course.exercises[e].cells) for e in share)).append(ex)
    return shares


def _write_gradebook_of(graded_dir: Path, db_path: Path, course: Course, deadline: dt.datetime,
                        exercises: list[str] | None) -> None:
    write_gradebook(load_results(graded_dir)[0], db_path, course, deadline, exercises)
