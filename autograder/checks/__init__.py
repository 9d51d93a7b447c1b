"""Outside-the-kernel checks, one module per exercise (ex01.py, ex02.py, ...).

A check takes the Evidence and returns a Verdict. course.toml names, for each
graded cell, the checks that must also pass for its points to count.
"""
from __future__ import annotations

import importlib
from typing import Callable

from ..evidence import Evidence, Verdict

Check = Callable[[Evidence], Verdict]
_REGISTRY: dict[tuple[str, str], Check] = {}


def check(exercise_id: str):
    def register(fn: Check) -> Check:
        _REGISTRY[(exercise_id, fn.__name__)] = fn
        return fn
    return register


def get_check(exercise_id: str, name: str) -> Check:
    importlib.import_module(f"{__name__}.{exercise_id}")
    return _REGISTRY[(exercise_id, name)]
