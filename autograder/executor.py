"""The official tier's verifier: runs an exercise's evidence checks for one run, and everything around them.

Checks (checks/exNN.py) are functions of an Evidence. Everything that makes them fast lives here, in one place:
- as the kernel starts, the fresh processes the checks will give student code to (`@stands_by`), started from the
  grading thread (a sandbox dies with the thread that started it) and importing while the kernel runs;
- meanwhile, what the checks compute the same for every student (`@warms_up`), in a thread at nice 19;
- once the kernel ran, the checks, those that mostly wait on a fresh process (`@check(waits=True)`) in threads
  beside the others; what they share goes through the Evidence's SharedLookups and WaitingProcesses.
"""
from __future__ import annotations

import os
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from coursegrader.execution.nbgrader_course import AutogradeResult
from coursegrader.fmapi.log import LogEntry
from coursegrader.grading.tier import RunSetup
from coursegrader.grading.verdict import Verdict
from coursegrader.notebook import code_literals, inputs_cell_id, inputs_of
from coursegrader.precision import machine_precision

from . import checks
from .evidence import Evidence, claims_in, fail
from .shared_work import SharedLookups, WaitingProcesses


class CheckExecutor:
    """One run's evidence checking (a coursegrader.grading.tier.Verifier)."""

    def __init__(self, setup: RunSetup):
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # the grader's downloads: no bars
        self.setup = setup
        self.processes = WaitingProcesses()
        self._warm_up: threading.Thread | None = None

    def start(self, kernel_dir: Path) -> None:
        """As nbgrader starts the kernel: the standby processes, then the warm-up in a thread of its own."""
        ex = self.setup.exercise.id
        try:
            self.processes = WaitingProcesses(checks.standby(ex, kernel_dir, self.setup))
        except Exception:  # noqa: BLE001 - only a head start: each check then starts its own process
            traceback.print_exc()
        self._warm_up = threading.Thread(target=_at_lowest_priority, name="check-warm-up", daemon=True,
                                         args=(checks.warm_up, ex, inputs_of(self.setup.source_nb, ex),
                                               self.setup.profile,
                                               machine_precision(self.setup.course.bf16_min_capability)))
        self._warm_up.start()

    def verify(self, log: list[LogEntry], autograded: AutogradeResult) -> dict[str, Verdict]:
        """Every evidence check course.toml names for this exercise's cells, each run once."""
        self._join_warm_up()
        evidence = self.evidence(log, autograded)
        ex = self.setup.exercise.id
        names = sorted({n for cell in self.setup.exercise.cells for n in cell.evidence})
        waiting = [n for n in names if checks.waits(ex, n)]
        with ThreadPoolExecutor(max_workers=max(1, len(waiting)), thread_name_prefix="check") as pool:
            futures = {name: pool.submit(run_check, ex, name, evidence) for name in waiting}
            verdicts = {name: run_check(ex, name, evidence) for name in names if name not in futures}
            verdicts.update((name, future.result()) for name, future in futures.items())
        return {name: verdicts[name] for name in names}

    def evidence(self, log: list[LogEntry], autograded: AutogradeResult) -> Evidence:
        """What the checks may read: the request log and the instructor's notebook (trusted), the kernel's
        claims and saved files (untrusted), as this run saw them."""
        setup = self.setup
        source_literals = code_literals(setup.source_nb)
        return Evidence(
            log=log,
            inputs=source_literals.get(inputs_cell_id(setup.exercise.id), {}),
            source_literals=source_literals,
            claims=claims_in(autograded.notebook),
            course=setup.course,
            profile=setup.profile,
            work_dir=autograded.work_dir,
            errors=autograded.errors_by_cell(),
            adapter_dir=setup.adapter_dir,
            notebook=autograded.notebook,
            sandboxed=setup.sandboxed,
            shared=SharedLookups(),
            processes=self.processes,
        )

    def close(self) -> None:
        self._join_warm_up()
        self.processes.close()

    def _join_warm_up(self) -> None:
        if self._warm_up:
            self._warm_up.join()
            self._warm_up = None


def run_check(exercise_id: str, name: str, evidence: Evidence) -> Verdict:
    """One check's verdict; a check that raises fails (malformed evidence), never the grader."""
    try:
        return checks.get_check(exercise_id, name)(evidence)
    except Exception as err:  # noqa: BLE001 - malformed evidence fails the check, never the grader
        return fail("check_crashed", error_type=type(err).__name__, error=str(err))


def _at_lowest_priority(work, *args) -> None:
    """work(*args) in this thread at nice 19: nbgrader's process, in the grader's session, loads meanwhile and must
    not wait for it (the kernel, in a session of its own, keeps its core anyway). Only a head start: a failure is
    printed, and the checks do the work themselves."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # this thread only, on Linux
    except OSError:
        pass
    try:
        work(*args)
    except Exception:  # noqa: BLE001 - only a head start
        traceback.print_exc()
