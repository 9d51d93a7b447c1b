"""The ex05 -> ex06 handoff: the adapter one exercise saved, for the exercise that evaluates it."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..config import Exercise, Profile
from ..notebook import inputs_of
from ..problems import Problem, problem
from .results import ExerciseRun
from .untrusted import copy_adapter


class AdapterHandoff:
    """Keeps each producing exercise's adapter (copied out of its work folder, plain files only) and
    says which adapter a consuming exercise evaluates: the student's, else the profile's reference."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.kept: dict[str, str | None] = {}  # producing exercise -> the student's adapter, copied out
        self.folder: Path | None = None

    def __enter__(self) -> "AdapterHandoff":
        self.folder = Path(tempfile.mkdtemp(prefix="grade-handoff-"))
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def adapter_for(self, exercise: Exercise) -> tuple[str | None, Problem | None]:
        """(adapter folder, the problem saying where it came from); (None, None) for other exercises."""
        if not exercise.adapter_from:
            return None, None
        student = self.kept.get(exercise.adapter_from.exercise)
        if student:
            return student, None
        reference = self.profile.reference_adapter_path()
        if reference:
            return reference, problem("reference_adapter_used")
        return None, problem("reference_adapter_unavailable", profile=self.profile.name)

    def keep_from(self, run: ExerciseRun) -> None:
        """Copy out the adapter `run` saved if another exercise evaluates it and its adapter cell scored
        (official tier: test and evidence; feedback tier: the test)."""
        for consumer in run.course.exercises.values():
            source = consumer.adapter_from
            if source and source.exercise == run.exercise.id:
                self.kept[run.exercise.id] = self._copy(run, source)

    def _copy(self, run: ExerciseRun, source) -> str | None:
        cell = run.check(source.cell)
        if not (cell and cell.passed and run.autograded):
            return None
        name = inputs_of(run.source_nb, run.exercise.id).get(source.input)
        if not name:
            return None
        copied = copy_adapter(run.autograded.work_dir / str(name), self.folder / f"{run.exercise.id}-adapter",
                              run.course.limits)
        return str(copied) if copied else None
