"""collect: each student's repository at the last commit before the deadline.

roster.csv columns: student_id, github_username, repository (a URL or a local path).
Links and special files in a checkout are removed and listed in submission.json ("dropped").
The token (env COLLECT_TOKEN) is used only by the clone command, as an HTTP header; it is
never written to disk. Collecting again replaces what was collected before.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from coursegrader.grading.untrusted import remove_unsafe

REQUIRED_COLUMNS = ("student_id", "github_username", "repository")


@dataclass
class Collected:
    student_id: str
    status: str  # "ok", "no_commit_before_deadline", "clone_failed"
    commit: str | None = None
    committed_at: str | None = None
    dropped: list[str] = field(default_factory=list)  # links and special files left out of the checkout


def read_roster(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    missing = [c for c in REQUIRED_COLUMNS if rows and c not in rows[0]]
    if missing or not rows:
        raise ValueError(f"{path}: roster needs columns {', '.join(REQUIRED_COLUMNS)} and at least one row")
    return rows


def _git(*args, cwd: Path | None = None, extra: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COLLECT_TOKEN"}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return subprocess.run(["git", *(extra or []), *args], cwd=cwd, env=env, capture_output=True, text=True)


def _auth_header(repository: str) -> list[str]:
    token = os.environ.get("COLLECT_TOKEN")
    if not token or not repository.startswith("https://"):
        return []
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return ["-c", f"http.extraHeader=Authorization: Basic {basic}"]


def collect_one(row: dict, until: dt.datetime, dest: Path) -> Collected:
    sid = row["student_id"].strip()
    target = dest / sid
    shutil.rmtree(target, ignore_errors=True)  # idempotent: a re-collect replaces
    clone = _git("clone", "--quiet", "--no-checkout", row["repository"].strip(), str(target),
                 extra=_auth_header(row["repository"]))
    if clone.returncode != 0:
        target.mkdir(parents=True, exist_ok=True)
        result = Collected(sid, "clone_failed")
    else:
        rev = _git("rev-list", "-1", f"--before={until.isoformat()}", "HEAD", cwd=target).stdout.strip()
        if not rev:
            result = Collected(sid, "no_commit_before_deadline")
        else:
            _git("checkout", "--quiet", rev, cwd=target)
            when = _git("show", "-s", "--format=%cI", rev, cwd=target).stdout.strip()
            result = Collected(sid, "ok", rev, when)
        shutil.rmtree(target / ".git", ignore_errors=True)  # the grader needs the files, not the history
        target.mkdir(parents=True, exist_ok=True)
        # A submission is untrusted: no symlink (git stores them) leads the grader anywhere.
        result.dropped = [f"{path.split('/', 1)[-1]} ({kind})" for path, kind in remove_unsafe(target)]
    (target / "submission.json").write_text(json.dumps(result.__dict__, indent=1) + "\n", encoding="utf-8")
    return result


def collect(roster: Path, deadline: dt.datetime, dest: Path, grace_days: float = 0.0) -> list[Collected]:
    """Commits up to deadline + grace count; the report charges the late ones."""
    until = deadline + dt.timedelta(days=grace_days)
    dest.mkdir(parents=True, exist_ok=True)
    return [collect_one(row, until, dest) for row in read_roster(roster)]
