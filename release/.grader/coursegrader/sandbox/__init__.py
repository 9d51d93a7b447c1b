"""The sandbox every piece of student code runs in during official grading (bubblewrap).

  policy.py  what one sandbox sees and may use, and the bubblewrap arguments for it
  launch.py  the trusted step before bubblewrap (stdlib only): limits, a private uid, ownership
  inside.py  the first process inside (stdlib only): drops root, forwards the fixture port, runs the command
  kernel.py  the kernelspec that starts ipykernel through the sandbox, `run` for other processes, the probe
"""
from .kernel import SandboxUnavailable, kernel_argv, probe, run, write_kernelspec
from .policy import Limits, SandboxPolicy

__all__ = ["Limits", "SandboxPolicy", "SandboxUnavailable", "kernel_argv", "probe", "run", "write_kernelspec"]
