"""Outside-the-kernel checks, one module per exercise (ex01.py, ex02.py, ...).

A check takes the Evidence and returns a Verdict. course.toml names, for each
graded cell, the checks that must also pass for its points to count.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from coursegrader.config import Profile
from coursegrader.grading.tier import RunSetup
from coursegrader.precision import Precision

from ..evidence import Evidence, Verdict

Check = Callable[[Evidence], Verdict]
WarmUp = Callable[[dict, Profile, Precision], None]  # (the instructor's inputs cell, the profile, its precision here)
Standby = Callable[[Path, RunSetup], dict]  # (the kernel's work folder, the run) -> processes by name
_REGISTRY: dict[tuple[str, str], Check] = {}
_WARM_UPS: dict[str, WarmUp] = {}
_STANDBYS: dict[str, Standby] = {}


_WAITING: set[tuple[str, str]] = set()


def check(exercise_id: str, waits: bool = False):
    """Registers a check of the exercise. waits: the check spends its time waiting for a fresh process (the
    executor then runs it beside the others)."""
    def register(fn: Check) -> Check:
        _REGISTRY[(exercise_id, fn.__name__)] = fn
        if waits:
            _WAITING.add((exercise_id, fn.__name__))
        return fn
    return register


def waits(exercise_id: str, name: str) -> bool:
    """Whether the check mostly waits for a fresh process (see check)."""
    importlib.import_module(f"{__name__}.{exercise_id}")
    return (exercise_id, name) in _WAITING


def warms_up(exercise_id: str):
    """Marks what an exercise's checks compute the same for every student (from trusted inputs only)."""
    def register(fn: WarmUp) -> WarmUp:
        _WARM_UPS[exercise_id] = fn
        return fn
    return register


def stands_by(exercise_id: str):
    """Marks the fresh processes an exercise's checks will run student code in, to start with the kernel."""
    def register(fn: Standby) -> Standby:
        _STANDBYS[exercise_id] = fn
        return fn
    return register


def get_check(exercise_id: str, name: str) -> Check:
    importlib.import_module(f"{__name__}.{exercise_id}")
    return _REGISTRY[(exercise_id, name)]


def warm_up(exercise_id: str, inputs: dict, profile: Profile, precision: Precision) -> None:
    importlib.import_module(f"{__name__}.{exercise_id}")
    if exercise_id in _WARM_UPS:
        _WARM_UPS[exercise_id](inputs, profile, precision)


def standby(exercise_id: str, kernel_dir: Path, setup: RunSetup) -> dict:
    importlib.import_module(f"{__name__}.{exercise_id}")
    return _STANDBYS[exercise_id](kernel_dir, setup) if exercise_id in _STANDBYS else {}
