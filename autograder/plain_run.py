"""A source notebook run once with nbclient, no grading: what record mode records, what bench times grading
against, and the ex05 solution run that trains the reference adapter."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from coursegrader.config import SOURCE_DIR, Course, Exercise, Profile
from coursegrader.execution.environment import course_kernel_env


def run_source_notebook(exercise: Exercise, cwd: Path, server, course: Course,
                        profile: Profile | None = None) -> nbformat.NotebookNode:
    """Execute the instructor's notebook against `server` in `cwd`; raises on the first failing cell.
    The profile defaults to the course's; an exercise that evaluates an adapter gets the profile's reference
    adapter."""
    profile = profile or course.profile()
    nb = nbformat.read(SOURCE_DIR / exercise.id / exercise.notebook, as_version=4)
    adapter = profile.reference_adapter_path() if exercise.adapter_from else None
    client = NotebookClient(nb, timeout=course.cell_limit_s(exercise.id), kernel_name=course.kernel,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute(env=course_kernel_env(server.env(), cwd, profile, adapter, course), cwd=str(cwd))
    return nb
