"""report: a class's graded submissions as a gradebook CSV and a static HTML dashboard.

Input: GRADED_DIR/<student_id>/grade.json, as `grade --out` writes it (or grade_failed.json, as
grade-all writes it when the grader failed), optionally GRADED_DIR/<student_id>/submission.json
(as collect writes it), and optionally the roster, so that every student on it is accounted for.
Output: gradebook.csv, gradebook.db (nbgrader's SQLite gradebook), index.html,
students/<student_id>.html, feedback copies. Totals are grade.json's core score and max_score; bonus
exercises' points are shown as their own figure (bonus_score, bonus_max_score), never added to them.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import json
import math
import multiprocessing
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment

from coursegrader.config import load_course
from coursegrader.grading.report import csp_comes_first, with_csp

from ..batch import GRADE_FAILED_FILE, collected_status
from ..collect import roster_ids
from .gradebook import merge_gradebooks, write_gradebook

HEAD_BYTES = 4096  # where a page's <head> starts
GRADEBOOK_WRITERS = 2  # processes that write a new gradebook (the machine's 2 cores, beside the pages)
NBGRADER_COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                    "raw_score", "late_submission_penalty", "score", "max_score"]
BONUS_COLUMNS = ["bonus_score", "bonus_max_score"]  # beside the total, never in it
BONUS_LABEL = "ボーナス / bonus"


@dataclass
class StudentResult:
    student_id: str
    grade: dict
    committed_at: dt.datetime | None

    @property
    def raw_score(self) -> float:
        """The core total (bonus exercises are not in grade.json's score)."""
        return float(self.grade["score"])

    @property
    def bonus_score(self) -> float:
        return float(self.grade.get("bonus_score", 0))  # absent in grade.json written before bonus exercises

    @property
    def bonus_max_score(self) -> float:
        return float(self.grade.get("bonus_max_score", 0))

    def days_late(self, deadline: dt.datetime) -> int:
        if not self.committed_at or self.committed_at <= deadline:
            return 0
        return math.ceil((self.committed_at - deadline).total_seconds() / 86400)

    def penalty(self, deadline: dt.datetime) -> float:
        course = load_course()
        fraction = min(course.late_penalty_per_day * self.days_late(deadline), course.late_penalty_max)
        return round(self.raw_score * fraction, 2)


def _student_folders(graded_dir: Path) -> list[Path]:
    return sorted(p for p in Path(graded_dir).iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def load_results(graded_dir: Path) -> tuple[list[StudentResult], list[str]]:
    """Every student folder with a readable grade.json; the unreadable ones are named (a failed
    grading is not unreadable: see load_failures)."""
    results, skipped = [], []
    for folder in _student_folders(graded_dir):
        if (folder / GRADE_FAILED_FILE).is_file() or collected_status(folder) != "ok":
            continue  # see load_failures and accounted_for
        try:
            grade = json.loads((folder / "grade.json").read_text(encoding="utf-8"))
            meta_file = folder / "submission.json"
            meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
            committed = dt.datetime.fromisoformat(meta["committed_at"]) if meta.get("committed_at") else None
        except (OSError, ValueError, KeyError) as err:
            skipped.append(f"{folder.name}: {type(err).__name__}")
            continue
        results.append(StudentResult(folder.name, grade, committed))
    return results, skipped


def load_failures(graded_dir: Path) -> dict[str, str]:
    """student -> why their grading failed (grade-all's GRADE_FAILED_FILE)."""
    failures = {}
    for folder in _student_folders(graded_dir):
        if (folder / GRADE_FAILED_FILE).is_file():
            try:
                failures[folder.name] = json.loads((folder / GRADE_FAILED_FILE).read_text(encoding="utf-8"))["reason"]
            except (OSError, ValueError, KeyError) as err:
                failures[folder.name] = f"{GRADE_FAILED_FILE}: {type(err).__name__}"
    return failures


# What became of each student
GRADED, GRADE_FAILED, NOT_COLLECTED, UNREADABLE, MISSING, NOT_ON_ROSTER = (
    "graded", "grade_failed", "not_collected", "unreadable", "missing", "not_on_roster")


def accounted_for(graded_dir: Path, results: list[StudentResult], skipped: list[str], failures: dict[str, str],
                  roster: list[str] | None = None) -> list[dict]:
    """One row per student: graded, grade_failed, not_collected (collect found nothing to grade, so
    nothing was), unreadable (grade.json), or missing (on the roster, no folder at all); with a roster,
    in its order, and the students found but not on it as not_on_roster."""
    unreadable = {entry.split(":", 1)[0]: entry for entry in skipped}
    found = {f.name for f in _student_folders(graded_dir)}

    def row(sid: str) -> dict:
        collected = collected_status(Path(graded_dir) / sid) if sid in found else "ok"
        if sid in failures:
            return {"id": sid, "status": GRADE_FAILED, "detail": failures[sid]}
        if collected != "ok":
            return {"id": sid, "status": NOT_COLLECTED, "detail": collected}
        if sid in unreadable:
            return {"id": sid, "status": UNREADABLE, "detail": unreadable[sid]}
        if sid in found:
            return {"id": sid, "status": GRADED, "detail": ""}
        return {"id": sid, "status": MISSING, "detail": "no graded folder"}

    rows = [row(sid) for sid in (roster if roster is not None else sorted(found))]
    if roster is not None:
        rows += [{**row(sid), "status": NOT_ON_ROSTER} for sid in sorted(found - set(roster))]
    return rows


def exercise_ids(results: list[StudentResult]) -> list[str]:
    return sorted({ex for r in results for ex in r.grade["exercises"]})


def check_ids(results: list[StudentResult]) -> list[tuple[str, str]]:
    seen = {}
    for r in results:
        for ex, data in r.grade["exercises"].items():
            for c in data["checks"]:
                seen[(ex, c["id"])] = None
    return sorted(seen)


def write_csv(results: list[StudentResult], path: Path, deadline: dt.datetime) -> None:
    exercises, checks = exercise_ids(results), check_ids(results)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(NBGRADER_COLUMNS + BONUS_COLUMNS + exercises + [cid for _, cid in checks])
        for r in results:
            penalty = r.penalty(deadline)
            by_check = {(ex, c["id"]): c["score"] for ex, d in r.grade["exercises"].items() for c in d["checks"]}
            writer.writerow(
                [load_course().title, deadline.isoformat(), r.committed_at.isoformat() if r.committed_at else "",
                 r.student_id, "", "", "", r.raw_score, penalty, round(r.raw_score - penalty, 2), r.grade["max_score"]]
                + [r.bonus_score, r.bonus_max_score]
                + [r.grade["exercises"].get(ex, {}).get("score", "") for ex in exercises]
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


def most_failed(results: list[StudentResult], limit: int = 15) -> list[dict]:
    failures = defaultdict(list)
    for r in results:
        for ex, data in r.grade["exercises"].items():
            for c in data["checks"]:
                if not c["passed"]:
                    message = c["message"]
                    failures[(ex, c["id"])].append(message if len(message) <= 160 else message[:160] + "…")
    rows = [{"exercise": ex, "check": cid, "count": len(msgs), "messages": Counter(msgs).most_common(3)}
            for (ex, cid), msgs in failures.items()]
    return sorted(rows, key=lambda row: (-row["count"], row["check"]))[:limit]


SORT_SCRIPT = r"""
document.querySelectorAll("table.sortable th").forEach((th, i) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], rows = [...body.rows], dir = th.dataset.dir === "asc" ? -1 : 1;
  th.dataset.dir = dir === 1 ? "asc" : "desc";
  const key = r => { const t = r.cells[i].dataset.value ?? r.cells[i].textContent; return isNaN(t) ? t : Number(t); };
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * dir).forEach(r => body.appendChild(r));
}));
// index.html#sort=N sorts by column N on load (a link a TA can share)
const m = location.hash.match(/sort=(\d+)/);
if (m) document.querySelectorAll("table.sortable th")[Number(m[1])]?.click();
"""
# The pages run only their own sorting script (by hash) and load nothing from anywhere.
PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
            f"script-src 'sha256-{base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()}'")
PAGE = r"""<!doctype html><html lang="ja"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ csp }}"><title>{{ title }}</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222} table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px} th{background:#eef2f8;cursor:pointer}
td.num{text-align:right} .fail{color:#b00020} .pass{color:#176b2c} .grid{display:flex;flex-wrap:wrap;gap:1.5em}
.card{border:1px solid #ddd;padding:.5em 1em;border-radius:6px} small{color:#666}
</style></head><body>{{ body|safe }}
<script>{{ script|safe }}</script></body></html>"""

INDEX = """
<h1>{{ title }} <small>採点レポート / class report</small></h1>
<p>{{ n }} 人 / students · 締切 / deadline {{ deadline }} · 平均 / mean {{ mean }} / {{ max_score }}
{% if bonus_max %} · {{ bonus_label }} 平均 / mean {{ bonus_mean }} / {{ bonus_max }}{% endif %}
{% if skipped %}<br><span class="fail">読めなかった提出 / unreadable: {{ skipped|join(", ") }}</span>{% endif %}</p>
{% if roster %}<h2>提出状況 / every student</h2>
<p>{% for status, count in roster|dictsort %}{{ status }}: {{ count }}{% if not loop.last %} · {% endif %}{% endfor %}</p>
{% if unaccounted %}<table><thead><tr><th>学生 / student</th><th>状態 / status</th><th>詳細 / detail</th></tr></thead><tbody>
{% for r in unaccounted %}<tr><td>{{ r.id }}</td><td class="fail">{{ r.status }}</td><td>{{ r.detail }}</td></tr>{% endfor %}
</tbody></table>{% endif %}{% endif %}
<h2>演習ごとの得点分布 / score distribution</h2>
<div class="grid">{% for ex in exercises %}<div class="card"><b>{{ ex.id }}</b> {{ ex.title }}{% if ex.bonus %} <small>（{{ bonus_label }}）</small>{% endif %}<br>
<small>平均 {{ ex.mean }} / {{ ex.max }} · 満点 {{ ex.full }} 人 · 0 点 {{ ex.zero }} 人</small><br>{{ ex.svg|safe }}</div>{% endfor %}</div>
<h2>失敗の多いチェック / most failed checks</h2>
<table><thead><tr><th>演習</th><th>チェック</th><th>人数</th><th>主なメッセージ</th></tr></thead><tbody>
{% for row in failed %}<tr><td>{{ row.exercise }}</td><td><code>{{ row.check }}</code></td><td class="num">{{ row.count }}</td>
<td>{% for m, c in row.messages %}{{ m }} <small>({{ c }})</small><br>{% endfor %}</td></tr>{% endfor %}</tbody></table>
<h2>遅延提出 / late submissions</h2>
{% if late %}<table><thead><tr><th>学生</th><th>提出時刻</th><th>遅延日数</th><th>減点</th></tr></thead><tbody>
{% for r in late %}<tr><td><a href="students/{{ r.id }}.html">{{ r.id }}</a></td><td>{{ r.at }}</td><td class="num">{{ r.days }}</td><td class="num">{{ r.penalty }}</td></tr>{% endfor %}
</tbody></table>{% else %}<p>なし / none</p>{% endif %}
<h2>学生一覧 / students <small>(見出しをクリックで並べ替え / click a heading to sort)</small></h2>
<table class="sortable" id="students"><thead><tr><th>学生 / student</th>{% for ex in exercises %}<th>{{ ex.id }}</th>{% endfor %}
<th>減点</th><th>合計 / total</th>{% if bonus_max %}<th>{{ bonus_label }}</th>{% endif %}<th>問題 / problems</th></tr></thead><tbody>
{% for s in students %}<tr><td><a href="students/{{ s.id }}.html">{{ s.id }}</a></td>
{% for v in s.scores %}<td class="num">{{ v }}</td>{% endfor %}<td class="num">{{ s.penalty }}</td>
<td class="num" data-value="{{ s.total }}">{{ s.total }}</td>{% if bonus_max %}<td class="num">{{ s.bonus }}</td>{% endif %}
<td>{{ s.problems|join(", ") }}</td></tr>{% endfor %}
</tbody></table>
"""

STUDENT = """
<p><a href="../index.html">← 一覧 / class</a></p>
<h1>{{ id }} <small>{{ total }} / {{ max_score }}{% if penalty %} (遅延減点 −{{ penalty }}){% endif %}
{% if bonus_max %}(+ {{ bonus_label }}: {{ bonus }} / {{ bonus_max }}){% endif %}</small></h1>
{% for ex in exercises %}<h2>{{ ex.id }} {{ ex.title }}{% if ex.bonus %} （{{ bonus_label }}）{% endif %} <small>{{ ex.score }} / {{ ex.max_score }}</small>
{% if ex.feedback %}<small><a href="{{ ex.feedback }}">nbgrader feedback</a></small>{% endif %}</h2>
{% for p in ex.problems %}<p class="fail">⚠ {{ p.message_ja }}<br><small>{{ p.message_en }}</small></p>{% endfor %}
<table><thead><tr><th>チェック</th><th>得点</th><th>なぜ / why</th></tr></thead><tbody>
{% for c in ex.checks %}<tr><td><code>{{ c.id }}</code></td><td class="num {{ 'pass' if c.passed else 'fail' }}">{{ c.score|round(2) }} / {{ c.max_score|round(2) }}</td>
<td>{{ c.message }}{% for e in c.evidence if not e.passed %}<br><small>{{ e.id }}: {{ e.message }}</small>{% endfor %}</td></tr>{% endfor %}
</tbody></table>{% endfor %}
"""


def _fmt(x: float) -> str:
    return f"{x:g}"


def write_report(graded_dir: Path, out_dir: Path, roster: Path | None = None) -> dict:
    """roster: a roster CSV (collect's, or Classroom 50's roster.csv); every student on it gets a row."""
    course = load_course()
    deadline = dt.datetime.fromisoformat(course.deadline)
    results, skipped = load_results(graded_dir)
    accounted = accounted_for(graded_dir, results, skipped, load_failures(graded_dir),
                              roster_ids(roster) if roster else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "students").mkdir(exist_ok=True)
    write_csv(results, out_dir / "gradebook.csv", deadline)
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
                                                           args=(graded_dir, path, deadline, share))
               for path, share in shares]
    for writer in writers:
        writer.start()
    try:
        summary = _write_pages(results, skipped, accounted, graded_dir, out_dir, course, deadline)
    finally:
        for writer in writers:
            writer.join()
    if any(w.exitcode != 0 for w in writers):
        raise RuntimeError(f"writing {db_path} failed (exit status {[w.exitcode for w in writers]}); see above")
    if len(shares) > 1:
        merge_gradebooks([path for path, _ in shares], db_path)
    return summary


