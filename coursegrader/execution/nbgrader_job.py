"""One exercise's nbgrader work in one process: the course kernel's start (first, so that it boots while
nbgrader loads), generate_assignment (or its cached gradebook), autograde, generate_feedback.

Run as `python -m coursegrader.execution.nbgrader_job COURSE_ROOT EXERCISE STUDENT feedback|no-feedback
CACHE_DIR GRADED_FD` with the course root as working directory. It writes the autograded cells' scores to
GRADES_FILE (so the grader needs no nbgrader of its own) and then says GRADES_WRITTEN on GRADED_FD, a pipe only
it holds (never the kernel): the grader verifies while the feedback renders. It exits with 0 on success,
AUTOGRADE_FAILED, or GRADER_SIDE_FAILURE when nothing of the student's ran: nbgrader could not prepare the
exercise or the course kernel did not start (the reason follows `grader_unavailable:` on stderr).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from .kernel_launch import LAUNCH_FILE, prestart, shutdown_unclaimed

if __name__ == "__main__":
    os.set_inheritable(int(sys.argv[6]), False)  # the kernel must not hold it (nor say the grades are written)
    prestart(Path(sys.argv[1]) / LAUNCH_FILE)  # the kernel boots while nbgrader loads and prepares (seconds)

import nbgrader  # after the kernel's start (E402 on purpose)
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config.loader import PyFileConfigLoader

from ..config import REPO_ROOT
from ..sandbox.policy import runtime_paths
from .nbgrader_course import GRADER_SIDE_FAILURE, GRADES_FILE, GRADES_WRITTEN, GRADING_CONFIG, UNAVAILABLE_PREFIX
from .resilient_execute import ResilientExecute

AUTOGRADE_FAILED = 3


def main(root: str, exercise_id: str, student: str, feedback: str, cache_dir: str, graded_fd: str) -> int:
    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(Path(root))).load_config()
        api = NbGraderAPI(CourseDirectory(config=config), config=config)
        result = generate_assignment(api, Path(root), exercise_id, Path(cache_dir))
    except Exception as err:  # noqa: BLE001 - before any student code: the grader's failure
        return _unavailable(f"nbgrader could not start for {exercise_id}: {type(err).__name__}: {err}")
    if not result.get("success"):
        return _unavailable(f"nbgrader could not prepare {exercise_id}: {_last_line(_error(result))}")
    result = api.autograde(exercise_id, student, force=True, create=True)
    if ResilientExecute.start_failure:
        return _unavailable(ResilientExecute.start_failure)
    if not result.get("success"):
        print(f"autograde failed:\n{_error(result)}", file=sys.stderr)
        return AUTOGRADE_FAILED
    try:
        _write_grades(Path(root), exercise_id, student)
    except Exception as err:  # noqa: BLE001 - the gradebook is ours: never a 0 for the student
        return _unavailable(f"nbgrader's gradebook could not be read for {exercise_id}: {type(err).__name__}: {err}")
    os.write(int(graded_fd), GRADES_WRITTEN)
    os.close(int(graded_fd))
    if feedback == "feedback":
        result = api.generate_feedback(exercise_id, student, force=True)
        if not result.get("success"):  # the scores stand; only the HTML is missing
            print(f"generate_feedback failed:\n{_error(result)}", file=sys.stderr)
    return 0


def _write_grades(root: Path, exercise_id: str, student: str) -> None:
    """{grade_id: [auto_score, max_score]} of the autograded notebook."""
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        (notebook,) = gb.find_assignment(exercise_id).notebooks
        submitted = gb.find_submission_notebook(notebook.name, exercise_id, student)
        grades = {g.name: [float(g.auto_score or 0), float(g.max_score or 0)] for g in submitted.grades}
    (root / GRADES_FILE).write_text(json.dumps(grades), encoding="utf-8")


def generate_assignment(api: NbGraderAPI, root: Path, exercise_id: str, cache: Path) -> dict:
    """nbgrader generate_assignment into a fresh gradebook, or a copy of the gradebook it made before for the
    same source notebook, nbgrader_config.py and nbgrader (autograde reads only the gradebook and source/).
    It holds the hidden tests, so it is kept only in a cache no sandbox can read."""
    key = hashlib.sha256((nbgrader.__version__ + GRADING_CONFIG).encode())
    for path in [REPO_ROOT / "nbgrader_config.py", *sorted((root / "source" / exercise_id).glob("*.ipynb"))]:
        key.update(path.name.encode() + b"\0" + path.read_bytes())
    generated = cache / f"generated-{exercise_id}-{key.hexdigest()[:24]}.db"
    if generated.is_file():
        shutil.copy(generated, root / "gradebook.db")
        return {"success": True}
    shutil.copy(empty_gradebook(cache), root / "gradebook.db")
    result = api.generate_assignment(exercise_id, force=True, create=True)
    if result.get("success") and not any(p == cache or p in cache.parents for p in runtime_paths()):
        _keep(root / "gradebook.db", generated)
    return result


def _keep(path: Path, dest: Path) -> None:
    """Copy into the cache atomically: a grader running alongside sees the whole file or none."""
    partial = dest.with_name(f".{dest.name}.{os.getpid()}")
    try:
        shutil.copy(path, partial)
        os.replace(partial, dest)
    except OSError:  # no writable cache: generated again next time
        partial.unlink(missing_ok=True)


@lru_cache(maxsize=None)
def empty_gradebook(cache: Path) -> Path:
    """An empty nbgrader gradebook with its tables and alembic version, made once per nbgrader version
    and copied for each exercise (a new one costs seconds: nbgrader asks `alembic heads` in a subprocess)."""
    path = cache / f"empty-gradebook-nbgrader-{nbgrader.__version__}.db"
    if not path.is_file():
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError:  # no writable cache: one per process
            cache = Path(tempfile.mkdtemp(prefix="coursegrader-cache-"))
            path = cache / path.name
        partial = cache / f".{path.name}.{os.getpid()}"
        with Gradebook(f"sqlite:///{partial}"):
            pass
        os.replace(partial, path)  # atomic: a grader running alongside sees the whole file or none
    return path


def _error(result: dict) -> str:
    return f"{result.get('log', '')}\n{result.get('error', '')}".strip()


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"


def _unavailable(reason: str) -> int:
    print(UNAVAILABLE_PREFIX + reason[:500], file=sys.stderr)
    return GRADER_SIDE_FAILURE


if __name__ == "__main__":
    status = main(*sys.argv[1:7])
    shutdown_unclaimed()  # a kernel nothing ran in: the exercise stopped before its execution
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # its results are written; the interpreter's own teardown took about a second
