from pathlib import Path

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


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """Grade a catalog sample once per session: graded(name) -> (sample, grade, out_dir)."""
    from autograder.official import grade_official
    from autograder.samples import build_sample, load_catalog

    root = tmp_path_factory.mktemp("graded")
    catalog = load_catalog()
    cache = {}

    def get(name):
        if name not in cache:
            sample = catalog[name]
            path = build_sample(sample, root / "submissions" / name)
            out = root / "reports" / name
            grade = grade_official(path, sample.exercises, out, cell_timeout_s=sample.cell_timeout_s)
            cache[name] = (sample, grade, out)
        return cache[name]

    return get


# A test is `slow` when it grades, runs notebooks, trains or drives a browser: the fixtures and
# modules below. `python -m pytest -m "not slow"` is the fast set; `.ci/run` runs everything.
SLOW_FIXTURES = {"graded", "shaped", "regenerated", "scripted_workspace", "sample_root"}
SLOW_MODULES = {"test_samples", "test_sandbox", "test_template_repo", "test_source_notebooks", "test_record_mode",
                "test_grade_report", "test_release", "test_local_models", "test_ex06", "test_export", "test_shapes"}


def pytest_collection_modifyitems(config, items):
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
