"""Course configuration: loads autograder/course.toml into typed objects."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
SOURCE_DIR = REPO_ROOT / "source"
RELEASE_DIR = REPO_ROOT / "release"
FIXTURES_DIR = REPO_ROOT / "fixtures"
CASSETTE_DIR = FIXTURES_DIR / "fmapi"
SUBMISSIONS_DIR = FIXTURES_DIR / "submissions"
COURSE_TOML = PACKAGE_DIR / "course.toml"


@dataclass(frozen=True)
class GradedCell:
    grade_id: str
    points: float
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    cassette: str
    cells: tuple[GradedCell, ...]

    @property
    def notebook(self) -> str:
        return f"{self.id}.ipynb"

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.cells)

    def cell(self, grade_id: str) -> GradedCell:
        return next(c for c in self.cells if c.grade_id == grade_id)


@dataclass(frozen=True)
class Course:
    title: str
    chat_model: str
    kernel: str
    cell_timeout_s: int
    exercise_timeout_s: int
    redacted_host: str
    workspace_id: str
    exercises: dict[str, Exercise] = field(default_factory=dict)


def _parse(data: dict) -> Course:
    exercises = {}
    for ex_id, ex in data["exercises"].items():
        cells = tuple(
            GradedCell(gid, float(spec["points"]), tuple(spec.get("evidence", ())))
            for gid, spec in ex["cells"].items()
        )
        exercises[ex_id] = Exercise(ex_id, ex["title"], ex["cassette"], cells)
    return Course(
        title=data["course"]["title"],
        chat_model=data["course"]["chat_model"],
        kernel=data["course"]["kernel"],
        cell_timeout_s=int(data["grading"]["cell_timeout_s"]),
        exercise_timeout_s=int(data["grading"]["exercise_timeout_s"]),
        redacted_host=data["fixture_server"]["redacted_host"],
        workspace_id=str(data["fixture_server"]["workspace_id"]),
        exercises=exercises,
    )


@lru_cache(maxsize=None)
def load_course(path: Path = COURSE_TOML) -> Course:
    with open(path, "rb") as fh:
        return _parse(tomllib.load(fh))
