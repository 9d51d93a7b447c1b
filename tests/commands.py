"""The project's command lines as the tests run them: a fresh process, its output captured as text."""
import subprocess
import sys
from pathlib import Path

from coursegrader.config import REPO_ROOT


def run_module(module: str, *args, cwd: Path = REPO_ROOT, env: dict | None = None,
               timeout: float | None = 900) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS…` in cwd (the checkout by default), with env (default: this process's)."""
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def autograder(*args, **options) -> subprocess.CompletedProcess:
    """The instructor's command line."""
    return run_module("autograder", *args, **options)


def coursegrader(*args, **options) -> subprocess.CompletedProcess:
    """The student's command line."""
    return run_module("coursegrader", *args, **options)
