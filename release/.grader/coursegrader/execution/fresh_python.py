"""Student code the grader runs outside the notebook (ex06's model load and hidden cases): a fresh process."""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from .. import sandbox
from ..grading.untrusted import copy_regular_tree
from ..sandbox.policy import SandboxPolicy
from .environment import kernel_env


def fresh_python(code: str, *args: str, timeout: int, sandboxed: bool, readable: list[Path] = (),
                 stdin: str | None = None, files: Path | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -c code args…` in a new process with a kernel's minimal environment: in the sandbox
    (official tier), with a copy of `files` (links left out) at its own path, writable, so nothing it
    does reaches the grader or what the grader reads next. Raises TimeoutExpired."""
    command = [sys.executable, "-c", code, *args]
    with tempfile.TemporaryDirectory(prefix="fresh-python-") as tmp:
        work = Path(tmp) / "work"
        copy_regular_tree(files, work) if files else work.mkdir()
        if not sandboxed:
            return subprocess.run(command, input=stdin, cwd=work, env=kernel_env(env or {}, Path(tmp)),
                                  capture_output=True, text=True, timeout=timeout)
        policy = SandboxPolicy(Path(files or work), work_source=work, readable=list(readable))
        return sandbox.run(policy, command, env=kernel_env(env or {}, Path("/tmp")), stdin=stdin, timeout=timeout)
