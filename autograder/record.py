"""Record mode: run an exercise's source notebook through the recording server.

Against a real workspace: DATABRICKS_HOST/DATABRICKS_TOKEN name the upstream;
the cassette is written with the token and the host redacted.
"""
from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

from coursegrader.config import CASSETTE_DIR, Course
from coursegrader.fmapi import FixtureServer
from coursegrader.fmapi.persister import load_cassette, save_cassette
from coursegrader.fmapi.server import Upstream

from .plain_run import run_source_notebook


def record_exercise(exercise_id: str, upstream: Upstream, course: Course, dest_dir: Path = CASSETTE_DIR) -> Path:
    """Run the exercise's source notebook through the recording server into a new cassette in dest_dir."""
    exercise = course.exercises[exercise_id]
    dest = Path(dest_dir) / exercise.cassette
    before = load_cassette(dest) if dest.exists() else None
    if dest.exists():
        dest.unlink()  # a recording starts from scratch
    with (FixtureServer(upstream=upstream, record_to=dest, course=course) as server,
          tempfile.TemporaryDirectory() as tmp):
        run_source_notebook(exercise, Path(tmp), server, course)
    if before is not None and before.scripted:
        _keep_scripted(before, dest)
    return dest


def _keep_scripted(before, dest: Path) -> None:
    """Scripted interactions are written by hand, not recorded: a new recording keeps them and their note."""
    recorded = load_cassette(dest)
    recorded.scripted = before.scripted
    if "scripted" in before.meta:
        recorded.meta["scripted"] = before.meta["scripted"]
    save_cassette(recorded, dest)


def scripted_workspace():
    """Start fixtures/fmapi/scripted_upstream.py, the stand-in for a real workspace (record --scripted)."""
    spec = importlib.util.spec_from_file_location("scripted_upstream", CASSETTE_DIR / "scripted_upstream.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.start()
