"""What a student kernel's environment holds: PATH and locale, a private HOME, the course's settings; no secrets."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..config import Course, Profile

# Only these variables of the grader's environment reach a student kernel (no tokens:
# the official workflow prefetches the gpu profile's model into HF_HOME, then grades offline).
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "HF_HOME", "HF_HUB_OFFLINE")
ADAPTER_ENV = "COURSE_ADAPTER_DIR"  # ex06: the LoRA adapter to evaluate


def our_tools_first(path: str | None) -> str:
    """PATH with this environment's bin first: nbgrader runs `alembic`, found on PATH, and a grader
    started as <venv>/bin/python without that folder on PATH must still find ours."""
    return os.pathsep.join(filter(None, (os.path.dirname(sys.executable), path)))


THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """`threads` (course.toml's cpu_threads) for every numeric library a kernel may load."""
    return dict.fromkeys(THREAD_ENV, str(threads))


def limit_cpu_threads(threads: int) -> None:
    """The grader's own model runs (reference generations, re-checked adapters) use the kernels' thread
    count (course.toml's cpu_threads): the same numerics, and no oversubscription beside them."""
    os.environ.update(thread_env(threads))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def kernel_env(extra: dict[str, str], home: Path, threads: int) -> dict[str, str]:
    """A kernel environment with no secrets: PATH and locale, a private HOME, `threads` for the numeric
    libraries (course.toml's cpu_threads), plus `extra`."""
    env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
    env["PATH"] = our_tools_first(env.get("PATH"))
    env.update(
        HOME=str(home),
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
        MPLBACKEND="Agg",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        TRANSFORMERS_VERBOSITY="error",
        **thread_env(threads),
    )
    env.update(extra)
    return env


def datasets_cache_folder(repo_id: str) -> Path:
    """Where `datasets` keeps a Hub dataset it has prepared (HF_DATASETS_CACHE, by default HF_HOME/datasets)."""
    cache = Path(os.environ.get("HF_DATASETS_CACHE")
                 or Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "datasets")
    return cache / repo_id.replace("/", "___")


def hub_datasets_cache(profile: Profile, home: Path) -> dict[str, str]:
    """A kernel's own copy of the profile's prefetched Hub datasets: `datasets` writes lock and cache files
    beside a cached dataset, and HF_HOME is read-only in the sandbox. The env that points at the copy."""
    copy = home / ".cache" / "course-datasets"
    found = [datasets_cache_folder(repo_id) for repo_id, kind in profile.hub_ids if kind == "dataset"]
    for folder in (f for f in found if f.is_dir()):
        shutil.copytree(folder, copy / folder.name, symlinks=True, ignore=shutil.ignore_patterns("*.lock"))
    return {"HF_DATASETS_CACHE": str(copy)} if copy.is_dir() else {}


def course_kernel_env(server_env: dict[str, str], home: Path, profile: Profile,
                      adapter_dir: str | None, course: Course) -> dict[str, str]:
    """The kernel environment for a course notebook: fixture server, model profile, MLflow store,
    and the adapter to evaluate, only for an exercise that evaluates one."""
    env = {**server_env, **profile.kernel_env(course.profile_env), **course.mlflow.kernel_env(),
           **hub_datasets_cache(profile, home)}
    if adapter_dir:
        env[ADAPTER_ENV] = adapter_dir
    return kernel_env(env, home, course.cpu_threads)
