"""The class's results as files: the gradebook CSV, the HTML pages (templates/, rendered with Jinja) with their
inline SVG histograms, and the students' feedback pages copied beside them."""
from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

from jinja2 import Environment, Template

from coursegrader.config import Course
from coursegrader.grade_file import points_text
from coursegrader.grading.report import BONUS_LABEL, csp_comes_first, with_csp
from coursegrader.statuses import StudentOutcome

from .load import Accounted, StudentResult, check_ids, exercise_ids

HEAD_BYTES = 4096  # where a page's <head> starts
NBGRADER_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score"]
BONUS_COLUMNS = ["bonus_score", "bonus_max_score"]  # beside the total, never in it


def _template_text(name: str) -> str:
    return (files(__package__) / "templates" / name).read_text(encoding="utf-8")


SORT_SCRIPT = _template_text("sort.js")  # index.html#sort=N sorts by column N on load
PAGE_STYLE = _template_text("page.css")
# The pages run only their own sorting script (by hash) and load nothing from anywhere.
PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            f"script-src 'sha256-{base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()}'")


@dataclass(frozen=True)
class Templates:
    page: Template  # the frame of every page: policy, style, script
    index: Template
    student: Template


@cache
def templates() -> Templates:
    """The page templates, compiled once (25 ms each)."""
    env = Environment(autoescape=True)
    return Templates(*(env.from_string(_template_text(name)) for name in ("page.html", "index.html", "student.html")))


def _page(title: str, body: str) -> str:
    return templates().page.render(title=title, body=body, csp=PAGE_CSP, style=PAGE_STYLE, script=SORT_SCRIPT)


def write_csv(results: list[StudentResult], path: Path, course: Course, deadline: dt.datetime) -> None:
    """nbgrader's gradebook columns, the bonus beside them, then each exercise's and each graded cell's score."""
    exercises, checks = exercise_ids(results), check_ids(results)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(NBGRADER_COLUMNS + BONUS_COLUMNS + exercises + [cid for _, cid in checks])
        for r in results:
            penalty = r.penalty(deadline, course)
            by_check = {(ex.id, c.id): c.score for ex in r.grade.exercises.values() for c in ex.checks}
            graded = r.grade.exercises
            writer.writerow(
                [course.title, deadline.isoformat(), r.committed_at.isoformat() if r.committed_at else "",
                 r.student_id, "", "", "", r.raw_score, penalty, round(r.raw_score - penalty, 2), r.grade.max_score]
                + [r.bonus_score, r.bonus_max_score]
                + [graded[ex].score if ex in graded else "" for ex in exercises]
                + [by_check.get(key, "") for key in checks]
            )


def histogram_svg(scores: list[float], max_score: float, bins: int = 10) -> str:
    """A small bar chart of a score distribution, as inline SVG (no plotting library needed)."""
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, int(bins * s / max_score)) if max_score else 0] += 1
    top = max(counts) or 1
    width, height, bar = 320, 120, 320 / bins
    bars = "".join(
        f'<rect x="{i * bar + 1:.1f}" y="{height - 20 - 90 * c / top:.1f}" width="{bar - 2:.1f}" '
        f'height="{90 * c / top:.1f}" fill="#3b6fb6"><title>{i * max_score / bins:g}–{(i + 1) * max_score / bins:g}: {c}</title></rect>'
        f'<text x="{i * bar + bar / 2:.1f}" y="{height - 23 - 90 * c / top:.1f}" font-size="10" text-anchor="middle">{c or ""}</text>'
        for i, c in enumerate(counts))
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="score distribution">{bars}'
            f'<text x="0" y="{height - 5}" font-size="10">0</text>'
            f'<text x="{width}" y="{height - 5}" font-size="10" text-anchor="end">{max_score:g}</text></svg>')


@dataclass(frozen=True)
class FailedCheck:
    """A graded cell many students lost, with its three most common messages and how often each came."""
    exercise: str
    check: str
    count: int
    messages: list[tuple[str, int]]


def most_failed(results: list[StudentResult], limit: int = 15) -> list[FailedCheck]:
    """The cells failed by the most students, most first."""
    failures = defaultdict(list)
    for r in results:
        for ex in r.grade.exercises.values():
            for c in ex.checks:
                if not c.passed:
                    failures[(ex.id, c.id)].append(c.message if len(c.message) <= 160 else c.message[:160] + "…")
    rows = [FailedCheck(ex, cid, len(msgs), Counter(msgs).most_common(3)) for (ex, cid), msgs in failures.items()]
    return sorted(rows, key=lambda row: (-row.count, row.check))[:limit]


