"""Grade every mutant of an exercise with the official tier and tell killed from surviving.

A mutant is killed when its exercise scores less than the unmutated solution. A survivor is either a
gap in the grader (fix the checks or the fixture data) or equivalent to the solution: then
equivalent.toml says so, with a reason.
"""
from __future__ import annotations

import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from coursegrader.config import Course
from coursegrader.grade_file import read_grade
from coursegrader.notebook import find_cell

from ..batch import GRADE_FAILED_FILE, grade_one
from ..samples import solution_notebook
from .mutants import Mutant

EQUIVALENT_FILE = Path(__file__).with_name("equivalent.toml")


def load_equivalent(path: Path = EQUIVALENT_FILE) -> dict[str, str]:
    """mutant id -> why it cannot lose points."""
    with open(path, "rb") as fh:
        return {mutant_id: entry["reason"] for mutant_id, entry in tomllib.load(fh).get("mutants", {}).items()}


@dataclass
class Outcome:
    mutant: Mutant
    score: float | None  # None: the grader itself failed (a grader bug, never a kill)
    max_score: float
    failed_cells: list[str] = field(default_factory=list)
    equivalent: str | None = None

    @property
    def killed(self) -> bool:
        return self.score is not None and self.score < self.max_score

    @property
    def charged_twice(self) -> bool:
        """One mistake (one mutated cell) cost the points of two graded cells or more: one mistake, one charge."""
        return len(set(self.failed_cells)) > 1


def write_mutant(mutant: Mutant, repo: Path, course: Course) -> Path:
    """The solution with this one cell mutated, as a student repository holding that exercise."""
    import nbformat

    exercise = course.exercises[mutant.exercise]
    nb = solution_notebook(exercise)
    find_cell(nb, mutant.cell).source = mutant.mutated
    (repo / mutant.exercise).mkdir(parents=True)
    nbformat.write(nb, repo / mutant.exercise / exercise.notebook)
    return repo


def grade_mutant(mutant: Mutant, workdir: Path, course: Course) -> Outcome:
    """Write the solution with this one cell mutated as a student repository and grade it officially."""
    exercise = course.exercises[mutant.exercise]
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        repo, out = write_mutant(mutant, Path(tmp) / "repo", course), Path(tmp) / "graded"
        grade_one(repo, out, course, [mutant.exercise])
        max_score = float(exercise.max_score)
        if (out / GRADE_FAILED_FILE).exists() or not (out / "grade.json").exists():
            return Outcome(mutant, None, max_score)
        graded = read_grade(out / "grade.json").exercises[mutant.exercise]
        return Outcome(mutant, float(graded.score), max_score, [c.id for c in graded.checks if not c.passed])


def grade_mutants(mutants: list[Mutant], jobs: int, workdir: Path, course: Course,
                  on_outcome: Callable[[Outcome], None] = lambda outcome: None) -> list[Outcome]:
    """Each mutant graded officially, `jobs` at a time; on_outcome(outcome) as each finishes."""
    equivalent = load_equivalent()
    workdir.mkdir(parents=True, exist_ok=True)

    def run(mutant):
        outcome = grade_mutant(mutant, workdir, course)
        outcome.equivalent = equivalent.get(mutant.id)
        on_outcome(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(run, mutants))


@dataclass
class ExerciseScore:
    exercise: str
    killed: int
    equivalent: int
    survived: list[Outcome]
    grader_failed: list[Outcome]

    @property
    def counted(self) -> int:
        return self.killed + len(self.survived)

    @property
    def score(self) -> float:
        """Killed share of the non-equivalent mutants (1.0 when there are none)."""
        return self.killed / self.counted if self.counted else 1.0


def score_by_exercise(outcomes: list[Outcome]) -> dict[str, ExerciseScore]:
    scores: dict[str, ExerciseScore] = {}
    for outcome in outcomes:
        s = scores.setdefault(outcome.mutant.exercise, ExerciseScore(outcome.mutant.exercise, 0, 0, [], []))
        if outcome.score is None:
            s.grader_failed.append(outcome)
        elif outcome.killed:
            s.killed += 1  # a mutant listed as equivalent that loses points is a kill (and a stale entry)
        elif outcome.equivalent:
            s.equivalent += 1
        else:
            s.survived.append(outcome)
    return scores


def report(outcomes: list[Outcome]) -> dict:
    """What `mutate --out` writes: per-exercise scores and every outcome."""
    return {
        "exercises": {ex: {"killed": s.killed, "survived": len(s.survived), "equivalent": s.equivalent,
                           "grader_failed": len(s.grader_failed), "score": round(s.score, 4)}
                      for ex, s in score_by_exercise(outcomes).items()},
        "mutants": [{"id": o.mutant.id, "description": o.mutant.description, "line": o.mutant.line,
                     "score": o.score, "max_score": o.max_score, "failed_cells": o.failed_cells,
                     "charged_twice": o.charged_twice, "killed": o.killed, "equivalent": o.equivalent}
                    for o in outcomes],
    }


def sample_of(mutants: list[Mutant], count: int) -> list[Mutant]:
    """A stable pseudo-random subset (the same ids every run while the solutions are unchanged)."""
    import hashlib

    return sorted(mutants, key=lambda m: hashlib.sha1(m.id.encode()).hexdigest())[:count]


def print_summary(outcomes: list[Outcome], min_score: float) -> bool:
    """The score per exercise, then each survivor with its diff; True when every exercise reaches min_score."""
    from coursegrader.cli import table

    scores = score_by_exercise(outcomes)
    rows = [["exercise", "mutants", "killed", "survived", "equivalent", "grader failed", "score"]]
    for ex, s in sorted(scores.items()):
        rows.append([ex, str(s.counted + s.equivalent + len(s.grader_failed)), str(s.killed), str(len(s.survived)),
                     str(s.equivalent), str(len(s.grader_failed)), f"{s.score:.0%}"])
    print("\n" + table(rows))
    for s in scores.values():
        for outcome in s.survived + s.grader_failed:
            kind = "SURVIVED" if outcome.score is not None else "GRADER FAILED"
            print(f"\n{kind} {outcome.mutant.id} (line {outcome.mutant.line}: {outcome.mutant.description})")
            print(outcome.mutant.diff(), end="")
    twice = [o for o in outcomes if o.charged_twice]
    if twice:
        print(f"\nCHARGED TWICE: {len(twice)} mutant(s) lost the points of more than one graded cell "
              "(one mistake should cost one cell; a crash cascade into later cells shows here too)")
        for outcome in twice:
            print(f"  {outcome.mutant.id}: {', '.join(outcome.failed_cells)}")
    return all(s.score >= min_score and not s.grader_failed for s in scores.values())
