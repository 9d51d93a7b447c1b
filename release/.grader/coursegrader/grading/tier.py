"""The two tiers of grading. The feedback tier is public; the official tier is built by the
instructor's package, which supplies its evidence verifier (the checks students never receive).

A tier knows nothing of an ExerciseRun: its verifier is made from a `RunSetup` (what is known before the kernel
runs) and is given the fixture server's log and nbgrader's result once the kernel ran.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

import nbformat

from ..config import RELEASE_DIR, Course, Exercise, Profile
from ..fmapi.log import LogEntry
from ..statuses import TierName
from .verdict import Verdict

if TYPE_CHECKING:
    from ..execution.nbgrader_course import AutogradeResult


@dataclass(frozen=True)
class RunSetup:
    """One exercise run, as known before its kernel runs."""
    exercise: Exercise
    source_nb: nbformat.NotebookNode  # the instructor's notebook (trusted)
    course: Course
    profile: Profile
    sandboxed: bool  # student code the verifier starts runs in the sandbox too
    adapter_dir: str | None  # the LoRA adapter the exercise evaluates (exercise.adapter_from)


class Verifier(Protocol):
    """A tier's evidence checking for one run: everything it does beside the checks themselves (work done while
    the kernel runs, processes started ahead of need, checks run side by side) is its own business."""

    def start(self, kernel_dir: Path) -> None:
        """As nbgrader starts the kernel (in kernel_dir): work that reads nothing the student wrote."""

    def verify(self, log: list[LogEntry], autograded: "AutogradeResult") -> dict[str, Verdict]:
        """Every evidence check of the exercise: check name -> verdict."""

    def close(self) -> None:
        """When the run ends, verified or not: nothing it started outlives it."""


@dataclass(frozen=True)
class Tier:
    name: TierName
    source_dir: Path  # nbgrader's source notebooks: with hidden tests (source/) or the release's visible ones
    passed_message: str  # a cell whose points count
    verifier: Callable[[RunSetup], Verifier] | None = None  # outside-the-kernel checks; None: the tests alone decide
    sandboxed: bool = False  # student code runs in the sandbox unless a debugging flag says otherwise
    # The line that opens a hidden-test region in its source notebooks (nbgrader's delimiter); None: it has none.
    # From the first cell holding one, the report shows no kernel-made text (pipeline._shown).
    hidden_tests_mark: str | None = None

    @property
    def verifies_evidence(self) -> bool:
        return self.verifier is not None

    def source_notebook(self, exercise) -> Path:
        return self.source_dir / exercise.id / exercise.notebook


FEEDBACK = Tier(TierName.FEEDBACK, RELEASE_DIR,
                passed_message="公開テストに合格しました（正式な採点では非公開テストと記録の検証も行います）。")
