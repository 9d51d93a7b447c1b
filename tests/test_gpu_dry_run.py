"""The gpu profile's code path, end to end, offline on this CPU: the official workflow's steps in order.

A stand-in Hub (fixtures/hub/hub_server.py) serves the real repository ids, google/gemma-3-270m-it,
bbz662bbz/databricks-dolly-15k-ja-gozarinnemon and bert-base-multilingual-cased, filled with the offline
stand-ins (fixtures/hub/stand_in.py). `prefetch --profile gpu` downloads through its HTTP API into
HF_HOME; then, with HF_HUB_OFFLINE=1 and no endpoint, `reference-adapter` and `grade` run the profile
gpu-dry-run (the gpu profile's ids, the cpu profile's budgets, since the model is the tiny one).
This tests code paths, not the real model's quality; what needs CUDA is in test_gpu.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coursegrader.config import REPO_ROOT, load_course
from commands import autograder

pytestmark = pytest.mark.slow

EXERCISES = ("ex04", "ex05", "ex06")


def _run(args, env, timeout=900):
    return autograder(*args, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """HF_HOME after `prefetch --profile gpu` against the stand-in Hub, and what the Hub was asked."""
    from fixtures.hub.hub_server import HubServer
    from fixtures.hub.stand_in import build_stand_in

    tmp = tmp_path_factory.mktemp("hub")
    (tmp / "hf").mkdir()
    (tmp / "hf" / "token").write_text("hf_saved_by_login")  # as `hf auth login` leaves it: 0600
    (tmp / "hf" / "token").chmod(0o600)
    with HubServer(build_stand_in(tmp / "repos")) as server:
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp / "hf"), "HF_TOKEN": "hf_stand_in"}
        env.pop("HF_HUB_OFFLINE", None)
        fetched = _run(["prefetch", "--profile", "gpu"], env)
        requests = list(server.requests)
    offline = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    offline.update(HF_HOME=str(tmp / "hf"), HF_HUB_OFFLINE="1")  # as the grade job runs
    return {"prefetch": fetched, "requests": requests, "env": offline, "tmp": tmp}


def test_prefetch_downloads_the_profiles_repositories_through_the_hub_api(hub):
    assert hub["prefetch"].returncode == 0, hub["prefetch"].stderr[-2000:]
    gpu = load_course().profile("gpu")
    for repo_id, kind in gpu.hub_ids:
        assert f"{kind} {repo_id} -> " in hub["prefetch"].stdout
    asked = "\n".join(hub["requests"])
    assert f"GET /{gpu.model_id}/resolve/" in asked and "model.safetensors" in asked
    assert f"GET /datasets/{gpu.dataset}/resolve/" in asked and "databricks-dolly-15k-ja-gozarinnemon.json" in asked
    hf_home = Path(hub["env"]["HF_HOME"])
    assert (hf_home / "token").stat().st_mode & 0o777 == 0o600  # what prefetch opens to the sandbox is only what it fetched
    assert all(p.stat().st_mode & 0o004 for p in (hf_home / "hub").rglob("*") if not p.is_symlink())


def test_after_prefetch_everything_loads_offline_by_its_hub_id(hub):
    probe = """
import json, sys
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
from coursegrader.config import load_course
from coursegrader.course_dataset import course_split, load_course_dataset
gpu = load_course().profile("gpu")
AutoTokenizer.from_pretrained(gpu.model_id); AutoModelForCausalLM.from_pretrained(gpu.model_id)
AutoModel.from_pretrained(gpu.bertscore_model)
data = load_course_dataset(gpu.dataset)
try:
    load_course_dataset("bbz662bbz/not-prefetched")
    missing = "loaded"
except Exception as err:
    missing = type(err).__name__
print(json.dumps({"rows": len(data), "columns": sorted(data.column_names),
                  "test": len(course_split(data)["test"]), "missing": missing}))
"""
    run = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, env=hub["env"], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["columns"] == ["category", "index", "input", "instruction", "output"]
    assert seen["rows"] > 100 and seen["test"] == round(seen["rows"] * 0.1 + 0.49)
    assert seen["missing"] != "loaded"  # offline: nothing but what prefetch fetched


MIRROR_PROBE = r"""
import json, os
from IPython.display import display
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
seen = {}
for exercise_id, cells in CELLS.items():
    for cell in cells:
        exec(cell, globals())
    seen[exercise_id] = {"model": MODEL_ID, "dataset": globals().get("DATASET_ID"), "encoder": globals().get("BERTSCORE_MODEL")}