def _balanced(exercises: list[str], course) -> list[list[str]]:
    """The exercises in GRADEBOOK_WRITERS shares of about as many graded cells (a grade row each per student),
    the largest first into the smallest share."""
    shares: list[list[str]] = [[] for _ in range(GRADEBOOK_WRITERS)]
    for ex in sorted(exercises, key=lambda ex: -len(course.exercises[ex].cells)):
        min(shares, key=lambda share: sum(len(course.exercises[e].cells) for e in share)).append(ex)
    return shares


def _write_gradebook_of(graded_dir: Path, db_path: Path, deadline: dt.datetime, exercises: list[str] | None) -> None:
    write_gradebook(load_results(graded_dir)[0], db_path, deadline, exercises)


def _write_pages(results, skipped, accounted, graded_dir: Path, out_dir: Path, course,
                 deadline: dt.datetime) -> dict:
    env = Environment(autoescape=True)
    page, student_page = env.from_string(PAGE), env.from_string(STUDENT)  # compiled once: 25 ms each

    exercises = []
    for ex in exercise_ids(results):
        scores = [r.grade["exercises"][ex]["score"] for r in results if ex in r.grade["exercises"]]
        top = max(r.grade["exercises"][ex]["max_score"] for r in results if ex in r.grade["exercises"])
        title = next(r.grade["exercises"][ex]["title"] for r in results if ex in r.grade["exercises"])
        bonus = any(r.grade["exercises"][ex].get("bonus", False) for r in results if ex in r.grade["exercises"])
        exercises.append({"id": ex, "title": title, "bonus": bonus, "max": _fmt(top), "mean": f"{sum(scores) / len(scores):.2f}",
                          "full": sum(s == top for s in scores), "zero": sum(s == 0 for s in scores),
                          "svg": histogram_svg(scores, top)})
    students, late = [], []
    for r in results:
        penalty = r.penalty(deadline)
        students.append({
            "id": r.student_id, "penalty": _fmt(penalty), "total": _fmt(round(r.raw_score - penalty, 2)),
            "bonus": _fmt(r.bonus_score),
            "scores": [_fmt(r.grade["exercises"][e["id"]]["score"]) if e["id"] in r.grade["exercises"] else "-"
                       for e in exercises],
            "problems": sorted({p["code"] for d in r.grade["exercises"].values() for p in d["problems"]}),
        })
        if r.days_late(deadline):
            late.append({"id": r.student_id, "at": r.committed_at.isoformat(), "days": r.days_late(deadline),
                         "penalty": _fmt(penalty)})
        _write_student_page(r, graded_dir, out_dir, page, student_page, penalty)

    max_score = max((r.grade["max_score"] for r in results), default=0)
    mean = sum(r.raw_score for r in results) / len(results) if results else 0
    bonus_max = max((r.bonus_max_score for r in results), default=0)
    bonus_mean = sum(r.bonus_score for r in results) / len(results) if results else 0
    body = env.from_string(INDEX).render(
        title=course.title, n=len(results), deadline=course.deadline, mean=f"{mean:.2f}", max_score=_fmt(max_score),
        bonus_max=_fmt(bonus_max) if bonus_max else "", bonus_mean=f"{bonus_mean:.2f}", bonus_label=BONUS_LABEL,
        skipped=skipped, exercises=exercises, failed=most_failed(results), late=late, students=students,
        roster=Counter(row["status"] for row in accounted), unaccounted=[r for r in accounted if r["status"] != GRADED])
    (out_dir / "index.html").write_text(page.render(title=course.title, body=body, csp=PAGE_CSP, script=SORT_SCRIPT), encoding="utf-8")
    return {"students": len(results), "skipped": skipped, "late": len(late),
            "accounted": {row["id"]: row["status"] for row in accounted}}


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


