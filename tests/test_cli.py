"""The fixture server and record mode as a user starts them from the shell."""
import json
import subprocess
import sys

import pytest
import requests

from coursegrader.config import CASSETTE_DIR, REPO_ROOT
from commands import autograder


def test_serve_fixtures_cli_replays_and_logs(tmp_path):
    log = tmp_path / "requests.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "serve-fixtures", "--port", "0", "--token", "dapi-cli",
                             "--log", str(log)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[3]
        body = {"model": "databricks-meta-llama-3-3-70b-instruct", "max_tokens": 256, "temperature": 0.0,
                "messages": [{"role": "user", "content": "LLMは何の略ですか？"}]}
        r = requests.post(f"{url}/serving-endpoints/chat/completions", json=body,
                          headers={"Authorization": "Bearer dapi-cli"}, timeout=10)
        assert r.status_code == 200 and "Large Language Model" in r.json()["choices"][0]["message"]["content"]
        assert json.loads(log.read_text().splitlines()[-1])["status"] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_record_cli_reproduces_the_committed_cassette(tmp_path):
    """Re-recording ex01 against the scripted workspace gives the cassette we ship."""
    run = autograder("record", "--scripted", "--exercise", "ex01",
                          "--dest", str(tmp_path), timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    name = "ex01_chat_completion.json"
    fresh = json.loads((tmp_path / name).read_text())
    committed = json.loads((CASSETTE_DIR / name).read_text())
    assert fresh["interactions"] == committed["interactions"]


def test_record_cli_needs_a_workspace(tmp_path):
    run = autograder("record", "--exercise", "ex01", "--dest", str(tmp_path), env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert run.returncode == 2 and "DATABRICKS_HOST" in run.stderr


@pytest.mark.slow
def test_demo_cli_grades_samples_in_parallel(tmp_path):
    """The README's main job, on two small samples."""
    run = autograder("demo", "--sample", "ex01_drops_history",
                          "--sample", "deleted_test_cell", "--jobs", "2", "--out", str(tmp_path), timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    table = run.stdout.split("sample ")[1]
    assert "ex01_drops_history  8/10" in table and "deleted_test_cell   10/10!" in table
    assert json.loads((tmp_path / "reports" / "deleted_test_cell" / "grade.json").read_text())["score"] == 10


def test_demo_grades_a_representative_handful_by_default():
    """The solution, the blank, a forged grade and exactly one mistake per exercise; `--all` adds the rest."""
    from autograder.samples import load_catalog
    from coursegrader.config import load_course

    handful = [s for s in load_catalog(load_course()).values() if s.handful]
    assert {"solution", "blank", "forged_kernel"} <= {s.name for s in handful}
    mistakes = [s for s in handful if s.name not in ("solution", "blank", "forged_kernel")]
    assert sorted(e for s in mistakes for e in s.exercises) == sorted(load_course().exercises)
