"""calibrate: measure, for one profile, what its thresholds and budgets in course.toml rest on.

It grades (official tier, in the sandbox, with the profile) the solution's ex04-ex06 and the ex05
mistakes in CALIBRATION_MISTAKES, and writes every figure it saw to fixtures/calibration/<profile>.json:
the gozaru rate of the base model and of each adapter on the held-out prompts, the training time
against the training cell's limit, the peak memory, and each exercise's grading time.
tests/test_calibration.py holds course.toml's thresholds to that file.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from coursegrader.config import BUDGET_FIELDS, FIXTURES_DIR, Course, Profile
from coursegrader.grading import grade_submission
from coursegrader.grading.untrusted import copy_adapter
from coursegrader.notebook import find_cell, inputs_of
from coursegrader.precision import machine_precision

from .bench import SandboxUsage
from .official import OFFICIAL
from .samples import build_sample, load_catalog

CALIBRATION_DIR = FIXTURES_DIR / "calibration"
SOLUTION_EXERCISES = ("ex04", "ex05", "ex06")
# Mistakes whose ex05_gozaru must fail: one that trains too little to learn the style (the threshold
# must sit above it), and two that never produce an adapter.
CALIBRATION_MISTAKES = ("ex05_undertrained", "ex05_ignores_budget", "ex05_bad_target_modules")
TRAIN_CELL = "ex05_train_impl"


def calibration_path(profile_name: str) -> Path:
    return CALIBRATION_DIR / f"{profile_name}.json"


class GpuMemory:
    """Peak memory used on the GPUs while it runs (nvidia-smi), or None without one."""

    def __init__(self, every_s: float = 0.5):
        self.every_s, self.peak_mb = every_s, None
        self._tool = shutil.which("nvidia-smi")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "GpuMemory":
        if self._tool:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                out = subprocess.run([self._tool, "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=10).stdout
                used = sum(int(line) for line in out.split())
            except (OSError, ValueError, subprocess.SubprocessError):
                continue
            self.peak_mb = max(self.peak_mb or 0, used)


def _cell_seconds(nb, grade_id: str) -> float | None:
    """How long a cell ran, from the execution timestamps nbclient records in its metadata."""
    cell = find_cell(nb, grade_id)
    timing = (cell.metadata.get("execution") or {}) if cell is not None else {}
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = lambda t: _dt.datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return round((parse(end) - parse(start)).total_seconds(), 1)


def _adapter_rate(run, profile: Profile) -> float | None:
    """The gozaru rate of the adapter an ex05 run saved (a copy of its plain files), or None."""
    from .checks.ex05 import heldout_rates
    from .reference_lm import ReferenceLM

    name = inputs_of(run.source_nb, run.exercise.id).get("ADAPTER_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        copied = copy_adapter(run.autograded.work_dir / str(name), Path(tmp) / "adapter",
                              run.course.limits) if run.autograded else None
        if not copied:
            return None
        precision = machine_precision(run.course.bf16_min_capability)
        tuned, _ = heldout_rates(ReferenceLM(profile.resolve(profile.model_id), str(copied), precision=precision),
                                 profile.resolve(profile.model_id), profile.max_new_tokens)
        return tuned


def measure(sample_name: str, exercises, profile: Profile, course: Course, work: Path) -> dict:
    sample = load_catalog(course)[sample_name]
    submission = build_sample(sample, work / "submissions" / sample_name, course)
    figures, started = {}, [time.perf_counter()]

    def on_graded(run) -> None:
        now = time.perf_counter()
        row = {"score": run.score, "max_score": run.exercise.max_score, "grade_s": round(now - started[0], 1),
               "failed": sorted(c.id for c in run.checks if not c.passed),
               "problems": sorted({p.code for p in run.problems})}
        if run.exercise.id == "ex05":
            row.update(train_s=_cell_seconds(run.autograded.notebook, TRAIN_CELL) if run.autograded else None,
                       train_cell_limit_s=run.cell_timeout_s, tuned_gozaru_rate=_adapter_rate(run, profile))
        figures[run.exercise.id] = row
        started[0] = time.perf_counter()

    with SandboxUsage() as usage, GpuMemory() as gpu:
        grade_submission(submission, list(exercises), tier=OFFICIAL, profile=profile, sandbox=True,
                         cell_timeout_s=sample.cell_timeout_s, on_graded=on_graded, render_feedback=False,
                         course=course)
    return {"exercises": figures, "peak_sandbox_data_mb": usage.peak_data_mb, "peak_gpu_mb": gpu.peak_mb}


def calibrate(profile: Profile, course: Course, out: Path | None = None) -> dict:
    from .checks.ex05 import base_heldout_rate

    with tempfile.TemporaryDirectory(prefix="calibrate-") as tmp:
        runs = {"solution": measure("solution", SOLUTION_EXERCISES, profile, course, Path(tmp))}
        for name in CALIBRATION_MISTAKES:
            runs[name] = measure(name, ["ex05"], profile, course, Path(tmp))
    import torch

    result = {
        "profile": profile.name,
        "measured_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "python": platform.python_version(), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads()},
        "settings": {k: getattr(profile, k) for k in BUDGET_FIELDS},
        "base_gozaru_rate": base_heldout_rate(profile.resolve(profile.model_id), profile.max_new_tokens,
                                              machine_precision(course.bf16_min_capability)),
        "runs": runs,
    }
    path = Path(out or calibration_path(profile.name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return result


def print_calibration(result: dict) -> None:
    print(f"profile {result['profile']}: base gozaru rate {result['base_gozaru_rate']:.2f}; "
          f"thresholds rate >= {result['settings']['min_gozaru_rate']}, lift >= {result['settings']['min_gozaru_lift']}")
    for name, run in result["runs"].items():
        for ex, row in run["exercises"].items():
            extra = ""
            if ex == "ex05":
                extra = (f"  gozaru {row['tuned_gozaru_rate']}  train {row['train_s']} s of {row['train_cell_limit_s']} s")
            print(f"{name:<26}{ex:<6}{row['score']:>5g}/{row['max_score']:<4g}{row['grade_s']:>7.1f} s{extra}")
        print(f"{'':<26}peak sandbox data {run['peak_sandbox_data_mb']} MB, GPU {run['peak_gpu_mb']} MB")
