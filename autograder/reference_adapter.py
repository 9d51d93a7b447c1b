"""The reference LoRA adapter ex06 evaluates when a student's ex05 adapter is unusable.

It is what the ex05 solution notebook trains in the profile, copied out of its working folder
(adapter_config.json and adapter_model.safetensors only). The cpu profile's is committed
(fixtures/models/tiny-gemma3-ja-gozaru-lora); the gpu profiles build theirs where they grade:
`python -m autograder reference-adapter --profile gpu` on the GPU runner, after `prefetch`.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from coursegrader.config import REPO_ROOT, Course, Profile
from coursegrader.fmapi import FixtureServer
from coursegrader.notebook import inputs_of

from .plain_run import run_source_notebook

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def build_reference_adapter(profile: Profile, course: Course, dest: Path | None = None) -> Path:
    """Train the profile's reference adapter with the producing exercise's solution (ex05) into dest."""
    dest = Path(dest or REPO_ROOT / profile.reference_adapter)
    source = next(e.adapter_from for e in course.exercises.values() if e.adapter_from)  # ex05's ADAPTER_DIR
    producer = course.exercises[source.exercise]
    with tempfile.TemporaryDirectory() as tmp, FixtureServer(course=course) as server:
        nb = run_source_notebook(producer, Path(tmp), server, course, profile)
        adapter = Path(tmp) / str(inputs_of(nb, producer.id)[source.input])
        staging = dest.with_name(dest.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in ADAPTER_FILES:
            shutil.copyfile(adapter / name, staging / name)
    config = json.loads((staging / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = profile.model_id  # no machine-local path
    (staging / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)  # whole or not at all: a half-written adapter is never found
    return dest

