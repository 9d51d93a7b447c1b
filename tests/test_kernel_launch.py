"""The course kernel as nbgrader's process starts it: with the release notebook's modules imported before its
first cell, binding no name a student could lean on, and a module that does not import left to the cell."""
import sys

import nbformat
from jupyter_core.utils import run_sync

from coursegrader.config import RELEASE_DIR, load_course
from coursegrader.execution import kernel_launch
from coursegrader.execution.kernel_launch import KernelLaunch, prestart, shutdown_unclaimed, started_kernel
from coursegrader.notebook import imported_modules

PROBE = """import sys
print(sorted(m for m in ("colorsys", "email.mime.text") if m in sys.modules))
print(sorted(n for n in dir() if not n.startswith("_") and n not in ("In", "Out", "exit", "quit", "get_ipython", "open", "sys")))
print(repr(_))
"""


def _launch(tmp_path, preload) -> KernelLaunch:
    runtime = tmp_path / "rt"
    runtime.mkdir()
    return KernelLaunch("python3", str(tmp_path), {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
                        ipc_prefix=str(runtime / "k"), connection_file=str(runtime / "kernel.json"),
                        preload=tuple(preload))


def _run(km, code: str, graceful: bool = False) -> str:
    """What the code printed; the kernel is then shut down (graceful: as nbclient does, by asking it)."""
    kc = km.client()
    kc.start_channels()
    try:
        run_sync(kc.wait_for_ready)(timeout=60)
        said = []
        run_sync(kc.execute_interactive)(code, timeout=60,
                                         output_hook=lambda m: said.append(m["content"].get("text", "")))
        return "".join(said)
    finally:
        kc.stop_channels()
        km.shutdown_wait_time = 60  # a graceful shutdown is never cut short by a busy machine
        run_sync(km.shutdown_kernel)(now=not graceful)


def test_the_kernel_imports_its_preload_into_sys_modules_only(tmp_path):
    launch = _launch(tmp_path, ["colorsys", "no_such_module_of_the_course", "email.mime.text"])
    launch.write(tmp_path / "launch.json")
    prestart(tmp_path / "launch.json")
    km = started_kernel(tmp_path / "launch.json")
    assert km.kernel_spec.argv[0] in (sys.executable, "python")
    lines = _run(km, PROBE).splitlines()
    assert lines == ["['colorsys', 'email.mime.text']", "[]", "''"]


def test_a_kernel_without_preload_has_none_of_those_modules(tmp_path):
    lines = _run(_launch(tmp_path, []).start(), PROBE).splitlines()
    assert lines[1:] == ["[]", "''"] and "colorsys" not in lines[0]


def test_a_launch_file_round_trips(tmp_path):
    launch = _launch(tmp_path, ["pandas", "databricks.sdk"])
    assert KernelLaunch.read(launch.write(tmp_path / "launch.json")) == launch


def test_imported_modules_are_the_release_notebooks_absolute_imports_in_order():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os, json as j\nfrom databricks.sdk import WorkspaceClient"),
        nbformat.v4.new_code_cell("%pip install x\nimport hidden"),  # a magic: not Python, left out
        nbformat.v4.new_code_cell("from __future__ import annotations\nfrom . import local\n"
                                  "def f():\n    import pandas as pd\n    from os import path"),
    ])
    assert imported_modules(nb) == ["os", "json", "databricks.sdk", "pandas"]
    ex01 = load_course().exercises["ex01"]
    assert "databricks.sdk" in imported_modules(nbformat.read(RELEASE_DIR / "ex01" / ex01.notebook, as_version=4))


def test_a_prestarted_kernel_nobody_took_is_shut_down(tmp_path):
    """The exercise stopped before its execution (nbgrader could not prepare it): no kernel outlives the job."""
    _launch(tmp_path, []).write(tmp_path / "launch.json")
    prestart(tmp_path / "launch.json")
    km = started_kernel(tmp_path / "launch.json")  # taken: shutdown_unclaimed must leave it alone
    prestart(tmp_path / "launch.json")
    unclaimed = kernel_launch._started[tmp_path / "launch.json"]
    shutdown_unclaimed()
    assert not run_sync(unclaimed.is_alive)() and run_sync(km.is_alive)()
    assert tmp_path / "launch.json" not in kernel_launch._started
    run_sync(km.shutdown_kernel)(now=True)


EXIT_PROBE = """import atexit
class Finalized:
    def __del__(self):
        open("teardown.txt", "w").write("ran")
kept = Finalized()
atexit.register(lambda: open("handlers.txt", "w").write("ran"))
print(sorted(n for n in dir() if not n.startswith("_") and n not in ("In", "Out", "exit", "quit", "get_ipython", "open")))
"""


def test_a_kernel_shut_down_runs_the_exit_handlers_cells_registered_and_skips_the_teardown(tmp_path):
    """The kernel ends right after the handlers registered since it started (MLflow ends its runs there);
    the interpreter's module teardown, seconds with torch loaded, is skipped (no finalizer of a live object)."""
    said = _run(_launch(tmp_path, ["colorsys"]).start(), EXIT_PROBE, graceful=True)
    assert said.strip() == "['Finalized', 'atexit', 'kept']"  # the exit handler bound no name
    assert (tmp_path / "handlers.txt").read_text() == "ran"
    assert not (tmp_path / "teardown.txt").exists()