def write_pages(results: list[StudentResult], skipped: list[str], accounted: list[Accounted], graded_dir: Path,
                out_dir: Path, course: Course, deadline: dt.datetime) -> dict:
    """index.html and students/<id>.html (with their feedback pages); returns report's summary."""
    exercises = []
    for ex in exercise_ids(results):
        graded = [r.grade.exercises[ex] for r in results if ex in r.grade.exercises]
        scores = [g.score for g in graded]
        top = max(g.max_score for g in graded)
        exercises.append({"id": ex, "title": graded[0].title, "bonus": any(g.bonus for g in graded), "max": points_text(top),
                          "mean": f"{sum(scores) / len(scores):.2f}", "full": sum(s == top for s in scores),
                          "zero": sum(s == 0 for s in scores), "svg": histogram_svg(scores, top)})
    students, late = [], []
    for r in results:
        penalty = r.penalty(deadline, course)
        students.append({
            "id": r.student_id, "penalty": points_text(penalty), "total": points_text(round(r.raw_score - penalty, 2)),
            "bonus": points_text(r.bonus_score),
            "scores": [points_text(r.grade.exercises[e["id"]].score) if e["id"] in r.grade.exercises else "-"
                       for e in exercises],
            "problems": sorted({p.code for ex in r.grade.exercises.values() for p in ex.problems}),
        })
        if r.days_late(deadline):
            late.append({"id": r.student_id, "at": r.committed_at.isoformat(), "days": r.days_late(deadline),
                         "penalty": points_text(penalty)})
        _write_student_page(r, graded_dir, out_dir, penalty, course.title)

    max_score = max((r.grade.max_score for r in results), default=0)
    mean = sum(r.raw_score for r in results) / len(results) if results else 0
    bonus_max = max((r.bonus_max_score for r in results), default=0)
    bonus_mean = sum(r.bonus_score for r in results) / len(results) if results else 0
    body = templates().index.render(
        title=course.title, n=len(results), deadline=course.deadline, mean=f"{mean:.2f}", max_score=points_text(max_score),
        bonus_max=points_text(bonus_max) if bonus_max else "", bonus_mean=f"{bonus_mean:.2f}", bonus_label=BONUS_LABEL,
        skipped=skipped, exercises=exercises, failed=most_failed(results), late=late, students=students,
        roster=Counter(row.status for row in accounted),
        unaccounted=[row for row in accounted if row.status != StudentOutcome.GRADED])
    (out_dir / "index.html").write_text(_page(course.title, body), encoding="utf-8")
    return {"students": len(results), "skipped": skipped, "late": len(late),
            "accounted": {row.id: row.status for row in accounted}}


def copy_with_csp(source: Path, dest: Path) -> None:
    """A feedback page with the policy as the first element of its <head>: as `grade` writes it, copied as it
    is (1,800 pages of 180 KB in a class); otherwise read and given the policy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as fh:
        start = fh.read(HEAD_BYTES).decode("utf-8", errors="replace")
    if csp_comes_first(start):
        shutil.copyfile(source, dest)
    else:
        dest.write_text(with_csp(source.read_text(encoding="utf-8")), encoding="utf-8")


def _write_student_page(r: StudentResult, graded_dir: Path, out_dir: Path, penalty: float, title: str) -> None:
    exercises = []
    for ex_id, ex in sorted(r.grade.exercises.items()):
        feedback = Path(graded_dir) / r.student_id / ex_id / "feedback.html"
        link = None
        if feedback.is_file() and not feedback.is_symlink():
            copy_with_csp(feedback, out_dir / "students" / r.student_id / ex_id / "feedback.html")
            link = f"{r.student_id}/{ex_id}/feedback.html"
        exercises.append({"id": ex_id, "title": ex.title, "bonus": ex.bonus, "score": points_text(ex.score),
                          "max_score": points_text(ex.max_score), "problems": ex.problems, "checks": ex.checks,
                          "feedback": link})
    body = templates().student.render(
        id=r.student_id, total=points_text(round(r.raw_score - penalty, 2)), max_score=points_text(r.grade.max_score),
        penalty=points_text(penalty) if penalty else "", bonus=points_text(r.bonus_score),
        bonus_max=points_text(r.bonus_max_score) if r.bonus_max_score else "", bonus_label=BONUS_LABEL, exercises=exercises)
    (out_dir / "students" / f"{r.student_id}.html").write_text(
        _page(f"{r.student_id} — {title}", body), encoding="utf-8")
