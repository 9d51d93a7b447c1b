"""The devcontainer (.devcontainer/) builds the machine .ci/run and the README describe: Python 3.11, bubblewrap and
chromium from Debian, the dev pins, and a container in which bubblewrap may create its namespaces. Docker is not
available where this suite runs, so these read the files; the postAttachCommand runs the sandbox check itself."""
from __future__ import annotations

import json
import subprocess
import sys

from coursegrader.config import REPO_ROOT, load_course

FOLDER = REPO_ROOT / ".devcontainer"


def test_the_image_has_the_course_python_and_the_packages_ci_installs():
    dockerfile = (FOLDER / "Dockerfile").read_text()
    assert f"FROM python:{load_course().classroom50['python']}-bookworm" in dockerfile
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    for package in ("bubblewrap", "chromium"):
        assert package in dockerfile and package in ci


def test_the_container_lets_bubblewrap_create_namespaces_and_installs_the_pins():
    config = json.loads((FOLDER / "devcontainer.json").read_text())
    args = " ".join(config["runArgs"])
    assert "seccomp=unconfined" in args and "apparmor=unconfined" in args  # Docker's defaults refuse unshare/pivot_root
    assert "-r requirements-dev.txt" in config["postCreateCommand"]


def test_the_attach_check_says_whether_grading_can_run(tmp_path):
    """The same one-line verdict `demo` and `grade-all` give, here where bubblewrap works."""
    command = json.loads((FOLDER / "devcontainer.json").read_text())["postAttachCommand"]
    assert command.startswith("python -c ")
    code = command[len("python -c "):].strip('"').replace('\\"', '"')
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "sandbox: ok, official grading can run here", run.stderr
