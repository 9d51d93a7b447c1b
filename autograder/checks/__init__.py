"""Outside-the-kernel checks, one module per exercise (ex01.py, ex02.py, ...).

A check takes the Evidence and returns a Verdict. course.toml names, for each
graded cell, the checks that must also pass for its points to count.
"""
from __future__ import annotations

import importlib
from typing import Callable

from coursegrader.config import Profile

from ..evidence import Evidence, Verdict

Check = Callable[[Evidence], Verdict]
WarmUp = Callable[[dict, Profile], None]  # (the instructor's inputs cell, the profile)
_REGISTRY: dict[tuple[str, str], Check] = {}
_WARM_UPS: dict[str, WarmUp] = {}


def check(exercise_id: str):
    def register(fn: Check) -> Check:
        _REGISTRY[(exercise_id, fn.__name__)] = fn
        return fn
    return register


def warms_up(exercise_id: str):
    """Marks what an exercise's checks compute the same for every student (from trusted inputs only)."""
    def register(fn: WarmUp) -> WarmUp:
        _WARM_UPS[exercise_id] = fn
        return fn
    return register


def get_check(exercise_id: str, name: str) -> Check:
    importlib.import_module(f"{__name__}.{exercise_id}")
    return _REGISTRY[(exercise_id, name)]


def warm_up(exercise_id: str, inputs: dict, profile: Profile) -> None:
    importlib.import_module(f"{__name__}.{exercise_id}")
    if exercise_id in _WARM_UPS:
        _WARM_UPS[exercise_id](inputs, profile)
