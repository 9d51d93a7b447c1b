"""Student code the grader runs outside the notebook (ex06's model load and hidden cases): a fresh process.

A StandbyPython is the same fresh process started ahead of need: it imports what its job will import while
the student's kernel still runs, then runs one job against a copy of the kernel's files made when the job
is given (so it sees what the kernel left, as fresh_python would)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import sandbox
from ..config import Course
from ..grading.untrusted import copy_regular_tree, remove_tree, temporary_folder
from ..sandbox.kernel import launch_argv
from ..sandbox.launch import UID_BASE, hand_over
from ..sandbox.policy import Limits, SandboxPolicy
from .environment import kernel_env


def fresh_python(code: str, *args: str, course: Course, timeout: int, sandboxed: bool, readable: list[Path] = (),
                 stdin: str | None = None, files: Path | None = None,
                 env: dict[str, str] | None = None, exchange: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -c code args…` in a new process with a kernel's minimal environment: in the sandbox
    (official tier), with a copy of `files` (links left out) at its own path, writable, so nothing it
    does reaches the grader or what the grader reads next. `exchange`: a folder of the grader's that the
    process may write too, at the same path (a Unix socket the grader connects to). The course gives the sandbox's
    limits and the thread count. Raises TimeoutExpired."""
    command = [sys.executable, "-c", code, *args]
    with temporary_folder(prefix="fresh-python-") as tmp:
        work = tmp / "work"
        copy_regular_tree(files, work) if files else work.mkdir()
        if not sandboxed:
            return subprocess.run(command, input=stdin, cwd=work, env=kernel_env(env or {}, tmp, course.cpu_threads),
                                  capture_output=True, text=True, timeout=timeout)
        policy = SandboxPolicy(Path(files or work), Limits.from_course(course), work_source=work,
                               readable=list(readable), writable=[Path(exchange)] if exchange else [])
        return sandbox.run(policy, command, env=kernel_env(env or {}, Path("/tmp"), course.cpu_threads), stdin=stdin,
                           timeout=timeout)


# Imports the modules named in argv (a failing one is left to the job, which then fails as a fresh process
# would), then reads one job, {"code", "args", "stdin"}, and runs it as `python -c code args…` would.
# While it waits it yields the cores to the kernel: its session's autogroup (Linux groups the CPU share by
# session, so a process's own nice would not count against the kernel's) gets nice 19, and 0 for the job.
STANDBY_RUNNER = """
import errno, importlib, io, json, os, sys, time, traceback
def autogroup_nice(value, seconds):
    deadline = time.monotonic() + seconds
    while True:  # unprivileged, Linux allows one autogroup change per 100 ms machine-wide (EAGAIN)
        try:
            with open("/proc/self/autogroup", "w") as fh:
                fh.write(str(value))
            return
        except OSError as err:
            if err.errno != errno.EAGAIN or time.monotonic() > deadline:
                return
            time.sleep(0.05)
autogroup_nice(19, 2)  # a head start only: waiting at nice 0 is merely slower
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        pass
job = json.loads(sys.stdin.readline() or "null")
if job is None:
    os._exit(0)
autogroup_nice(0, 60)  # the job must not run starved on a busy machine
sys.argv, sys.stdin = ["-c", *job["args"]], io.StringIO(job["stdin"])
try:
    exec(compile(job["code"], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    status = 0
except SystemExit as stop:  # as the interpreter exits: a number, None, or a message on stderr and 1
    status = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
    if not isinstance(stop.code, (int, type(None))):
        print(stop.code, file=sys.stderr)
except BaseException:
    traceback.print_exc()
    status = 1
sys.stdout.flush()
sys.stderr.flush()
os._exit(status)  # the job is done and said so; the teardown of torch and MLflow took about 2 s
"""


STANDBY_EXIT_S = 15  # an unused standby still importing when its exercise ends (a kernel that died at once)


class StandbyPython:
    """fresh_python(code, …, files=files, env=env) for one job, started before the job is known.

    Start it from a thread that outlives the job (the sandbox dies with the thread that started it)."""

    def __init__(self, preload: tuple[str, ...], *, course: Course, files: Path, env: dict[str, str], sandboxed: bool,
                 readable: list[Path] = (), exchange: bool = False):
        self._tmp = Path(tempfile.mkdtemp(prefix="standby-python-"))  # removed by close(), with remove_tree
        self.files, self.env, self.sandboxed = Path(files), dict(env), sandboxed
        self.work = self._tmp / "work"
        self.work.mkdir()
        # fresh_python's exchange folder, made now: the sandbox binds it as it starts
        self.exchange = self._tmp / "exchange" if exchange else None
        if self.exchange:
            self.exchange.mkdir()
        command = [sys.executable, "-c", STANDBY_RUNNER, *preload]
        if sandboxed:
            spec = SandboxPolicy(self.files, Limits.from_course(course), work_source=self.work, readable=list(readable),
                                 writable=[self.exchange] if self.exchange else []).write(self._tmp / "policy.json")
            command, cwd, home = launch_argv(spec, command), self.files, Path("/tmp")
        else:
            cwd, home = self.work, self._tmp
        self.proc = subprocess.Popen(command, cwd=cwd, env=kernel_env(self.env, home, course.cpu_threads), text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)  # an autogroup of its own (the sandbox makes one too)
        self.used = False

    def serves(self, files: Path | None, env: dict[str, str] | None) -> bool:
        """Unused, alive, and started for exactly these files and this environment."""
        return (not self.used and self.proc.poll() is None and files is not None
                and Path(files) == self.files and dict(env or {}) == self.env)

    def run(self, code: str, *args: str, timeout: int, stdin: str | None = None) -> subprocess.CompletedProcess:
        """The job, on a copy of `files` made now. Raises TimeoutExpired (the process is killed)."""
        self.used = True
        copy_regular_tree(self.files, self.work)
        if self.sandboxed and os.geteuid() == 0:  # launch.py gave the sandbox uid UID_BASE + its pid
            hand_over([str(self.work)], UID_BASE + self.proc.pid)
        job = json.dumps({"code": code, "args": list(args), "stdin": stdin or ""})
        try:
            out, err = self.proc.communicate(job + "\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.close()
            raise
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)

    def close(self) -> None:
        """An unused one gets no job and exits by itself once its imports are done, so the sandbox ends the
        way a finished job's does; only one that does not is killed (the sandbox dies with it)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=STANDBY_EXIT_S)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe and not pipe.closed:
                pipe.close()
        remove_tree(self._tmp)
