"""What `--out` holds: grade.json (versioned; docs/grade.schema.json), grade.md (a job summary),
and per exercise the feedback HTML, the request log and the MLflow store."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

from .. import __version__
from ..fmapi.log import write_request_log
from ..mlflow_store import STORE_DIR, keep_store
from ..statuses import ExerciseStatus, TierName
from ..grade_file import GradeFile, points_text, read_grade
from .results import ExerciseRun, SubmissionGrade

SCHEMA_VERSION = 1

# Generated pages run no script and load nothing: student outputs are sanitized, and this blocks the rest.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
                           "form-action 'none'; base-uri 'none'")
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'


HEAD_TAG = re.compile(r"<head(?:\s[^>]*)?>", flags=re.IGNORECASE)  # not <header>


def csp_comes_first(page_start: str) -> bool:
    """The policy is the first element of the page's <head> (page_start: at least the page's first kilobytes)."""
    found = HEAD_TAG.search(page_start)
    return bool(found) and page_start.startswith(CSP_META, found.end())


def with_csp(page: str) -> str:
    """The page with the policy as the first element of <head> (a page without one gets a head); idempotent."""
    if csp_comes_first(page):
        return page
    found = HEAD_TAG.search(page)
    if found:
        return page[:found.end()] + CSP_META + page[found.end():]
    return f"<head>{CSP_META}</head>" + page


def to_json(grade: SubmissionGrade) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "grader_version": __version__,
        "submission": grade.submission.resolve().name,
        "tier": grade.tier.name,
        "sandbox": grade.sandbox,
        "profile": grade.profile,
        "score": grade.score,  # the core total: bonus exercises are not in it
        "max_score": grade.max_score,
        "bonus_score": grade.bonus_score,
        "bonus_max_score": grade.bonus_max_score,
        "exercises": {
            run.exercise.id: {
                "title": run.exercise.title,
                "bonus": run.exercise.bonus,
                "score": run.score,
                "max_score": run.exercise.max_score,
                "status": run.status,
                "problems": [p.to_json() for p in run.problems],
                "checks": [c.to_json() for c in run.checks],
            }
            for run in grade.runs
        },
    }


STATUS_TEXT = {ExerciseStatus.GRADED: "採点済み", ExerciseStatus.NOT_STARTED: "未着手 (not started)",
               ExerciseStatus.ERROR: "採点不可 (error)"}
BONUS_LABEL = "ボーナス / bonus"


def total_text(grade: GradeFile) -> str:
    """`score / max_score`, and the bonus points beside them when a bonus exercise was graded."""
    text = f"{points_text(grade.score)} / {points_text(grade.max_score)}"
    if grade.bonus_max_score > 0:
        text += f" (+ {BONUS_LABEL}: {points_text(grade.bonus_score)} / {points_text(grade.bonus_max_score)})"
    return text


def to_markdown(grade: GradeFile) -> str:
    """grade.md: the totals, a warning for an unofficial grade, and each exercise's checks and problems."""
    lines = [f"# 採点結果 / Grade report: {total_text(grade)}", ""]
    if grade.tier == TierName.OFFICIAL and not grade.sandbox:
        lines += ["> ⚠️ サンドボックスなしで採点しました（デバッグ用。正式な成績には使えません）。  ",
                  "> Graded without the sandbox (debugging only; not an official grade).", ""]
    if grade.tier == TierName.FEEDBACK:
        lines += ["> ℹ️ これは公開テストだけによる途中経過です。成績は締め切り後の正式な採点（非公開テストと記録の検証）で決まります。  ",
                  "> Preview from the visible tests only; the official grade (hidden tests, evidence checks) comes after the deadline.", ""]
    lines += ["| 演習 | 得点 | 状態 |", "|---|---:|---|"]
    for ex in grade.exercises.values():
        mark = f"（{BONUS_LABEL}）" if ex.bonus else ""
        status = STATUS_TEXT[ex.status]
        lines.append(f"| {ex.id} {ex.title}{mark} | {points_text(ex.score)} / {points_text(ex.max_score)} | {status} |")
    for ex in grade.exercises.values():
        lines += ["", f"## {ex.id} {ex.title}", ""]
        for p in ex.problems:
            lines.append(f"> ⚠️ {_text(p.message_ja)}  \n> {_text(p.message_en)}")
            lines.append("")
        lines += ["| チェック | 得点 | 結果 | メッセージ |", "|---|---:|:---:|---|"]
        for c in ex.checks:
            mark = "✅" if c.passed else "❌"
            message = _text(c.message).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{c.id}` | {points_text(c.score)} / {points_text(c.max_score)} | {mark} | {message} |")
    return "\n".join(lines) + "\n"


def _text(message: str) -> str:
    """Student-influenced text as inert Markdown: no HTML, no links or images."""
    return html.escape(message, quote=False).replace("[", "\\[").replace("]", "\\]")


def write_reports(grade: SubmissionGrade, out_dir: Path) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = to_json(grade)
    (out_dir / "grade.json").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out_dir / "grade.md").write_text(to_markdown(read_grade(data)), encoding="utf-8")
    return data


def write_exercise_artifacts(run: ExerciseRun, out_dir: Path) -> None:
    """Feedback HTML, the MLflow store (ex06) and the request log, copied out before the work dir goes."""
    ex_dir = Path(out_dir) / run.exercise.id
    ex_dir.mkdir(parents=True, exist_ok=True)
    limits = run.course.limits
    feedback_html = run.autograded.feedback_html if run.autograded else None  # waits for nbgrader's rendering
    if feedback_html:
        size = feedback_html.stat().st_size
        page = feedback_html.read_text(encoding="utf-8") if size <= limits.feedback_html_bytes else \
            OVERSIZED_PAGE.format(mb=size >> 20, limit=limits.feedback_html_mb)
        (ex_dir / "feedback.html").write_text(with_csp(page), encoding="utf-8")
    if run.autograded:
        keep_store(run.autograded.work_dir, ex_dir / STORE_DIR, run.course)  # for `python -m autograder mlflow-ui`
    write_request_log(run.log, ex_dir / "requests.jsonl", limits.requests_log_bytes)


OVERSIZED_PAGE = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>feedback</title></head><body><p>"
                  "フィードバックのページが {mb} MB あり、上限（{limit} MB）を超えたため保存しませんでした。採点結果は grade.md にあります。"
                  "</p><p>The feedback page was {mb} MB, over the {limit} MB limit, and was not kept; the grade is in "
                  "grade.md.</p></body></html>")
