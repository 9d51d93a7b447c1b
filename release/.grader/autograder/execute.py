"""Running notebooks with nbclient in a clean, minimal environment."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .config import load_course

# Only these variables of the grader's environment reach a student kernel (no tokens:
# the official workflow prefetches the gpu profile's model into HF_HOME, then grades offline).
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "HF_HOME", "HF_HUB_OFFLINE")


def our_tools_first(path: str | None) -> str:
    """PATH with this environment's bin first: nbgrader runs `alembic`, found on PATH, and a grader
    started as <venv>/bin/python without that folder on PATH must still find ours."""
    return os.pathsep.join(filter(None, (os.path.dirname(sys.executable), path)))


def kernel_env(extra: dict[str, str], home: Path) -> dict[str, str]:
    """A kernel environment with no secrets: PATH and locale, a private HOME, plus `extra`."""
    env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
    env["PATH"] = our_tools_first(env.get("PATH"))
    env.update(
        HOME=str(home),
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
        MPLBACKEND="Agg",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        TRANSFORMERS_VERBOSITY="error",
    )
    env.update(extra)
    return env


ADAPTER_ENV = "COURSE_ADAPTER_DIR"  # ex06: the LoRA adapter to evaluate


def course_kernel_env(server_env: dict[str, str], home: Path, profile: str | None = None,
                      adapter_dir: str | None = None) -> dict[str, str]:
    """The kernel environment for a course notebook: fixture server, model profile, MLflow store."""
    course = load_course()
    chosen = course.profile(profile)
    env = {**server_env, **chosen.kernel_env(course.profile_env), **course.mlflow_env()}
    adapter = adapter_dir or chosen.reference_adapter_path()
    if adapter:
        env[ADAPTER_ENV] = adapter
    return kernel_env(env, home)


def run_notebook(nb, *, cwd: Path, env: dict[str, str], cell_timeout_s: int | None = None, allow_errors=False):
    """Execute `nb` (a NotebookNode or a path) in place and return it."""
    if not isinstance(nb, nbformat.NotebookNode):
        nb = nbformat.read(str(nb), as_version=4)
    client = NotebookClient(
        nb,
        timeout=cell_timeout_s or load_course().cell_timeout_s,
        kernel_name=load_course().kernel,
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute(env=env, cwd=str(cwd))
    return nb
