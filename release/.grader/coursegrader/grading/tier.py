"""The two tiers of grading. The feedback tier is public; the official tier is built by the
instructor's package, which supplies its evidence verifier (the checks students never receive)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..config import RELEASE_DIR

if TYPE_CHECKING:
    from .results import ExerciseRun, Verdict

Verifier = Callable[["ExerciseRun"], "dict[str, Verdict]"]  # evidence check name -> verdict
Preparation = Callable[["ExerciseRun"], None]
Standby = Callable[["ExerciseRun", Path], dict]  # (run, the kernel's work folder) -> processes waiting for it


@dataclass(frozen=True)
class Tier:
    name: str
    source_dir: Path  # nbgrader's source notebooks: with hidden tests (source/) or the release's visible ones
    passed_message: str  # a cell whose points count
    verify: Verifier | None = None  # outside-the-kernel evidence checks; None: the tests alone decide
    sandboxed: bool = False  # student code runs in the sandbox unless a debugging flag says otherwise
    # Trusted work the verifier repeats for every student (a reference model, its answers), done while
    # the student's kernel runs; it reads nothing the student wrote.
    prepare: Preparation | None = None
    # Fresh processes the verifier will give student code to (ex06's model load), started with the kernel so
    # their imports are done when it finishes; each runs on a copy of what the kernel left.
    standby: Standby | None = None
    # The line that opens a hidden-test region in its source notebooks (nbgrader's delimiter); None: it has none.
    # From the first cell holding one, the report shows no kernel-made text (pipeline._shown).
    hidden_tests_mark: str | None = None

    @property
    def verifies_evidence(self) -> bool:
        return self.verify is not None

    def source_notebook(self, exercise) -> Path:
        return self.source_dir / exercise.id / exercise.notebook


FEEDBACK = Tier("feedback", RELEASE_DIR,
                passed_message="公開テストに合格しました（正式な採点では非公開テストと記録の検証も行います）。")
