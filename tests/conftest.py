import functools
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def scripted_workspace():
    """A second local server standing in for a real Databricks workspace."""
    from autograder.record import scripted_workspace

    server = scripted_workspace()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory):
    return tmp_path_factory.mktemp("samples")


GRADING_JOBS = 2  # official gradings at once, as `grade-all --jobs 2` grades two students on a 2-core runner
# The samples whose feedback pages a test reads (test_grade_report, test_export's dashboard): the others' are not
# rendered (nbconvert's page costs nbgrader's process 0.6-2 s of CPU per exercise; the adversarial samples and the
# CLI tests render theirs).
PAGES_READ = {"solution", "blank_started", "ex01_drops_history"}
# Rough seconds an exercise's official grading takes here: the longest gradings are queued first.
GRADING_COST = {"ex01": 5, "ex02": 5, "ex03": 5, "ex04": 8, "ex05": 25, "ex06": 20, "ex02_spark": 15}
# The adversarial samples graded alone, after the others of their batch: each pushes one of the sandbox's limits
# (memory, processes, disk, output, time), and its test times what it did.
ALONE = {"bomb_memory", "bomb_fork", "bomb_file", "bomb_output", "uninterruptible_cell"}


@dataclass(frozen=True)
class Job:
    """One official grading the session shares: `build(folder)` writes the submission and returns it. It is built
    in `folder` if given (removed when the session ends), else in the session's temporary folder. The WANTED jobs
    of one `batch` are queued together; an `alone` job is graded with no other grading beside it."""
    key: tuple
    label: str
    build: Callable[[Path], Path] = field(compare=False)
    exercises: tuple
    cell_timeout_s: int | None = None
    feedback_pages: bool = False
    folder: Path | None = None
    batch: str = "shared"
    alone: bool = False

    @property
    def cost(self) -> int:
        return sum(GRADING_COST.get(e, 10) for e in self.exercises)


def sample_job(sample, shape: str = "release", exercises=None) -> Job:
    """`sample` saved in `shape` (tests/shapes.py)."""
    exercises = tuple(exercises or sample.exercises)
    label = sample.name if shape == "release" else f"{sample.name}-{shape}-{'-'.join(exercises)}"
    return Job(("sample", sample.name, shape, exercises), label, lambda dest: _built(sample, shape, dest), exercises,
               sample.cell_timeout_s, feedback_pages=shape == "release" and sample.name in PAGES_READ)


def mutant_job(mutant) -> Job:
    """The solution with one cell mutated (autograder.mutate), as `mutate` grades it."""
    from autograder.mutate.run import write_mutant

    label = "mutant-" + mutant.id.replace(":", "-").replace("/", "-")
    return Job(("mutant", mutant.id), label, lambda dest: write_mutant(mutant, dest, _course()),
               (mutant.exercise,))


def adversarial_job(sample) -> Job:
    """An adversarial sample (fixtures/submissions/adversarial.toml), with its feedback pages. It is built inside the
    checkout (out/ is git-ignored), as `collect --dest` may do, so that a relative link into source/ resolves. Its
    own batch is queued when test_sandbox first asks (its `adversarial` fixture sets up `before`, the checkout's
    snapshot, and `listener` first), not with the shared batch at the session's first ask."""
    from autograder.samples import build_sample

    return Job(("adversarial", sample.name), f"adversarial-{sample.name}",
               lambda dest: build_sample(sample, dest, _course()),
               tuple(sample.exercises), sample.cell_timeout_s, feedback_pages=True,
               folder=REPO / "out" / "adversarial" / sample.name, batch="adversarial", alone=sample.name in ALONE)


class Gradings:
    """Official gradings shared by the whole session: each Job graded once, GRADING_JOBS at a time in background
    threads. What the collected tests will ask for (`WANTED`, set when collection ends) is queued, longest first,
    as soon as one of its batch is asked for, and that first ask waits for all of it; anything else, and an `alone`
    job, is graded when asked for. (Grading the shared batch while the other tests run saved nothing on 2 cores,
    and put its sandboxes beside test_sandbox's.) `finished_at[key]`: time.monotonic() when a grading ended."""

    def __init__(self, root: Path):
        from concurrent.futures import ThreadPoolExecutor

        self.root, self.lock, self.futures, self.queued, self.folders, self.finished_at = \
            root, threading.Lock(), {}, [], [], {}
        self.pool = ThreadPoolExecutor(GRADING_JOBS, thread_name_prefix="grading")

    def get(self, job: Job):
        """(grade, report folder) of the job's submission, graded officially."""
        from concurrent.futures import wait

        with self.lock:  # only get submits, under this lock: an alone job's wait leaves the pool idle until it ends
            batch = [WANTED.pop(k) for k, w in list(WANTED.items()) if w.batch == job.batch]
            self.queued += [self._submit(w) for w in sorted(batch, key=lambda w: -w.cost) if not w.alone]
            if job.alone:
                wait(list(self.futures.values()))
            key = self._submit(job)
            # The first caller waits for the whole queue: the tests that read these gradings then run with no
            # grading beside them (some start servers or browsers of their own, with time limits).
            wait([self.futures[k] for k in self.queued + ([key] if job.alone else [])])
        return self.futures[key].result()

    def mutant(self, mutant):
        """(grade, report folder) of the solution with this mutant's cell mutated."""
        return self.get(mutant_job(mutant))

    def adversarial(self, name: str):
        """(sample, grade, report folder, finish time) of this adversarial sample."""
        sample = _catalog("adversarial.toml")[name]
        job = adversarial_job(sample)
        return sample, *self.get(job), self.finished_at[job.key]

    def _submit(self, job: Job):
        if job.key not in self.futures:
            self.futures[job.key] = self.pool.submit(self._grade, job)
            if job.folder:
                self.folders.append(job.folder)
        return job.key

    def _grade(self, job: Job):
        from autograder.official import grade_official

        path = job.build(job.folder or self.root / "submissions" / job.label)
        out = self.root / "reports" / job.label
        grade = grade_official(path, list(job.exercises), out, cell_timeout_s=job.cell_timeout_s,
                               feedback_pages=job.feedback_pages, course=_course())
        self.finished_at[job.key] = time.monotonic()
        return grade, out

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)


