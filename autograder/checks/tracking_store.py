"""ex06's reader of the student's MLflow store (SQLite, read with MlflowClient in the grader process): the course's
runs, their logged tables and figures, the registry's client. What it reads is remembered per submission
(`remembered`); what keeps it from reading is a StoreProblem, which ex06's checks turn into their verdict."""
from __future__ import annotations

import json
import os
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from coursegrader.config import MlflowSettings
from coursegrader.mlflow_store import tracking_db

from ..evidence import Evidence

RUN_NAMES = ("base", "finetuned")
PNG_CANDIDATES = 4  # the .png artifacts opened, at most, to find a figure


class StoreProblem(Exception):
    """What keeps the store from being read as the checks need it: one of the kinds below (dataclasses with
    eq=False: an exception compares and hashes by identity)."""


@dataclass(eq=False)
class StoreMissing(StoreProblem):
    """No tracking database in the work folder."""
    store: str  # the database's file name


@dataclass(eq=False)
class NoRuns(StoreProblem):
    """No experiment holds a run."""


@dataclass(eq=False)
class WrongExperiment(StoreProblem):
    """The configured experiment holds no run; these others do."""
    experiment: str
    found: list[str]


@dataclass(eq=False)
class RunsMissing(StoreProblem):
    """Runs of RUN_NAMES that the configured experiment lacks."""
    runs: list[str]


@dataclass(eq=False)
class ArtifactsOutside(StoreProblem):
    """Runs whose artifact_uri points outside the work folder (the store is the student's: it may point the grader,
    and a TA's MLflow UI, anywhere)."""
    runs: list[str]


@dataclass(eq=False)
class TableMissing(StoreProblem):
    """A run without the logged table (or with one MLflow cannot download)."""
    run: str
    artifact: str


def remembered(ev: Evidence, key, compute: Callable[[], Any], *, alone: bool = False) -> Any:
    """compute() once per submission (the store does not change while the checks read it); a StoreProblem is
    remembered and raised again. alone: a long job (the champion's), which the checks that only read the store
    need not wait for."""
    return ev.shared.once(key, compute, remember=(StoreProblem,), alone=alone)


def store_client(ev: Evidence):
    """An MlflowClient on the student's store, for tracking and registry; StoreMissing where there is none."""
    from mlflow import MlflowClient

    db = tracking_db(ev.work_dir, ev.course.mlflow)
    if not db.is_file():
        raise StoreMissing(db.name)
    uri = f"sqlite:///{db}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def store_env(work_dir: Path, mlflow: MlflowSettings) -> dict[str, str]:
    """A fresh process's view of the student's MLflow store (its copy sits at the same path)."""
    db = f"sqlite:///{tracking_db(work_dir, mlflow)}"
    return {"MLFLOW_TRACKING_URI": db, "MLFLOW_REGISTRY_URI": db, "HF_HUB_OFFLINE": "1"}


def logged_runs(ev: Evidence) -> dict:
    """Run name -> the latest run of that name in the configured experiment, for each of RUN_NAMES."""
    return remembered(ev, "runs", lambda: _find_runs(ev))


def _find_runs(ev: Evidence) -> dict:
    client = store_client(ev)
    expected = ev.course.mlflow.experiment
    experiment = client.get_experiment_by_name(expected)
    runs = client.search_runs([experiment.experiment_id], order_by=["attribute.start_time DESC"]) if experiment else []
    if not runs:
        others = [e.name for e in client.search_experiments() if client.search_runs([e.experiment_id], max_results=1)]
        if not others:
            raise NoRuns()
        raise WrongExperiment(expected, others)
    found = {}
    for run in runs:
        found.setdefault(run.info.run_name, run)
    missing = [n for n in RUN_NAMES if n not in found]
    if missing:
        raise RunsMissing(missing)
    outside = [n for n in RUN_NAMES if not _inside(found[n].info.artifact_uri, ev.work_dir)]
    if outside:
        raise ArtifactsOutside(outside)
    return {n: found[n] for n in RUN_NAMES}


def _inside(uri: str, folder: Path) -> bool:
    path = Path(urllib.parse.urlparse(uri).path if uri.startswith("file:") else uri)
    return path.is_absolute() and Path(os.path.normpath(path)).is_relative_to(Path(folder).resolve())


def logged_table(ev: Evidence, run, name: str) -> dict:
    """A `mlflow.log_table` artifact of the run as {column: values}; TableMissing where it cannot be downloaded."""
    return remembered(ev, ("table", run.info.run_id, name), lambda: _download_table(ev, run, name))


def _download_table(ev: Evidence, run, name: str) -> dict:
    client = store_client(ev)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run.info.run_id, name, tmp)
        except Exception:  # noqa: BLE001 - a missing artifact is the student's, reported
            raise TableMissing(run.info.run_name, name)
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {col: [row[i] for row in data["data"]] for i, col in enumerate(data["columns"])}


def has_png_figure(ev: Evidence, run, max_bytes: int) -> bool:
    """A .png artifact of at most max_bytes at the run's top level that Pillow reads as a PNG (checked, not decoded)."""
    from PIL import Image

    client = store_client(ev)
    try:
        names = [a.path for a in client.list_artifacts(run.info.run_id)
                 if not a.is_dir and a.path.lower().endswith(".png") and (a.file_size or 0) <= max_bytes]
    except Exception:  # noqa: BLE001 - an unreadable artifact store: no figure
        return False
    for name in names[:PNG_CANDIDATES]:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                with Image.open(client.download_artifacts(run.info.run_id, name, tmp)) as image:
                    image.verify()
                    if image.format == "PNG" and min(image.size) > 0:
                        return True
            except Exception:  # noqa: BLE001 - not an image: look at the next
                continue
    return False
