"""The public/private boundary: coursegrader (shipped to students whole) never needs autograder."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import coursegrader
from coursegrader.config import RELEASE_DIR
import commands

CORE = Path(coursegrader.__file__).resolve().parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_public_package_imports_nothing_private():
    offenders = {str(p.relative_to(CORE)): sorted(m for m in imported_modules(p) if m.split(".")[0] == "autograder")
                 for p in CORE.rglob("*.py")}
    assert {p: m for p, m in offenders.items() if m} == {}


def test_every_public_module_imports_without_the_private_package(tmp_path):
    """As in a student's repository: only release/.grader on the path, `autograder` absent."""
    modules = sorted("coursegrader." + ".".join(p.relative_to(CORE).with_suffix("").parts).removesuffix(".__init__")
                     for p in CORE.rglob("*.py") if p.name != "__main__.py")
    code = ("import importlib, sys; sys.modules['autograder'] = None\n"
            f"for m in {modules!r}: importlib.import_module(m)\nprint('ok')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(RELEASE_DIR / ".grader"), "PATH": "/usr/bin:/bin",
                               "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_the_student_cli_offers_only_what_it_can_run(tmp_path):
    proc = commands.coursegrader("--help", cwd=RELEASE_DIR / ".grader", env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0, proc.stderr
    offered = proc.stdout.split("{", 1)[1].split("}", 1)[0].split(",")
    assert offered == ["check", "serve-fixtures", "annotate", "classroom50"]


def test_the_release_ships_the_public_package_whole():
    shipped = RELEASE_DIR / ".grader" / "coursegrader"
    ours = {p.relative_to(CORE) for p in CORE.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    theirs = {p.relative_to(shipped) for p in shipped.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert ours == theirs
    assert not (RELEASE_DIR / ".grader" / "autograder").exists()
