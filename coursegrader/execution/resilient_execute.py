"""nbgrader's Execute, made to survive a dying kernel.

nbgrader awards a test cell its points when the cell shows no error. If the
kernel dies, later cells never run and so show no error either; this
preprocessor marks the crashed cell and every later code cell with an error,
so they score 0, while the cells that did run keep their results.
"""
from __future__ import annotations

import os

from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Unicode

KERNEL_DIED = "DeadKernelError"
NOT_RUN = "CellNotRun"


def error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class ResilientExecute(Execute):
    kernel_cwd = Unicode("", help="the kernel's own work folder (not the folder nbgrader writes to)").tag(config=True)
    _kernel_dead = False

    async def async_start_new_kernel(self, **kwargs):
        # The kernel gets the grader's environment minus its import path.
        kwargs.setdefault("env", {k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        if self.kernel_cwd:
            kwargs["cwd"] = self.kernel_cwd
        return await super().async_start_new_kernel(**kwargs)

    # nbclient's synchronous wrapper (what nbconvert's preprocess calls) is bound to its own coroutine.
    start_new_kernel = run_sync(async_start_new_kernel)

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
