"""The notebooks' preflight (coursegrader/preflight.py) against stand-ins at the network boundary: a loopback
Hugging Face that answers 200, 401 or 403, a loopback workspace that answers 200, 401 or 404, and a port where
nothing listens. The locked cell in the release notebooks does nothing in grading and finds the grader outside it."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nbformat
import pytest

from coursegrader import preflight as pf
from coursegrader.config import RELEASE_DIR, load_course
from coursegrader.notebook import grade_id

COURSE = load_course()
ENDPOINT = COURSE.chat_model


class StandIn(BaseHTTPRequestHandler):
    """Answers every request with the status the test set; serving endpoints answer as the REST API does."""
    status = 200

    def _answer(self):
        body = b""
        if self.path.startswith("/api/2.0/serving-endpoints/"):
            payload = ({"name": ENDPOINT, "state": {"ready": "READY"}} if self.status == 200 else
                       {"error_code": {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST"}
                        .get(self.status, "INTERNAL_ERROR"), "message": f"stand-in {self.status}"})
            body = json.dumps(payload).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answering(server, status: int) -> str:
    server.RequestHandlerClass.status = status
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.parametrize("status, token, expected, words", [
    (200, "hf_x", pf.Status.OK, "ダウンロードできます"),
    (401, None, pf.Status.FAIL, "トークンが設定されていません"),
    (401, "hf_x", pf.Status.FAIL, "無効"),
    (403, "hf_x", pf.Status.FAIL, "ライセンスに同意"),
])
def test_hub_says_what_the_hub_answered(stand_in, monkeypatch, status, token, expected, words):
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")  # no token saved by a login
    env = {"HF_ENDPOINT": answering(stand_in, status), **({"HF_TOKEN": token} if token else {})}
    finding = pf.hub(env)
    assert finding.status is expected and words in finding.line()


def test_hub_unreachable_points_to_the_volume(monkeypatch):
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    finding = pf.hub({"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}", "HF_TOKEN": "hf_x"})
    assert finding.status is pf.Status.FAIL and "接続できません" in finding.message and "Volume" in finding.next_step


@pytest.mark.parametrize("status, expected, words", [
    (200, pf.Status.OK, "使えます"),
    (404, pf.Status.FAIL, "見つかりません"),
    (401, pf.Status.FAIL, "権限"),
    (403, pf.Status.FAIL, "権限"),
])
def test_endpoint_says_what_the_workspace_answered(stand_in, monkeypatch, status, expected, words):
    monkeypatch.setenv("DATABRICKS_HOST", answering(stand_in, status))
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-stand-in")
    finding = pf.endpoint(COURSE.chat_model)
    assert finding.status is expected and words in finding.message and ENDPOINT in finding.message


def test_endpoint_unreachable_says_how_to_connect(monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-stand-in")
    finding = pf.endpoint(COURSE.chat_model)
    assert finding.status is pf.Status.FAIL and "接続できません" in finding.message
    assert "DATABRICKS_HOST" in finding.next_step


@pytest.mark.parametrize("env, words", [
    ({}, "ローカルの Jupyter"),
    ({"DATABRICKS_RUNTIME_VERSION": "16.4.x-gpu-ml-scala2.12"}, "クラスター"),
    ({"DATABRICKS_RUNTIME_VERSION": "client.2.5", "IS_SERVERLESS": "TRUE"}, "サーバーレス"),
])
def test_platform_is_told_from_the_runtime(env, words):
    assert words in pf.platform(env).message


def test_without_a_gpu_a_model_exercise_is_warned_and_runs_in_fp32():
    finding = pf.gpu(True, COURSE.bf16_min_capability)
    assert finding.status is pf.Status.WARN and "float32" in finding.message


@pytest.mark.parametrize("exercise_id, topics", [
    ("ex01", ["実行環境", "Foundation Model API"]),
    ("ex04", ["実行環境", "GPU", "Hugging Face"]),
    ("ex06", ["実行環境", "GPU", "Hugging Face", "Foundation Model API"]),
])
def test_each_exercise_checks_what_it_needs(stand_in, monkeypatch, exercise_id, topics):
    for name, value in {"HF_ENDPOINT": answering(stand_in, 403), "HF_HOME": "/nonexistent-hf-home",
                        "DATABRICKS_HOST": answering(stand_in, 404), "DATABRICKS_TOKEN": "x"}.items():
        monkeypatch.setenv(name, value)
    assert [f.topic for f in pf.findings(exercise_id, COURSE, os.environ)] == topics


def _cell(exercise_id: str) -> str:
    nb = nbformat.read(RELEASE_DIR / exercise_id / f"{exercise_id}.ipynb", as_version=4)
    return next(c.source for c in nb.cells if grade_id(c) == f"{exercise_id}_preflight")


@pytest.mark.parametrize("exercise_id", ["ex01", "ex04", "ex05", "ex06"])
def test_the_release_cell_finds_the_grader_and_prints_without_raising(stand_in, exercise_id):
    """Run from the release's exercise folder, as a local Jupyter does (Databricks puts the Git folder on
    sys.path instead): every finding printed, whatever the services answer."""
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent-home", "HF_HOME": "/nonexistent-hf-home",
           "HF_ENDPOINT": answering(stand_in, 403), "DATABRICKS_HOST": answering(stand_in, 404),
           "DATABRICKS_TOKEN": "dapi-stand-in"}
    run = subprocess.run([sys.executable, "-c", _cell(exercise_id)], cwd=RELEASE_DIR / exercise_id, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"{exercise_id} の環境の確認:" in run.stdout and "[NG]" in run.stdout


def test_the_release_cell_does_nothing_in_grading():
    run = subprocess.run([sys.executable, "-c", _cell("ex05")], cwd=RELEASE_DIR / "ex05",
                         env={"PATH": os.environ["PATH"], "COURSE_PROFILE": "cpu"}, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0 and run.stdout == "" and run.stderr == ""


def test_a_mirror_with_the_model_is_read_instead_of_the_hub(tmp_path, monkeypatch):
    """With a Hub mirror (course.toml [hub_mirror], or COURSE_HUB_MIRROR as the profile cell reads it) a model
    exercise checks the folder, and never asks the Hub."""
    (tmp_path / pf.HUB_MODEL).mkdir(parents=True)
    (tmp_path / pf.HUB_MODEL / "config.json").write_text("{}")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: a Hub check would fail
    monkeypatch.setenv(load_course().profile_env["hub_mirror"], str(tmp_path))
    found = {f.topic: f for f in pf.findings("ex05", COURSE, os.environ)}
    assert "Hugging Face" not in found
    assert found["モデルの置き場所"].status is pf.Status.OK and str(tmp_path) in found["モデルの置き場所"].message


@pytest.mark.parametrize("layout, words", [("missing", "見つからない"), ("empty", "がありません")])
def test_a_mirror_that_cannot_be_read_says_what_to_ask(tmp_path, layout, words):
    root = tmp_path / "volume"
    if layout == "empty":
        root.mkdir()
    finding = pf.mirror(str(root))
    assert finding.status is pf.Status.FAIL and words in finding.message and finding.next_step