AutoTokenizer.from_pretrained(MODEL_ID); AutoModelForCausalLM.from_pretrained(MODEL_ID)
AutoModel.from_pretrained(BERTSCORE_MODEL)
data = load_course_dataset(DATASET_ID)
seen["rows"], seen["columns"] = len(data), sorted(data.column_names)
print(json.dumps(seen))
"""


def test_a_hub_mirror_laid_out_from_the_cache_serves_the_notebooks_without_the_hub(hub, tmp_path):
    """`mirror` copies the prefetched repositories to a folder (a Volume, on Databricks); the release notebooks'
    profile cells, given that folder as HUB_MIRROR, load the model, the dataset and the encoder from it with no Hub
    and an empty HF_HOME."""
    import nbformat

    from coursegrader.config import RELEASE_DIR
    from coursegrader.notebook import grade_id

    volume = tmp_path / "Volumes" / "main" / "llm_course" / "hub"
    made = _run(["mirror", str(volume)], hub["env"])
    assert made.returncode == 0, made.stderr[-2000:]
    gpu = load_course().profile("gpu")
    manifest = json.loads((volume / "MIRROR.json").read_text())
    assert [(r["repo_id"], r["kind"]) for r in manifest["repositories"]] == gpu.hub_ids
    assert not [p for p in volume.rglob("*") if p.is_symlink()]  # plain files: a Volume holds no links

    wanted = {"ex04": ["ex04_profile"], "ex05": ["ex05_profile", "ex05_course_dataset"], "ex06": ["ex06_profile"]}
    cells = {ex: [c.source for c in nbformat.read(RELEASE_DIR / ex / f"{ex}.ipynb", as_version=4).cells
                  if grade_id(c) in ids] for ex, ids in wanted.items()}
    (tmp_path / "hf").mkdir()
    env = {**{k: v for k, v in hub["env"].items() if not k.startswith(("HF_", "COURSE_"))},
           "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           load_course().profile_env["hub_mirror"]: str(volume), "COURSE_EXPERIMENT": "/Users/student/mirror",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    run = subprocess.run([sys.executable, "-c", "CELLS = " + repr(cells) + MIRROR_PROBE], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["ex04"]["model"] == seen["ex05"]["model"] == f"{volume}/{gpu.model_id}"
    assert seen["ex05"]["dataset"] == seen["ex06"]["dataset"] == f"{volume}/{gpu.dataset}"
    assert seen["ex06"]["encoder"] == f"{volume}/{gpu.bertscore_model}"
    assert seen["rows"] > 100 and seen["columns"] == ["category", "index", "input", "instruction", "output"]
    assert not any((tmp_path / "hf").rglob("*.safetensors"))  # nothing came through the Hub cache


def test_mirror_without_a_prefetch_says_what_to_run(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HF_")}, "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_OFFLINE": "1"}
    run = _run(["mirror", str(tmp_path / "volume")], env)
    assert run.returncode == 1 and "prefetch --profile gpu" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "volume").exists()


@pytest.fixture(scope="module")
def gpu_profile_ex06(hub, tmp_path_factory):
    """The solution's ex06 graded with the gpu profile itself, started at once in the background (it needs only
    the Hub cache, and runs beside the reference adapter's training): None where the checkout has a gpu
    reference adapter, else (process, report folder)."""
    from autograder.samples import build_sample, load_catalog

    if load_course().profile("gpu").reference_adapter_path():
        yield None
        return
    tmp = tmp_path_factory.mktemp("gpu-profile")
    submission = build_sample(load_catalog(load_course())["solution"], tmp / "solution", load_course())
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(submission), "--profile", "gpu",
                             "--exercise", "ex06", "--out", str(tmp / "out")], cwd=REPO_ROOT, env=hub["env"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    yield proc, tmp / "out"
    proc.kill()
    proc.communicate()


@pytest.fixture(scope="module")
def reference_adapter(hub, gpu_profile_ex06):
    """The workflow's step after prefetch: the profile's reference adapter, trained here."""
    built = _run(["reference-adapter", "--profile", "gpu-dry-run", "--force"], hub["env"])
    assert built.returncode == 0, built.stderr[-3000:]
    return Path(load_course().profile("gpu-dry-run").reference_adapter_path())


def test_reference_adapter_is_built_for_the_hub_model(reference_adapter):
    config = json.loads((reference_adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "google/gemma-3-270m-it"
    assert sorted(p.name for p in reference_adapter.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]


@pytest.fixture(scope="module")
def dry_grades(hub, reference_adapter):
    from autograder.samples import build_sample, load_catalog

    from concurrent.futures import ThreadPoolExecutor

    course = load_course()
    catalog = load_catalog(course)

    def grade(name):
        submission = build_sample(catalog[name], hub["tmp"] / "submissions" / name, course)
        out = hub["tmp"] / "graded" / name
        run = _run(["grade", str(submission), "--profile", "gpu-dry-run", "--out", str(out),
                    *[a for ex in EXERCISES for a in ("--exercise", ex)]], hub["env"])
        assert run.returncode == 0, run.stderr[-3000:]
        return json.loads((out / "grade.json").read_text(encoding="utf-8"))

    with ThreadPoolExecutor(2) as pool:  # two students at once, as grade-all --jobs 2 grades them
        return dict(zip(("solution", "blank"), pool.map(grade, ("solution", "blank"))))


def test_solution_scores_full_marks_and_blank_zero_in_the_gpu_code_path(dry_grades):
    solution, blank = dry_grades["solution"], dry_grades["blank"]
    failed = {ex: [c["id"] + ": " + c["message"] for c in e["checks"] if not c["passed"]]
              for ex, e in solution["exercises"].items()}
    assert solution["score"] == solution["max_score"] == 33, failed
    assert blank["score"] == 0 and blank["max_score"] == 33
    assert solution["sandbox"] is True and solution["tier"] == "official"


def test_the_judge_answers_an_eval_set_it_never_recorded_and_the_report_says_so(dry_grades):
    ex06 = dry_grades["solution"]["exercises"]["ex06"]
    scripted = [p for p in ex06["problems"] if p["code"] == "fixture_scripted"]
    assert scripted and "ex06_llm_judge-scripted" in scripted[0]["message_en"]
    assert next(c for c in ex06["checks"] if c["id"] == "ex06_judge")["passed"]


def test_without_a_reference_adapter_ex06_is_graded_and_says_why(gpu_profile_ex06):
    """The gpu profile's own reference adapter is built only on a GPU runner: here there is none."""
    if gpu_profile_ex06 is None:
        pytest.skip("a gpu reference adapter has been built in this checkout")
    proc, out = gpu_profile_ex06
    _, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr[-3000:]
    ex06 = json.loads((out / "grade.json").read_text(encoding="utf-8"))["exercises"]["ex06"]
    problem = next(p for p in ex06["problems"] if p["code"] == "reference_adapter_unavailable")
    assert "profile gpu" in problem["message_en"] and "参照用アダプタ" in problem["message_ja"]
