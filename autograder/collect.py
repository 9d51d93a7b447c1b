"""collect: each student's repository as GitHub had received it at the deadline.

roster.csv columns: student_id, github_username, repository (a URL or a local path).
For a repository on a server, the time that counts is when the push arrived: the repository
activity API (GET /repos/{owner}/{repo}/activity, push events with GitHub's own timestamps) names
the last commit pushed before the deadline, whatever dates its commits carry. Committer dates,
which the student's machine sets, are used only for local repositories (tests, demos), and
submission.json says which source was used ("time_source").
Links and special files in a checkout are removed and listed in submission.json ("dropped").
The token (env COLLECT_TOKEN) is used only by the clone command and the API, as an HTTP header;
it is never written to disk. Collecting again replaces what was collected before.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from coursegrader.errors import UsageError
from coursegrader.grading.untrusted import remove_unsafe
from coursegrader.statuses import CollectStatus

REQUIRED_COLUMNS = ("student_id", "github_username", "repository")


PUSH_EVENTS = "push_event"  # time_source: GitHub's push time
COMMITTER_DATE = "committer_date (local repository)"  # time_source: the commit's own date (tests only)
# Every change to the branch counts (pushes, merges in the web UI or a merge queue), not its deletion.
BRANCH_CHANGES = ("push", "force_push", "pr_merge", "merge_queue_merge", "branch_creation")
NO_COMMIT = "0" * 40
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # a folder name, never "..", "/" or hidden
DEFAULT_API_URL = "https://api.github.com"  # GitHub Actions sets GITHUB_API_URL (GHES too)


@dataclass
class Collected:
    student_id: str
    status: CollectStatus
    commit: str | None = None
    committed_at: str | None = None  # when it counts as submitted: the push time, or the committer date locally
    time_source: str | None = None
    dropped: list[str] = field(default_factory=list)  # links and special files left out of the checkout


def read_roster(path: Path, repositories: "RepositoryNames | None" = None) -> list[dict]:
    """collect's roster (student_id, github_username, repository), or Classroom 50's roster.csv
    (username, ..., role) with the repositories named by `repositories` (its students only)."""
    rows = _csv_rows(path)
    if rows and "username" in rows[0] and "repository" not in rows[0]:
        if repositories is None:
            raise UsageError(f"{path}: a Classroom 50 roster needs --org and --prefix to name the repositories")
        return [repositories.row(name) for name in _student_ids(rows, path)]
    missing = [c for c in REQUIRED_COLUMNS if rows and c not in rows[0]]
    if missing or not rows:
        raise UsageError(f"{path}: roster needs columns {', '.join(REQUIRED_COLUMNS)} (or Classroom 50's "
                         "username,...,role) and at least one row")
    return rows


@dataclass(frozen=True)
class RepositoryNames:
    """Student repositories named <prefix>-<username> in one organization (Classroom 50 names them
    <classroom>-<assignment>-<username>)."""
    org: str
    prefix: str
    server_url: str = "https://github.com"  # GitHub Actions sets GITHUB_SERVER_URL

    def row(self, username: str) -> dict:
        return {"student_id": username, "github_username": username,
                "repository": f"{self.server_url.rstrip('/')}/{self.org}/{self.prefix}-{username}.git"}

    def listed(self, api_url: str) -> list[dict]:
        """Every repository of the organization whose name starts with <prefix>- (GET /orgs/{org}/repos)."""
        url, rows = f"{api_url.rstrip('/')}/orgs/{self.org}/repos?per_page=100&type=all", []
        while url:
            repos, url = _api_page(url, _origin(api_url))
            for repo in repos:
                name = str(repo.get("name", ""))
                username = name[len(self.prefix) + 1:]
                if name.startswith(f"{self.prefix}-") and SAFE_ID.match(username):
                    rows.append({"student_id": username, "github_username": username,
                                 "repository": repo.get("clone_url") or self.row(username)["repository"]})
        return sorted(rows, key=lambda r: r["student_id"])


def roster_ids(path: Path) -> list[str]:
    """The students of a roster: collect's (student_id) or Classroom 50's roster.csv (username, role)."""
    return _student_ids(_csv_rows(path), path)


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _student_ids(rows: list[dict], path: Path) -> list[str]:
    column = next((c for c in ("student_id", "username") if rows and c in rows[0]), None)
    if column is None:
        raise UsageError(f"{path}: a roster needs a student_id or a username column")
    return [r[column].strip() for r in rows if r[column].strip() and r.get("role", "student").strip() in ("", "student")]


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


def collect_one(row: dict, until: dt.datetime, dest: Path, api_url: str | None = None) -> Collected:
    sid = row["student_id"].strip()
    repository = row["repository"].strip()
    target = dest / sid
    shutil.rmtree(target, ignore_errors=True)  # idempotent: a re-collect replaces
    clone = _git("clone", "--quiet", "--no-checkout", repository, str(target), extra=_auth_header(repository))
    if clone.returncode != 0:
        target.mkdir(parents=True, exist_ok=True)
        result = Collected(sid, CollectStatus.CLONE_FAILED)
    else:
        result = _submitted_commit(sid, repository, target, until, api_url)
        if result.status == CollectStatus.OK:
            _git("checkout", "--quiet", result.commit, cwd=target)
        shutil.rmtree(target / ".git", ignore_errors=True)  # the grader needs the files, not the history
        target.mkdir(parents=True, exist_ok=True)
        # A submission is untrusted: no symlink (git stores them) leads the grader anywhere.
        result.dropped = [f"{path.split('/', 1)[-1]} ({kind})" for path, kind in remove_unsafe(target)]
    (target / "submission.json").write_text(json.dumps(result.__dict__, indent=1) + "\n", encoding="utf-8")
    return result


def _submitted_commit(sid: str, repository: str, clone: Path, until: dt.datetime, api_url: str | None) -> Collected:
    if not _is_remote(repository):
        rev = _git("rev-list", "-1", f"--before={until.isoformat()}", "HEAD", cwd=clone).stdout.strip()
        if not rev:
            return Collected(sid, CollectStatus.NO_COMMIT_BEFORE_DEADLINE, time_source=COMMITTER_DATE)
        when = _git("show", "-s", "--format=%cI", rev, cwd=clone).stdout.strip()
        return Collected(sid, CollectStatus.OK, rev, when, COMMITTER_DATE)
    branch = _git("symbolic-ref", "HEAD", cwd=clone).stdout.strip() or "refs/heads/main"
    try:
        pushes = push_events(_api_url(api_url), repository, branch)
    except (OSError, ValueError) as err:  # the API's failure, not the student's: collect again later
        print(f"{sid}: push times unavailable ({type(err).__name__}: {err})")
        return Collected(sid, CollectStatus.PUSH_TIMES_UNAVAILABLE, time_source=PUSH_EVENTS)
    on_time = [(when, sha) for when, sha in pushes if when <= until]
    if not on_time:
        return Collected(sid, CollectStatus.NO_COMMIT_BEFORE_DEADLINE, time_source=PUSH_EVENTS)
    when, sha = max(on_time)
    if _git("cat-file", "-e", f"{sha}^{{commit}}", cwd=clone).returncode != 0:  # force-pushed away since
        return Collected(sid, CollectStatus.PUSHED_COMMIT_MISSING, sha, when.isoformat(), PUSH_EVENTS)
    return Collected(sid, CollectStatus.OK, sha, when.isoformat(), PUSH_EVENTS)


def _is_remote(repository: str) -> bool:
    return repository.startswith(("https://", "http://"))


def owner_and_name(repository: str) -> tuple[str, str]:
    """("org", "repo") of https://github.com/org/repo(.git)."""
    parts = [p for p in urllib.parse.urlsplit(repository).path.split("/") if p]
    if len(parts) < 2:
        raise UsageError(f"not a repository URL: {repository}")
    return parts[-2], re.sub(r"\.git$", "", parts[-1])


