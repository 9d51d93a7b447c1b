"""A source notebook run once with nbclient, no grading: for record mode, bench and the solution tests."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from coursegrader.config import SOURCE_DIR, Exercise, Profile, load_course
from coursegrader.execution.environment import course_kernel_env


def run_source_notebook(exercise: Exercise, cwd: Path, server, profile: Profile | None = None) -> nbformat.NotebookNode:
    """Execute the instructor's notebook against `server` in `cwd`; raises on the first failing cell.
    An exercise that evaluates an adapter gets the profile's reference adapter."""
    course = load_course()
    profile = profile or course.profile()
    nb = nbformat.read(SOURCE_DIR / exercise.id / exercise.notebook, as_version=4)
    adapter = profile.reference_adapter_path() if exercise.adapter_from else None
    client = NotebookClient(nb, timeout=course.cell_limit_s(exercise.id), kernel_name=course.kernel,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute(env=course_kernel_env(server.env(), cwd, profile, adapter), cwd=str(cwd))
    return nb