def _write_student_page(r: StudentResult, graded_dir: Path, out_dir: Path, page, student_page,
                        penalty: float) -> None:
    exercises = []
    for ex, data in sorted(r.grade["exercises"].items()):
        feedback = Path(graded_dir) / r.student_id / ex / "feedback.html"
        link = None
        if feedback.is_file() and not feedback.is_symlink():
            copy_with_csp(feedback, out_dir / "students" / r.student_id / ex / "feedback.html")
            link = f"{r.student_id}/{ex}/feedback.html"
        exercises.append({"id": ex, "title": data["title"], "bonus": data.get("bonus", False),
                          "score": _fmt(data["score"]), "max_score": _fmt(data["max_score"]),
                          "problems": data["problems"], "checks": data["checks"], "feedback": link})
    body = student_page.render(id=r.student_id, total=_fmt(round(r.raw_score - penalty, 2)),
                                           max_score=_fmt(r.grade["max_score"]), penalty=_fmt(penalty) if penalty else "",
                                           bonus=_fmt(r.bonus_score), bonus_max=_fmt(r.bonus_max_score) if r.bonus_max_score else "",
                                           bonus_label=BONUS_LABEL, exercises=exercises)
    (out_dir / "students" / f"{r.student_id}.html").write_text(
        page.render(title=f"{r.student_id} — {load_course().title}", body=body, csp=PAGE_CSP, script=SORT_SCRIPT), encoding="utf-8")
