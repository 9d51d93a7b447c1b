"""collect counts when GitHub received a push, not the date a commit claims: a commit backdated on
the student's machine but pushed after the deadline is not on time. It also finds the students from
Classroom 50's roster or from an organization's repositories. The server here is a local stand-in for
GitHub: git's dumb HTTP protocol for the clone, the repository activity API and the org's repository list."""
import datetime as dt
import json
import os
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from autograder.collect import COMMITTER_DATE, PUSH_EVENTS, RepositoryNames, collect, owner_and_name
from coursegrader.config import load_course

DEADLINE = dt.datetime.fromisoformat(load_course().deadline)


class FakeGitHub(SimpleHTTPRequestHandler):
    """Static files (bare repositories after `git update-server-info`) and /repos/{o}/{r}/activity."""
    activity: dict = {}  # "org/name" -> list of activity objects
    seen: list = []

    def do_GET(self):
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if parts[:1] == ["orgs"] and parts[-1] == "repos":
            host = self.headers["Host"]
            body = json.dumps([{"name": n, "clone_url": f"http://{host}/{parts[1]}/{n}.git"}
                               for n in ("llm-2026-llm-handson-alice", "other-repo")]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if parts[0] == "repos" and parts[-1] == "activity":
            query = parse_qs(url.query)
            type(self).seen.append((url.path, query, self.headers.get("Authorization")))
            events = self.activity.get("/".join(parts[1:3]), [])  # unfiltered: the client checks the branch
            page, size = int(query.get("page", ["1"])[0]), 2  # two per page: the client must follow the Link header
            body = json.dumps(events[(page - 1) * size:page * size]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if page * size < len(events):
                self.send_header("Link", f'<http://{self.headers["Host"]}{url.path}?ref={query["ref"][0]}'
                                         f'&page={page + 1}>; rel="next"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def _git(*args, cwd, when=None):
    env = {**os.environ, "GIT_AUTHOR_NAME": "s", "GIT_AUTHOR_EMAIL": "s@example.com",
           "GIT_COMMITTER_NAME": "s", "GIT_COMMITTER_EMAIL": "s@example.com"}
    if when:
        env.update(GIT_AUTHOR_DATE=when.isoformat(), GIT_COMMITTER_DATE=when.isoformat())
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def _push(event_id, sha, when, before="0" * 40):
    return {"id": event_id, "node_id": f"A{event_id}", "before": before, "after": sha, "ref": "refs/heads/main",
            "timestamp": when.isoformat().replace("+00:00", "Z"), "activity_type": "push",
            "actor": {"login": "student"}}


@pytest.fixture()
def github(tmp_path):
    """org/alice: on time, then a commit dated an hour before the deadline but pushed 5 h after it."""
    served = tmp_path / "served"
    bare, work = served / "org" / "llm-2026-llm-handson-alice.git", tmp_path / "work"
    _git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    _git("init", "-q", "-b", "main", str(work), cwd=tmp_path)
    (work / "answer.txt").write_text("on time\n")
    _git("add", "-A", cwd=work)
    _git("commit", "-q", "-m", "on time", cwd=work, when=DEADLINE - dt.timedelta(hours=2))
    on_time = _git("rev-parse", "HEAD", cwd=work)
    (work / "answer.txt").write_text("late, backdated\n")
    _git("commit", "-qam", "backdated", cwd=work, when=DEADLINE - dt.timedelta(hours=1))
    backdated = _git("rev-parse", "HEAD", cwd=work)
    _git("push", "-q", str(bare), "HEAD:main", cwd=work)
    _git("update-server-info", cwd=bare)
    FakeGitHub.activity = {"org/llm-2026-llm-handson-alice": [
        _push(1, on_time, DEADLINE - dt.timedelta(hours=2)),
        {**_push(2, "f" * 40, DEADLINE - dt.timedelta(hours=1)), "ref": "refs/heads/other"},  # another branch
        _push(3, backdated, DEADLINE + dt.timedelta(hours=5), before=on_time)]}
    FakeGitHub.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(FakeGitHub, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    (tmp_path / "roster.csv").write_text(
        f"student_id,github_username,repository\nalice,alice,{base}/org/llm-2026-llm-handson-alice.git\n")
    yield {"base": base, "roster": tmp_path / "roster.csv", "on_time": on_time, "backdated": backdated, "bare": bare}
    server.shutdown()


def test_a_backdated_commit_pushed_late_is_not_on_time(github, tmp_path, monkeypatch):
    monkeypatch.setenv("COLLECT_TOKEN", "ghs_test_token")
    (got,) = collect(github["roster"], DEADLINE, tmp_path / "subs", api_url=github["base"])
    assert (got.status, got.commit, got.time_source) == ("ok", github["on_time"], PUSH_EVENTS)
    assert dt.datetime.fromisoformat(got.committed_at) == DEADLINE - dt.timedelta(hours=2)
    assert (tmp_path / "subs" / "alice" / "answer.txt").read_text() == "on time\n"
    meta = json.loads((tmp_path / "subs" / "alice" / "submission.json").read_text())
    assert meta["time_source"] == PUSH_EVENTS and "ghs_test_token" not in json.dumps(meta)
    path, query, auth = FakeGitHub.seen[0]
    assert path == "/repos/org/llm-2026-llm-handson-alice/activity" and query["ref"] == ["refs/heads/main"]
    assert auth == "Bearer ghs_test_token"


def test_with_grace_the_late_push_counts_at_its_push_time(github, tmp_path):
    (got,) = collect(github["roster"], DEADLINE, tmp_path / "subs", grace_days=1, api_url=github["base"])
    assert (got.status, got.commit) == ("ok", github["backdated"])
    assert dt.datetime.fromisoformat(got.committed_at) == DEADLINE + dt.timedelta(hours=5)  # charged as late
    assert len(FakeGitHub.seen) == 2  # both pages of the activity list were read


def test_committer_dates_would_have_been_fooled(github, tmp_path):
    """The labelled fallback for local repositories: the backdated commit looks on time."""
    (tmp_path / "local.csv").write_text(f"student_id,github_username,repository\nalice,alice,{github['bare']}\n")
    (got,) = collect(tmp_path / "local.csv", DEADLINE, tmp_path / "subs")
    assert (got.commit, got.time_source) == (github["backdated"], COMMITTER_DATE)


def test_no_push_times_means_not_collected_yet(github, tmp_path):
    (got,) = collect(github["roster"], DEADLINE, tmp_path / "subs", api_url=github["base"] + "/no-api-here")
    assert got.status == "push_times_unavailable" and got.commit is None
    assert not (tmp_path / "subs" / "alice" / "answer.txt").exists()


def test_repository_names():
    assert owner_and_name("https://github.com/org/ex-alice.git") == ("org", "ex-alice")
    assert owner_and_name("https://github.com/org/ex-alice") == ("org", "ex-alice")
    with pytest.raises(ValueError):
        owner_and_name("https://github.com/")


def test_students_from_classroom50s_roster_or_the_organization(github, tmp_path):
    names = RepositoryNames("org", "llm-2026-llm-handson", server_url=github["base"])
    (tmp_path / "c50.csv").write_text("username,first_name,last_name,email,section,github_id,role\n"
                                      "alice,A,A,a@x,1,11,student\nteacher1,T,T,t@x,1,12,teacher\n")
    (got,) = collect(tmp_path / "c50.csv", DEADLINE, tmp_path / "a", api_url=github["base"], repositories=names)
    assert (got.student_id, got.status, got.commit) == ("alice", "ok", github["on_time"])
    (got,) = collect(None, DEADLINE, tmp_path / "b", api_url=github["base"], repositories=names)  # no roster
    assert (got.student_id, got.status, got.commit) == ("alice", "ok", github["on_time"])
    with pytest.raises(ValueError, match="--org and --prefix"):
        collect(tmp_path / "c50.csv", DEADLINE, tmp_path / "c", api_url=github["base"])


def test_a_merge_in_the_web_ui_counts_and_a_vanished_commit_is_named(github, tmp_path):
    merged = {**_push(4, github["backdated"], DEADLINE - dt.timedelta(minutes=30), before=github["on_time"]),
              "activity_type": "pr_merge"}
    FakeGitHub.activity["org/llm-2026-llm-handson-alice"].append(merged)
    (got,) = collect(github["roster"], DEADLINE, tmp_path / "a", api_url=github["base"])
    assert (got.status, got.commit) == ("ok", github["backdated"])  # merged on time through a pull request
    FakeGitHub.activity["org/llm-2026-llm-handson-alice"].append(_push(5, "e" * 40, DEADLINE - dt.timedelta(minutes=1)))
    (got,) = collect(github["roster"], DEADLINE, tmp_path / "b", api_url=github["base"])
    assert (got.status, got.commit) == ("pushed_commit_missing", "e" * 40)  # force-pushed away since
    assert not (tmp_path / "b" / "alice" / "answer.txt").exists()


def test_a_deadline_without_a_time_zone_is_refused(github, tmp_path):
    with pytest.raises(ValueError, match="time zone"):
        collect(github["roster"], DEADLINE.replace(tzinfo=None), tmp_path / "subs", api_url=github["base"])


def test_student_ids_must_be_plain_folder_names(github, tmp_path):
    (tmp_path / "bad.csv").write_text(f"student_id,github_username,repository\n..,x,{github['base']}/org/x.git\n")
    with pytest.raises(ValueError, match="plain folder names"):
        collect(tmp_path / "bad.csv", DEADLINE, tmp_path / "subs", api_url=github["base"])
    assert not (tmp_path / "subs").exists()
