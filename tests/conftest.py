import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "fixtures" / "fmapi"))  # scripted_upstream, the fake workspace


@pytest.fixture(scope="session")
def scripted_workspace():
    """A second local server standing in for a real Databricks workspace."""
    import scripted_upstream

    server = scripted_upstream.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory):
    return tmp_path_factory.mktemp("samples")


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """Grade a catalog sample once per session: graded(name) -> (sample, grade, out_dir)."""
    from autograder.grade import grade_submission
    from autograder.samples import build_sample, load_catalog

    root = tmp_path_factory.mktemp("graded")
    catalog = load_catalog()
    cache = {}

    def get(name):
        if name not in cache:
            sample = catalog[name]
            path = build_sample(sample, root / "submissions" / name)
            out = root / "reports" / name
            grade = grade_submission(path, sample.exercises, out, cell_timeout_s=sample.cell_timeout_s)
            cache[name] = (sample, grade, out)
        return cache[name]

    return get
