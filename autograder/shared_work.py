"""What the checks of one exercise run share, made safe for checks that run side by side.

The executor (executor.py) gives each run's Evidence one `SharedLookups` and one `WaitingProcesses`; a check only
calls them. Whether checks run in threads, and when the processes were started, is the executor's business:
a check author needs nothing about threads.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from coursegrader.execution.fresh_python import StandbyPython


@dataclass
class _Entry:
    lock: threading.RLock = field(default_factory=threading.RLock)  # re-entrant: a lookup may use another
    done: bool = False
    value: Any = None
    error: Exception | None = None


class SharedLookups:
    """Values computed once per run, whichever check asks first (the evidence does not change while the checks
    read it): e.g. the MLflow runs, a downloaded table, a job's result."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Any, _Entry] = {}

    def once(self, key, compute: Callable[[], Any], *, remember: tuple[type[Exception], ...] = (),
             alone: bool = False) -> Any:
        """compute()'s value, computed at most once for `key`; an exception of a `remember` type is kept and raised
        again to every later caller. alone: a long computation that waits under a lock of its own, so that
        quick lookups asked meanwhile do not wait for it."""
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
            shared = self._entries.setdefault(None, _Entry())  # the lock quick lookups share
        with entry.lock if alone else shared.lock:
            if not entry.done:
                try:
                    entry.value = compute()
                except remember as err:
                    entry.error = err
                entry.done = True
        if entry.error is not None:
            raise entry.error
        return entry.value


    def computed(self) -> list:
        """The keys computed so far, in the order first asked for."""
        with self._lock:
            return [key for key, entry in self._entries.items() if key is not None and entry.done]


class WaitingProcesses:
    """Fresh processes the executor started with the kernel (their imports done while it ran), by name; each
    serves one job, and only for the files and environment it was started for."""

    def __init__(self, processes: dict[str, StandbyPython] | None = None) -> None:
        self._processes = dict(processes or {})
        self._lock = threading.Lock()

    def take(self, name: str | None, files: Path | None, env: dict[str, str] | None,
             exchange: bool = False) -> StandbyPython | None:
        """The process started as `name` if it still serves these files and this environment, with an exchange
        folder where one is asked for (it is then used); None: the caller starts a fresh one."""
        with self._lock:
            waiting = self._processes.get(name) if name else None
            if waiting is None or not waiting.serves(files, env) or (exchange and waiting.exchange is None):
                return None
            waiting.used = True
            return waiting

    def close(self) -> None:
        for process in self._processes.values():
            process.close()
