"""The course kernel's launch: written by the grader, started by nbgrader's process as its first act.

The kernel then boots (in the sandbox, when the kernelspec says so) and imports the modules the notebook
will import while nbgrader imports itself and prepares the exercise; ResilientExecute takes the started
kernel instead of starting its own. This module imports only jupyter_client, so the start comes before
nbgrader's second of imports.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

LAUNCH_FILE = "kernel_launch.json"
HISTORY_IN_MEMORY = "--HistoryManager.hist_file=:memory:"  # what nbclient gives an ipykernel
# Registered before anything else, so it is the last exit handler to run: once the handlers registered after the
# kernel started have run (MLflow ends its runs, logging flushes), the process ends without the interpreter's
# module teardown (1-2 s with torch loaded, which nbclient's shutdown waited for). Binds no name.
EXIT_AFTER_HANDLERS = ("if __import__('atexit').register(lambda: __import__('sys').__stdout__.flush()"
                       " or __import__('sys').__stderr__.flush() or __import__('os')._exit(0)): pass")


@dataclass(frozen=True)
class KernelLaunch:
    kernel_name: str
    cwd: str  # the kernel's own work folder (not the folder nbgrader writes to)
    env: dict[str, str]  # the kernel's whole environment (never nbgrader's own)
    ipc_prefix: str  # its sockets are files <ipc_prefix>-<port>
    connection_file: str
    preload: tuple[str, ...] = ()  # modules imported before it is ready (what the release notebook imports)

    def arguments(self) -> list[str]:
        """ipykernel's: history in memory, as nbclient gives it, the exit without teardown, and each preload
        imported into sys.modules only (an `if` statement binds no name, not even `_`); one that fails to
        import is left to the cell."""
        lines = [EXIT_AFTER_HANDLERS, *(f"if __import__({m!r}): pass" for m in self.preload)]
        return [HISTORY_IN_MEMORY, *(f"--IPKernelApp.exec_lines={line}" for line in lines)]

    def write(self, path: Path) -> Path:
        Path(path).write_text(json.dumps(asdict(self)), encoding="utf-8")
        return Path(path)

    @classmethod
    def read(cls, path: Path) -> "KernelLaunch":
        fields = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(**{**fields, "preload": tuple(fields.get("preload", ()))})

    def start(self):
        """An AsyncKernelManager whose kernel is launched (still booting, not yet ready)."""
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        km = AsyncKernelManager(kernel_name=self.kernel_name, transport="ipc", ip=self.ipc_prefix,
                                connection_file=self.connection_file)
        run_sync(km.start_kernel)(cwd=self.cwd, env=self.env, extra_arguments=self.arguments())
        return km


_started: dict[Path, object] = {}  # launch file -> its kernel manager, or the exception its start raised


def prestart(path: Path) -> None:
    """Start the kernel of this launch file now; started_kernel(path) hands it over later."""
    try:
        _started[Path(path)] = KernelLaunch.read(path).start()
    except Exception as err:  # noqa: BLE001 - said where the kernel is taken, as any failure to start
        _started[Path(path)] = err


def started_kernel(path: Path):
    """The kernel prestart started (raising what its start raised), or one started now."""
    started = _started.pop(Path(path), None)
    if isinstance(started, BaseException):
        raise started
    return started if started is not None else KernelLaunch.read(path).start()


def shutdown_unclaimed() -> None:
    """Stop a prestarted kernel nobody took (the exercise stopped before its execution)."""
    from jupyter_core.utils import run_sync

    for path in list(_started):
        km = _started.pop(path)
        if not isinstance(km, BaseException):
            run_sync(km.shutdown_kernel)(now=True)
