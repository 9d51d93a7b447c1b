"""nbgrader's Execute, made to survive a dying kernel and to tell a kernel that never started.

nbgrader awards a test cell its points when the cell shows no error. If the
kernel dies, later cells never run and so show no error either; this
preprocessor marks the crashed cell and every later code cell with an error,
so they score 0, while the cells that did run keep their results.

A kernel that does not start (or is not the grader's own interpreter) failed
before any student code ran: that is the grader's failure, never the student's.
It is recorded in `start_failure` and the exercise is not graded at all.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Unicode

from .kernel_launch import KernelLaunch, started_kernel
from .nbgrader_course import KERNEL_DIED, NOT_RUN


def error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class ResilientExecute(Execute):
    kernel_launch_file = Unicode(help="JSON: the course kernel's launch (kernel_launch.KernelLaunch)").tag(config=True)
    start_failure: ClassVar[str | None] = None  # why the course kernel did not start (read by nbgrader_job)
    _kernel_dead = False

    def create_kernel_manager(self):
        """The kernel nbgrader's process started first (kernel_launch.prestart), or one started now."""
        try:
            self.kernel_name = KernelLaunch.read(Path(self.kernel_launch_file)).kernel_name
            self.km = started_kernel(Path(self.kernel_launch_file))
        except Exception as err:  # noqa: BLE001 - any failure to start is the grader's
            raise self._did_not_start(err) from err
        argv = self.km.kernel_spec.argv if self.km.kernel_spec else []
        if argv[:1] != [sys.executable]:
            run_sync(self.km.shutdown_kernel)(now=True)
            raise self._did_not_start(f"it runs {' '.join(argv[:1]) or 'nothing'}, not {sys.executable}")
        return self.km

    async def async_start_new_kernel_client(self):
        try:
            return await super().async_start_new_kernel_client()
        except Exception as err:  # noqa: BLE001 - no kernel_info reply: it never came up
            raise self._did_not_start(err) from err

    # nbclient's synchronous wrapper (what nbconvert's preprocess calls) is bound to its own coroutine.
    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def _did_not_start(self, why) -> RuntimeError:
        detail = f"{type(why).__name__}: {why}" if isinstance(why, BaseException) else why
        type(self).start_failure = f"the grading kernel ({self.kernel_name}) did not start: {detail}"
        return RuntimeError(type(self).start_failure)

    def preprocess(self, nb, resources=None, km=None):
        self._kernel_dead = False
        try:
            return super().preprocess(nb, resources, km)
        except DeadKernelError:
            # Raised again on shutdown of a dead kernel: the cells are already marked.
            return self.nb, self.resources

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._kernel_dead:
            cell.outputs = [error_output(NOT_RUN, "the kernel died before this cell ran")]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError as err:
            self._kernel_dead = True
            cell.outputs.append(error_output(KERNEL_DIED, str(err)[:200] or "kernel died"))
            return cell, resources
