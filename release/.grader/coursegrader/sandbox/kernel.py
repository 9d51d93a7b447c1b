"""Starting student code in the sandbox: the kernel (a kernelspec), other processes (`run`), the probe."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .policy import Limits, SandboxPolicy, bwrap_path

LAUNCH_SCRIPT = Path(__file__).with_name("launch.py")
HOW_TO_ENABLE = (
    "Official grading runs student code only inside a bubblewrap sandbox. Install it "
    "(`sudo apt-get install bubblewrap`) and allow unprivileged user namespaces where AppArmor "
    "restricts them (Ubuntu 23.10+, GitHub's ubuntu-24.04 runners: "
    "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`), or grade as root. "
    "`--no-sandbox` grades without it, for debugging only (grade.json then says \"sandbox\": false)."
)


class SandboxUnavailable(RuntimeError):
    pass


def launch_argv(spec_file: Path, command: list[str]) -> list[str]:
    return [sys.executable, "-I", str(LAUNCH_SCRIPT), str(spec_file), "--", *command]


def kernel_argv(spec_file: Path | None) -> list[str]:
    """ipykernel on the grader's own interpreter (named, never looked up on PATH), sandboxed when spec_file is given."""
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    return launch_argv(spec_file, kernel) if spec_file else kernel


def write_kernelspec(kernels_dir: Path, name: str, spec_file: Path | None) -> Path:
    """A kernelspec `name` under kernels_dir (put its parent on JUPYTER_PATH); it shadows the installed one."""
    folder = Path(kernels_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": kernel_argv(spec_file), "display_name": "Python 3 (course sandbox)", "language": "python",
            "interrupt_mode": "message", "metadata": {"debugger": False}}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return folder


def run(policy: SandboxPolicy, command: list[str], *, env: dict[str, str], timeout: float,
        stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run command in a sandbox made from policy; raises subprocess.TimeoutExpired (the sandbox dies with it)."""
    with tempfile.TemporaryDirectory(prefix="sandbox-spec-") as tmp:
        spec = policy.write(Path(tmp) / "policy.json")
        return subprocess.run(launch_argv(spec, command), input=stdin, env=env, cwd=policy.work_dir,
                              capture_output=True, text=True, timeout=timeout)


def probe(limits: Limits) -> None:
    """Raise SandboxUnavailable, saying how to enable it, unless a sandboxed process runs here (with these limits)."""
    if not bwrap_path():
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed. " + HOW_TO_ENABLE)
    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as work:
        Path(work).chmod(0o711)
        try:
            proc = run(SandboxPolicy(Path(work), limits), [sys.executable, "-c", "import os; print(os.getpid() <= 3)"],
                       env={"PATH": "/usr/bin:/bin"}, timeout=60)
        except subprocess.TimeoutExpired:
            raise SandboxUnavailable("the sandbox probe did not finish in 60 s. " + HOW_TO_ENABLE)
    if proc.returncode != 0 or proc.stdout.strip() != "True":
        detail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise SandboxUnavailable(f"bubblewrap cannot start a sandbox here ({detail}). " + HOW_TO_ENABLE)