def push_events(api_url: str, repository: str, branch: str) -> list[tuple[dt.datetime, str]]:
    """(GitHub's time, the commit it left the branch at), for every change to branch."""
    owner, name = owner_and_name(repository)
    query = urllib.parse.urlencode({"ref": branch, "per_page": 100, "direction": "asc"})
    url, found = f"{api_url.rstrip('/')}/repos/{owner}/{name}/activity?{query}", []
    while url:
        events, url = _api_page(url, _origin(api_url))
        for event in events:
            kind = event.get("activity_type") or ("push" if event.get("push_type") else None)
            stamp = event.get("timestamp") or event.get("pushed_at")
            if (kind in BRANCH_CHANGES and stamp and event.get("ref", branch) == branch
                    and event.get("after") not in (None, "", NO_COMMIT)):
                found.append((dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")), event["after"]))
    return found


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the same scheme and host: the token goes nowhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if _origin(newurl) != _origin(req.full_url):
            raise urllib.error.HTTPError(newurl, code, f"redirect to another host refused: {msg}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc


def _api_page(url: str, origin: tuple[str, str] | None = None) -> tuple[list, str | None]:
    """One page of a GitHub REST list, and the next page's URL (Link header) if there is one. The
    token is sent only to the API's own scheme and host (origin), on every page and redirect."""
    if origin and _origin(url) != origin:
        raise ValueError(f"the API pointed to another host: {url}")
    request = urllib.request.Request(url, headers={"Accept": "application/vnd.github+json",
                                                   "X-GitHub-Api-Version": "2022-11-28", **_api_auth()})
    with urllib.request.build_opener(_SameHostRedirects).open(request, timeout=30) as response:
        return json.loads(response.read().decode("utf-8")), _next_page(response.headers.get("Link", ""))


def _next_page(link: str) -> str | None:
    found = re.search(r'<([^>]+)>;\s*rel="next"', link)
    return found.group(1) if found else None


def _api_auth() -> dict[str, str]:
    token = os.environ.get("COLLECT_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def collect(roster: Path | None, deadline: dt.datetime, dest: Path, grace_days: float = 0.0,
            api_url: str | None = None, repositories: RepositoryNames | None = None) -> list[Collected]:
    """Pushes (or, locally, commits) up to deadline + grace count; the report charges the late ones.
    Students come from the roster, or, without one, from the organization's repositories named
    <prefix>-<username>."""
    if deadline.tzinfo is None:
        raise UsageError(f"deadline {deadline.isoformat()} has no time zone (e.g. +09:00)")
    until = deadline + dt.timedelta(days=grace_days)
    if roster is None and repositories is None:
        raise UsageError("collect needs a roster, or --org and --prefix")
    rows = read_roster(roster, repositories) if roster else repositories.listed(_api_url(api_url))
    unsafe = [r["student_id"] for r in rows if not SAFE_ID.match(r["student_id"].strip())]
    if unsafe:
        raise UsageError(f"student ids must be plain folder names (letters, digits, . _ -): {', '.join(unsafe[:5])}")
    dest.mkdir(parents=True, exist_ok=True)
    return [collect_one(row, until, dest, api_url) for row in rows]


def _api_url(given: str | None) -> str:
    return given or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL
