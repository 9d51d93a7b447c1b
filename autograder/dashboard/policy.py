"""The late-submission policy: course.toml's late_penalty_per_day of the core total for each started day after
the deadline, at most late_penalty_max of it."""
from __future__ import annotations

import datetime as dt
import math

from coursegrader.config import Course


def days_late(committed_at: dt.datetime | None, deadline: dt.datetime) -> int:
    """Started days between the deadline and the commit (0 when on time or when the time is unknown)."""
    if not committed_at or committed_at <= deadline:
        return 0
    return math.ceil((committed_at - deadline).total_seconds() / 86400)


def late_penalty(raw_score: float, days: int, course: Course) -> float:
    """The points taken from raw_score (the core total) for a submission `days` late."""
    fraction = min(course.late_penalty_per_day * days, course.late_penalty_max)
    return round(raw_score * fraction, 2)
