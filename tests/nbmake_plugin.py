"""nbmake items for the source notebooks: each runs as bench and record mode run it (autograder/plain_run.py),
against its own fixture server, no grading. It passes when every cell runs (nbmake), the notebook has test cells
(so its tests ran and passed) and every API call matched a fixture (the server's log, checked after the run).

    python -m pytest -p tests.nbmake_plugin --nbmake source/ex01/ex01.ipynb

`-p`, not a conftest.py: a conftest's hooks reach only the items under its folder, and the notebooks are not under
tests/. Nor a fixture: nbmake's items are not pytest functions, so no fixture (autouse or session) reaches them;
this hook wraps each item's call. nbmake gives the kernel no environment of its own (the kernel inherits this
process's) and starts it in the notebook's folder, so for the call this process's environment is the kernel's
environment of a plain run (coursegrader/execution/environment.py: the server's DATABRICKS_HOST and
DATABRICKS_TOKEN, the profile, MLflow, HOME in the working folder, no secrets), and the item runs a copy of the
notebook in a temporary working folder (ex06's MLflow store is written there). The cell limit and kernel are the
course's (course.toml) unless --nbmake-timeout or --nbmake-kernel says otherwise. Other notebooks are left to nbmake.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbmake.nb_result import NotebookError, NotebookResult
from nbmake.pytest_items import NotebookFailedException

from coursegrader.config import SOURCE_DIR, Exercise, load_course
from coursegrader.execution.environment import course_kernel_env
from coursegrader.fmapi import FixtureServer
from coursegrader.notebook import is_test

NBMAKE_DEFAULT_TIMEOUT_S = 300  # nbmake's --nbmake-timeout default: not set on the command line


def notebook_failure(summary: str, trace: str) -> NotebookFailedException:
    """A failure nbmake reports as its own (a raw exception would read NBMAKE INTERNAL ERROR)."""
    return NotebookFailedException(NotebookResult(nb=None, error=NotebookError(summary, trace, failing_cell_index=-1)))


def source_exercise(item) -> Exercise | None:
    """The exercise whose source notebook this nbmake item runs; None for any other item."""
    if not getattr(item, "nbmake", False):
        return None
    path = Path(item.filename).resolve()
    return next((e for e in load_course().exercises.values()
                 if path == (SOURCE_DIR / e.id / e.notebook).resolve()), None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    exercise = source_exercise(item)
    if exercise is None:
        return (yield)
    course = load_course()
    profile = course.profile()
    source = Path(item.filename)
    if not any(is_test(c) for c in nbformat.read(source, as_version=4).cells):
        raise notebook_failure(f"{source.name} has no test cells", str(source))
    option = item.config.option
    saved = dict(os.environ), item.filename, option.nbmake_timeout, option.nbmake_kernel
    with FixtureServer(course=course) as server, tempfile.TemporaryDirectory(prefix=f"nbmake-{exercise.id}-") as tmp:
        cwd = Path(tmp)
        adapter = profile.reference_adapter_path() if exercise.adapter_from else None
        env = course_kernel_env(server.env(), cwd, profile, adapter, course)
        item.filename = str(shutil.copy(source, cwd / source.name))  # nbmake runs it in its folder
        if option.nbmake_timeout == NBMAKE_DEFAULT_TIMEOUT_S:
            option.nbmake_timeout = course.cell_limit_s(exercise.id)
        option.nbmake_kernel = option.nbmake_kernel or course.kernel
        os.environ.clear()
        os.environ.update(env)
        try:
            result = yield  # raises when a cell fails
        finally:
            os.environ.clear()
            os.environ.update(saved[0])
            item.filename, option.nbmake_timeout, option.nbmake_kernel = saved[1:]
        unmatched = [f"{e.method} {e.path} -> {e.status}: {(e.response or {}).get('message')}"
                     for e in server.log.snapshot() if e.status >= 400]
    if unmatched:
        raise notebook_failure(f"every API call must match a fixture; {len(unmatched)} did not", "\n".join(unmatched))
    return result
