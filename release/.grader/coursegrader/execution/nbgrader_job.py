"""One exercise's nbgrader work in one process: the course kernel's start (first, so that it boots while
nbgrader loads), generate_assignment (or its cached gradebook), autograde, generate_feedback.

Run as `python -m coursegrader.execution.nbgrader_job REQUEST` (a protocol.NbgraderJob the grader wrote) with the
course root as working directory. It writes the autograded cells' scores (protocol.JobGrades, so the grader needs
no nbgrader of its own) and then says GRADED on the request's pipe, which only it holds (never the kernel): the
grader verifies while the feedback renders. As it ends it writes a protocol.ChildResult and exits with its code:
OK, AUTOGRADE_FAILED, or GRADER_UNAVAILABLE when nothing of the student's ran (nbgrader could not prepare the
exercise, or the course kernel did not start: ResilientExecute writes that result itself).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from ..protocol import ChildResult, ExitCode, JobGrades, NbgraderJob
from .kernel_launch import LAUNCH_FILE, prestart, shutdown_unclaimed

if __name__ == "__main__":
    JOB = NbgraderJob.read(sys.argv[1])
    os.set_inheritable(JOB.graded_fd, False)  # the kernel must not hold it (nor say the grades are written)
    prestart(Path(JOB.root) / LAUNCH_FILE)  # the kernel boots while nbgrader loads and prepares (seconds)

import nbgrader  # after the kernel's start (E402 on purpose)
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config.loader import PyFileConfigLoader

from ..config import REPO_ROOT
from ..sandbox.policy import runtime_paths
from .nbgrader_course import GRADING_CONFIG


def main(job: NbgraderJob) -> ChildResult:
    root, exercise_id, student = Path(job.root), job.exercise_id, job.student
    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        api = NbGraderAPI(CourseDirectory(config=config), config=config)
        result = generate_assignment(api, root, exercise_id, Path(job.cache_dir))
    except Exception as err:  # noqa: BLE001 - before any student code: the grader's failure
        return _unavailable(f"nbgrader could not start for {exercise_id}: {type(err).__name__}: {err}")
    if not result.get("success"):
        return _unavailable(f"nbgrader could not prepare {exercise_id}: {_last_line(_error(result))}")
    result = api.autograde(exercise_id, student, force=True, create=True)
    said = ChildResult.read(job.path(job.RESULT_FILE))  # ResilientExecute's, where the kernel did not start
    if said is not None and said.exit == ExitCode.GRADER_UNAVAILABLE:
        return said
    if not result.get("success"):
        print(f"autograde failed:\n{_error(result)}", file=sys.stderr)
        return ChildResult(ExitCode.AUTOGRADE_FAILED, _last_line(_error(result), naming="error"))
    try:
        _grades(root, exercise_id, student).write(job.path(job.GRADES_FILE))
    except Exception as err:  # noqa: BLE001 - the gradebook is ours: never a 0 for the student
        return _unavailable(f"nbgrader's gradebook could not be read for {exercise_id}: {type(err).__name__}: {err}")
    os.write(job.graded_fd, job.GRADED)
    os.close(job.graded_fd)
    if job.feedback:
        result = api.generate_feedback(exercise_id, student, force=True)
        if not result.get("success"):  # the scores stand; only the HTML is missing
            print(f"generate_feedback failed:\n{_error(result)}", file=sys.stderr)
    return ChildResult(ExitCode.OK)


def _grades(root: Path, exercise_id: str, student: str) -> JobGrades:
    """The autograded notebook's scores, from nbgrader's gradebook."""
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        (notebook,) = gb.find_assignment(exercise_id).notebooks
        submitted = gb.find_submission_notebook(notebook.name, exercise_id, student)
        return JobGrades({g.name: (float(g.auto_score or 0), float(g.max_score or 0)) for g in submitted.grades})


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


def _last_line(text: str, naming: str = "") -> str:
    """The last non-blank line of nbgrader's log that contains `naming` (any case; else the last line): the
    reason a report shows."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    named = [line for line in lines if naming.lower() in line.lower()]
    return (named or lines or ["unknown error"])[-1][:300]


def _unavailable(reason: str) -> ChildResult:
    print(f"grader unavailable: {reason}", file=sys.stderr)  # for whoever reads job.log
    return ChildResult(ExitCode.GRADER_UNAVAILABLE, reason)


if __name__ == "__main__":
    said = main(JOB)
    said.write(JOB.path(JOB.RESULT_FILE))
    shutdown_unclaimed()  # a kernel nothing ran in: the exercise stopped before its execution
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(said.exit)  # its results are written; the interpreter's own teardown took about a second
