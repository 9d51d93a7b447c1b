"""grade.json as typed records, for everything that reads it (grade.md, the exports, the dashboard, the CLI).

read_grade builds a GradeFile from the file or its parsed JSON, after checking it against docs/grade.schema.json
where the repository has that file (a student's release ships the package without docs/, and reads only what
its own grader just wrote). Numbers are kept as the JSON holds them (1 or 1.0), so what is rendered from them is
what the dict gave. The writer is grading/report.py (to_json); docs/grade-json.md describes the fields.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from .config import REPO_ROOT
from .statuses import ExerciseStatus, TierName

SCHEMA_FILE = REPO_ROOT / "docs" / "grade.schema.json"


def points_text(x: float) -> str:
    """Points as every report shows them: 10, 0.5, never 10.0."""
    return f"{x:g}"


class InvalidGradeFile(ValueError):
    """grade.json parsed but does not follow docs/grade.schema.json."""


@dataclass(frozen=True)
class TestOutcome:
    """A graded cell's nbgrader test: passed, and `ename: evalue` of its first error (or None)."""
    __test__ = False  # not a pytest class
    passed: bool
    error: str | None = None


@dataclass(frozen=True)
class EvidenceOutcome:
    """One evidence check listed for a cell (official tier)."""
    id: str
    passed: bool
    message: str


@dataclass(frozen=True)
class CellGrade:
    """One graded cell (grade.json's `checks` entry)."""
    id: str
    score: float
    max_score: float
    passed: bool
    message: str
    test: TestOutcome
    evidence: tuple[EvidenceOutcome, ...]

    def to_json(self) -> dict:
        """grade.json's check entry (what the grader writes; read back by read_grade)."""
        return {"id": self.id, "score": self.score, "max_score": self.max_score, "passed": self.passed,
                "message": self.message, "test": asdict(self.test), "evidence": [asdict(e) for e in self.evidence]}


@dataclass(frozen=True)
class ProblemEntry:
    """An exercise-level problem (coursegrader/problems.py)."""
    code: str
    message_ja: str
    message_en: str
    fatal: bool


@dataclass(frozen=True)
class ExerciseGrade:
    """One graded exercise; bonus is False in files written before bonus exercises."""
    id: str
    title: str
    bonus: bool
    score: float
    max_score: float
    status: ExerciseStatus
    problems: tuple[ProblemEntry, ...]
    checks: tuple[CellGrade, ...]


@dataclass(frozen=True)
class GradeFile:
    """One submission's grade.json. exercises keeps the file's order; the bonus totals are 0 and profile None
    in files written before those fields."""
    schema_version: int
    grader_version: str
    submission: str
    tier: TierName
    sandbox: bool
    profile: str | None
    score: float
    max_score: float
    bonus_score: float
    bonus_max_score: float
    exercises: Mapping[str, ExerciseGrade]


@cache
def _validator():
    """docs/grade.schema.json compiled, or None where there is no docs/ (a student's release). fastjsonschema (in
    requirements.txt, for nbformat) checks a class's 300 files in 0.1 s where jsonschema takes 3 s; the schema
    uses only keywords it shares with draft 2020-12 (tests/unit/test_grade_file.py compares the two)."""
    if not SCHEMA_FILE.is_file():
        return None
    import fastjsonschema

    return fastjsonschema.compile(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")), use_default=False)


def validate(data: object) -> None:
    """Raise InvalidGradeFile unless data follows docs/grade.schema.json (where the repository has it)."""
    validator = _validator()
    if validator is None:
        return
    from fastjsonschema import JsonSchemaException

    try:
        validator(data)
    except JsonSchemaException as err:
        raise InvalidGradeFile(f"grade.json: {err}") from err


def read_grade(source: Path | str | Mapping) -> GradeFile:
    """The GradeFile of a grade.json path or of its parsed JSON. Raises OSError, ValueError (JSON that does not
    parse) or InvalidGradeFile (JSON that is no grade.json)."""
    data = source if isinstance(source, Mapping) else json.loads(Path(source).read_text(encoding="utf-8"))
    validate(data)
    try:
        return _grade(data)
    except (KeyError, TypeError, AttributeError, ValueError) as err:  # only where there was no schema to check
        raise InvalidGradeFile(f"grade.json: {type(err).__name__}: {err}") from err


def _grade(data: Mapping) -> GradeFile:
    return GradeFile(
        schema_version=data["schema_version"], grader_version=data["grader_version"],
        submission=data["submission"], tier=TierName(data["tier"]), sandbox=data["sandbox"],
        profile=data.get("profile"), score=data["score"], max_score=data["max_score"],
        bonus_score=data.get("bonus_score", 0), bonus_max_score=data.get("bonus_max_score", 0),
        exercises={ex_id: _exercise(ex_id, ex) for ex_id, ex in data["exercises"].items()})


def _exercise(ex_id: str, ex: Mapping) -> ExerciseGrade:
    return ExerciseGrade(
        id=ex_id, title=ex["title"], bonus=ex.get("bonus", False), score=ex["score"], max_score=ex["max_score"],
        status=ExerciseStatus(ex["status"]),
        problems=tuple(ProblemEntry(p["code"], p["message_ja"], p["message_en"], p["fatal"]) for p in ex["problems"]),
        checks=tuple(_cell(c) for c in ex["checks"]))


def _cell(c: Mapping) -> CellGrade:
    return CellGrade(
        id=c["id"], score=c["score"], max_score=c["max_score"], passed=c["passed"], message=c["message"],
        test=TestOutcome(c["test"]["passed"], c["test"]["error"]),
        evidence=tuple(EvidenceOutcome(e["id"], e["passed"], e["message"]) for e in c["evidence"]))
