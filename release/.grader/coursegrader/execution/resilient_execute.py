"""nbgrader's Execute, made to survive a dying kernel and to tell a kernel that never started.

nbgrader awards a test cell its points when the cell shows no error. If the
kernel dies, later cells never run and so show no error either; this
preprocessor marks the crashed cell and every later code cell with an error,
so they score 0, while the cells that did run keep their results.

What a cell shows is bounded in bytes as it arrives (`output_kb`, course.toml [outputs] cell_output_kb): past
the limit its streams and displays are dropped, with one note saying so, so that neither this process's
memory nor the feedback page grows with what the kernel prints. Claims (`report()`) have a budget of their
own, so a long print never costs evidence; an error is always kept, its text cut to the limit.

A kernel that does not start (or is not the grader's own interpreter) failed
before any student code ran: that is the grader's failure, never the student's.
It is written as the job's protocol.ChildResult (GRADER_UNAVAILABLE, in `result_file`) and the exercise is not
graded at all.
"""
from __future__ import annotations

import sys
from pathlib import Path

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

from ..notebook import CLAIM_MIMETYPE
from ..protocol import ChildResult, ExitCode
from .kernel_launch import KernelLaunch, started_kernel
from .nbgrader_course import KERNEL_DIED, NOT_RUN

SHOWN, CLAIMS = "shown", "claims"
LIMIT_NOTE = "\n… 出力が上限（{kb} KB）を超えたため、以降を省略しました / output over {kb} KB: the rest left out\n"


def _size(content: dict) -> int:
    """About how many bytes an output message's content holds (its texts and data, as received)."""
    total = len(content.get("text", "") or "")
    for value in (content.get("data") or {}).values():
        total += len(value) if isinstance(value, str) else len(repr(value))
    return total


def _cut_error(content: dict, limit: int) -> None:
    """An error's name, value and traceback, each cut to the limit (the grader reads the name and value)."""
    content["ename"] = str(content.get("ename", ""))[:200]
    content["evalue"] = str(content.get("evalue", ""))[:limit]
    lines = [str(line)[:limit] for line in content.get("traceback", [])[:200]]
    while len(lines) > 1 and sum(map(len, lines)) > limit:
        lines.pop(len(lines) // 2)
    content["traceback"] = lines


def error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class ResilientExecute(Execute):
    kernel_launch_file = Unicode(help="JSON: the course kernel's launch (kernel_launch.KernelLaunch)").tag(config=True)
    output_kb = Integer(64, help="bytes (KiB) of streams and displays kept per cell; as many again for claims").tag(
        config=True)
    result_file = Unicode(help="where to write why the course kernel did not start (a protocol.ChildResult)").tag(
        config=True)
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
        reason = f"the grading kernel ({self.kernel_name}) did not start: {detail}"
        if self.result_file:
            ChildResult(ExitCode.GRADER_UNAVAILABLE, reason).write(Path(self.result_file))
        return RuntimeError(reason)

    def preprocess(self, nb, resources=None, km=None):
        self._kernel_dead = False
        self._output_bytes = {}
        try:
            return super().preprocess(nb, resources, km)
        except DeadKernelError:
            # Raised again on shutdown of a dead kernel: the cells are already marked.
            return self.nb, self.resources

    def output(self, outs, msg, display_id, cell_index):
        """nbclient's output handling, within the cell's byte budget."""
        content, limit = msg.get("content") or {}, self.output_kb << 10
        if msg.get("msg_type") == "error":
            _cut_error(content, limit)
            return super().output(outs, msg, display_id, cell_index)
        budget = CLAIMS if CLAIM_MIMETYPE in (content.get("data") or {}) else SHOWN
        used = self._output_bytes.setdefault((cell_index, budget), 0)
        size = _size(content)
        if used + size > limit:
            if (cell_index, "noted") not in self._output_bytes:
                self._output_bytes[(cell_index, "noted")] = 0
                outs.append(NotebookNode(output_type="stream", name="stderr",
                                         text=LIMIT_NOTE.format(kb=self.output_kb)))
            return None
        self._output_bytes[(cell_index, budget)] = used + size
        return super().output(outs, msg, display_id, cell_index)

    def _update_display_id(self, display_id, msg):
        """update_display (a progress bar) replaces an output in place: no larger than the budget either."""
        if _size(msg.get("content") or {}) > self.output_kb << 10:
            return None
        return super()._update_display_id(display_id, msg)

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
        except CellTimeoutError:
            # Past its time and interrupted, the cell did not stop (it ignores SIGINT, or sits in a long C call):
            # the kernel is stopped, the cell timed out, and the cells after it do not run.
            self._kernel_dead = True
            try:
                run_sync(self.km.shutdown_kernel)(now=True)
            except Exception:  # noqa: BLE001 - it is being killed either way; nbclient's cleanup tries again
                pass
            cell.outputs.append(error_output("CellTimeoutError", f"the cell ran past {self.timeout} s and did not stop "
                                                                 "when interrupted: the kernel was stopped"))
            return cell, resources
