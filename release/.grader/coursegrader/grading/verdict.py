"""An evidence check's answer (the one record checks return, read by the pipeline and the reports)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    """An evidence check's answer. A failure names its problems.py code and the fields of its text;
    a code that is also an exercise-level problem is listed in the report's problems too."""
    passed: bool
    message: str  # Japanese, shown to the student on the cell
    code: str | None = None
    fields: dict = field(default_factory=dict)
