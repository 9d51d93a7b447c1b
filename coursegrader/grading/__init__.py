"""grade: a submission through the pipeline, into results and reports.

  pipeline.py    the steps and the orchestrator (grade_submission)
  tier.py        the two tiers (the feedback tier here; the official tier comes with its verifier)
  results.py     what grading produces
  handoff.py     the ex05 -> ex06 adapter handoff
  submission.py  reading a student's notebook, restoring protected cells
  untrusted.py   files a student or a kernel wrote: no links, FIFOs or devices
  report.py      grade.json, grade.md and the per-exercise artifacts
"""
import shutil
from pathlib import Path

from ..execution.nbgrader_course import GraderUnavailable
from .pipeline import grade_submission
from .report import write_exercise_artifacts, write_reports
from .results import SubmissionGrade


def grade_into(out_dir: Path | None, submission_dir: Path, exercises=None, *, feedback_pages: bool = True,
               **options) -> SubmissionGrade:
    """grade_submission, writing everything a report reader needs into out_dir (when given). If the
    grader turns out unable to grade (GraderUnavailable), what it wrote for earlier exercises goes too:
    a report is whole or absent. feedback_pages=False leaves nbgrader's feedback HTML out of the report."""
    written = []

    def keep(run) -> None:
        written.append(Path(out_dir) / run.exercise.id)
        write_exercise_artifacts(run, Path(out_dir))

    try:
        grade = grade_submission(submission_dir, exercises, on_graded=keep if out_dir else None,
                                 render_feedback=feedback_pages and out_dir is not None, **options)
    except GraderUnavailable:
        for folder in written:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    if out_dir:
        write_reports(grade, Path(out_dir))
    return grade


__all__ = ["grade_into", "grade_submission", "write_reports"]
