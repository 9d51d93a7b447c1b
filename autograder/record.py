"""Record mode: run an exercise's source notebook through the recording server.

Against a real workspace: DATABRICKS_HOST/DATABRICKS_TOKEN name the upstream;
the cassette is written with the token and the host redacted.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from .config import CASSETTE_DIR, SOURCE_DIR, load_course
from .execute import course_kernel_env, run_notebook
from .fmapi import FixtureServer
from .fmapi.server import Upstream


def record_exercise(exercise_id: str, upstream: Upstream, dest_dir: Path = CASSETTE_DIR) -> Path:
    exercise = load_course().exercises[exercise_id]
    dest = Path(dest_dir) / exercise.cassette
    if dest.exists():
        dest.unlink()  # a recording starts from scratch
    with FixtureServer(upstream=upstream, record_to=dest) as server, tempfile.TemporaryDirectory() as tmp:
        run_notebook(
            SOURCE_DIR / exercise_id / exercise.notebook,
            cwd=Path(tmp),
            env=course_kernel_env(server.env(), Path(tmp)),
        )
    return dest
