"""assign: stamp points from course.toml into source/, generate release/ with nbgrader, and the template repository."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from coursegrader.config import REPO_ROOT, SOURCE_DIR, Course, Exercise
from coursegrader.execution.environment import our_tools_first
from coursegrader.notebook import graded_cells, is_test


RELEASE_JOBS = 2  # nbgrader processes at once: the 2-core machines the course's tools run on


class ReleaseError(RuntimeError):
    pass


def sync_points(exercise: Exercise, source_dir: Path = SOURCE_DIR) -> bool:
    """Make the source notebook's nbgrader points equal course.toml. True if it changed."""
    path = source_dir / exercise.id / exercise.notebook
    nb = nbformat.read(path, as_version=4)
    cells = {gid: cell for gid, cell in graded_cells(nb) if is_test(cell)}
    configured = {c.grade_id for c in exercise.cells}
    if set(cells) != configured:
        raise ReleaseError(
            f"{path}: graded cells {sorted(cells)} do not match course.toml {sorted(configured)}"
        )
    changed = False
    for cell in exercise.cells:
        meta = cells[cell.grade_id].metadata["nbgrader"]
        if meta.get("points") != cell.points:
            meta["points"] = cell.points
            changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def sync_hub_mirror(exercise: Exercise, root: str, variable: str, source_dir: Path = SOURCE_DIR) -> bool:
    """Stamp course.toml's [hub_mirror] root into the notebook's default for `variable` (its profile cell reads
    `os.environ.get("COURSE_HUB_MIRROR", "<root>")`). True if it changed; notebooks without it are left alone."""
    path = source_dir / exercise.id / exercise.notebook
    nb = nbformat.read(path, as_version=4)
    pattern = re.compile(r'(os\.environ\.get\("' + re.escape(variable) + r'", )"[^"\n]*"\)')
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code":
            stamped = pattern.sub(lambda m: f"{m.group(1)}{json.dumps(root, ensure_ascii=False)})", cell.source)
            changed |= stamped != cell.source
            cell.source = stamped
    if changed:
        nbformat.write(nb, path)
    return changed


def generate_assignment(exercise_id: str, course_root: Path, release_dir: Path, db_path: Path) -> None:
    """`nbgrader generate_assignment` with an explicit, private gradebook."""
    cmd = [
        sys.executable, "-m", "nbgrader", "generate_assignment", exercise_id, "--force",
        f"--CourseDirectory.root={course_root}",
        f"--CourseDirectory.release_directory={release_dir}",
        f"--CourseDirectory.db_url=sqlite:///{db_path}",
    ]
    env = {**os.environ, "PATH": our_tools_first(os.environ.get("PATH"))}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ReleaseError(f"nbgrader generate_assignment {exercise_id} failed:\n{proc.stdout}\n{proc.stderr}")


def release(course: Course, exercise_ids=None, release_dir: Path | None = None) -> list[Path]:
    """Regenerate release/<ex>/ for each exercise whose source exists, then the template repository around them."""
    from coursegrader.execution.nbgrader_course import grader_cache_dir
    from coursegrader.execution.nbgrader_job import empty_gradebook

    from .template_repo import write_template_repository

    from .plan import check_plan_fits, sync_plan_labels

    ids = exercise_ids or [e for e in course.exercises if (SOURCE_DIR / e).is_dir()]
    release_dir = Path(release_dir or REPO_ROOT / "release")
    check_plan_fits(course, {e: nbformat.read(SOURCE_DIR / e / course.exercises[e].notebook, as_version=4)
                             for e in ids})
    empty = empty_gradebook(grader_cache_dir())
    for ex_id in ids:
        sync_points(course.exercises[ex_id])
        sync_plan_labels(course.exercises[ex_id])
        sync_hub_mirror(course.exercises[ex_id], course.hub_mirror, course.profile_env["hub_mirror"])
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(RELEASE_JOBS) as pool:
        # one nbgrader process per exercise (seconds each, mostly imports), each with a copy of the empty gradebook
        # the grader keeps (a new one costs nbgrader seconds more)
        list(pool.map(lambda ex_id: generate_assignment(ex_id, REPO_ROOT, release_dir,
                                                        shutil.copy(empty, Path(tmp) / f"{ex_id}.db")), ids))
    written = [release_dir / ex_id / course.exercises[ex_id].notebook for ex_id in ids]
    all_ids = [e for e in course.exercises if (release_dir / e / course.exercises[e].notebook).is_file()]
    return written + write_template_repository(release_dir, all_ids, course)