def _built(sample, shape: str, dest: Path) -> Path:
    from autograder.samples import build_sample
    from shapes import reshape_submission

    path = build_sample(sample, dest, _course())
    return reshape_submission(path, shape) if shape != "release" else path


def _course():
    """course.toml, as the command line reads it (load_course is cached)."""
    from coursegrader.config import load_course

    return load_course()


@functools.cache
def _catalog(name: str = "catalog.toml") -> dict:
    """The samples of fixtures/submissions/<name>, loaded once."""
    from autograder.samples import load_catalog
    from coursegrader.config import SUBMISSIONS_DIR

    return load_catalog(_course(), SUBMISSIONS_DIR / name)


# Job.key -> Job: what the collected tests will ask for
WANTED: dict = {}


@pytest.fixture(scope="session")
def gradings(tmp_path_factory):
    shared = Gradings(tmp_path_factory.mktemp("graded"))
    yield shared
    shared.close()


@pytest.fixture(scope="session")
def graded(gradings):
    """A catalog sample graded officially once per session: graded(name) -> (sample, grade, out_dir)."""
    catalog = _catalog()

    def get(name):
        grade, out = gradings.get(sample_job(catalog[name]))
        return catalog[name], grade, out

    return get


@pytest.fixture(scope="session")
def shaped(gradings):
    """A sample saved in another editor's shape (tests/shapes.py), graded officially once per session:
    shaped(sample, shape, exercises) -> grade."""
    return lambda sample, shape, exercises: gradings.get(sample_job(sample, shape, exercises))[0]


def _wanted_by(item) -> list:
    """The gradings a collected test will ask for, as far as its parameters tell."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    names = set(getattr(item, "fixturenames", ()))
    catalog, reshaped, adversarial = _catalog(), _catalog("reshaped.toml"), _catalog("adversarial.toml")
    found = []
    name = params.get("name")
    if "graded" in names and name in catalog:
        found.append(sample_job(catalog[name]))
    if "shaped" in names and "shape" in params and name in catalog:
        found.append(sample_job(catalog[name], params["shape"], params["exercises"]))
    elif "shaped" in names and name in reshaped:
        found.append(sample_job(reshaped[name], reshaped[name].shape, reshaped[name].exercises))
    if "gradings" in names and hasattr(item.module, "wanted_mutants"):
        found.extend(mutant_job(m) for m in item.module.wanted_mutants())  # what it asks gradings.mutant for
    if "adversarial" in names and name in adversarial:  # test_sandbox's fixture: gradings.adversarial
        found.append(adversarial_job(adversarial[name]))
    return found


# A test is `slow` when it grades, runs notebooks, trains or drives a browser: the fixtures and
# modules below. `python -m pytest -m "not slow"` is the fast set; `.ci/run` runs everything.
SLOW_FIXTURES = {"graded", "shaped", "gradings", "regenerated", "scripted_workspace", "sample_root",
                 "switched"}
SLOW_MODULES = {"test_samples", "test_sandbox", "test_template_repo", "test_source_notebooks", "test_record_mode",
                "test_grade_report", "test_release", "test_local_models", "test_ex06", "test_export", "test_shapes"}


def _grades(item) -> bool:
    """Whether the test asks gradings for something (graded, shaped and test_sandbox's adversarial ask it)."""
    return "gradings" in getattr(item, "fixturenames", ())


def _reads_shared(item) -> bool:
    """Whether the test reads the shared batch (test_sandbox's adversarial batch is graded when that module runs)."""
    return _grades(item) and "adversarial" not in item.fixturenames


def pytest_collection_modifyitems(config, items):
    """Mark the slow tests; run the tests that read shared gradings first, while those gradings run two at a
    time (nothing else grades beside them then); skip gpu tests without CUDA."""
    items.sort(key=lambda item: not _reads_shared(item))  # stable: each group keeps its order
    cuda = None
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("gpu"):
            if cuda is None:
                import torch

                cuda = torch.cuda.is_available()
            if not cuda:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU (gpu marker)"))


def pytest_collection_finish(session):
    """Queue what the selected tests will ask for (Gradings.get starts a batch when the first of it is asked for)."""
    for item in session.items:
        for job in _wanted_by(item) if _grades(item) else ():
            WANTED[job.key] = job
