"""A standby process runs its one job exactly as a fresh process would: on a copy of the files as they are
when the job is given, in the same sandbox, and nothing it does reaches the files the grader reads next."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coursegrader.config import load_course
from coursegrader.execution.fresh_python import StandbyPython, fresh_python

COURSE = load_course()

JOB = """
import os, sys
print(open("late.txt").read(), os.environ["COURSE_X"], sys.argv[1:], sys.stdin.read(), "json" in sys.modules)
open("late.txt", "w").write("changed by the job")
"""
SANDBOXED = [False] + ([True] if sys.platform == "linux" else [])


@pytest.fixture
def files(tmp_path):
    tmp_path.chmod(0o755)
    folder = tmp_path / "kernel"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    return folder


@pytest.mark.parametrize("sandboxed", SANDBOXED)
def test_standby_runs_its_job_as_a_fresh_process_would(files, sandboxed):
    standby = StandbyPython(("json",), course=COURSE, files=files, env={"COURSE_X": "1"}, sandboxed=sandboxed)
    try:
        (files / "late.txt").write_text("written while it waited")  # the kernel is still running
        assert standby.serves(files, {"COURSE_X": "1"}) and not standby.serves(files, {"COURSE_X": "2"})
        waited = standby.run(JOB, "a", "b", timeout=60, stdin="input")
        assert not standby.serves(files, {"COURSE_X": "1"})  # one job each
    finally:
        standby.close()
    fresh = fresh_python(JOB, "a", "b", course=COURSE, timeout=60, sandboxed=sandboxed, files=files,
                         env={"COURSE_X": "1"}, stdin="input")
    assert waited.returncode == fresh.returncode == 0, waited.stderr
    assert waited.stdout == "written while it waited 1 ['a', 'b'] input True\n"
    assert fresh.stdout.replace("False", "True") == waited.stdout  # the same, but for what it imported first
    if sandboxed:
        assert (files / "late.txt").read_text() == "written while it waited"  # it wrote to its own copy


def test_a_standby_job_past_its_time_is_killed(files):
    standby = StandbyPython((), course=COURSE, files=files, env={}, sandboxed=SANDBOXED[-1])
    with pytest.raises(subprocess.TimeoutExpired):
        standby.run("while True: pass", timeout=2)
    assert standby.proc.poll() is not None


def test_an_unused_standby_is_closed_with_nothing_left(files):
    standby = StandbyPython(("json",), course=COURSE, files=files, env={}, sandboxed=SANDBOXED[-1])
    pid = standby.proc.pid
    standby.close()
    assert standby.proc.poll() is not None and not os.path.exists(f"/proc/{pid}/status")


def _innermost(pid: int) -> int:
    """The last descendant of pid (in a sandbox: bubblewrap's children down to the python it runs)."""
    while children := Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        pid = int(children[-1])
    return pid


@pytest.mark.skipif(not os.path.exists("/proc/self/autogroup"), reason="no CPU autogroups in this kernel")
@pytest.mark.parametrize("sandboxed", SANDBOXED)
def test_standbys_yield_the_cores_while_they_wait_and_not_for_their_jobs(files, sandboxed):
    """Waiting, each one's session autogroup has nice 19 (the kernel's cores first; two start at once, as ex06's
    do, and Linux rate-limits unprivileged changes); each job runs at nice 0, in an autogroup not the grader's."""
    standbys = [StandbyPython((), course=COURSE, files=files, env={}, sandboxed=sandboxed) for _ in range(2)]
    try:
        for standby in standbys:
            deadline = time.monotonic() + 30
            while "nice 19" not in (group := Path(f"/proc/{_innermost(standby.proc.pid)}/autogroup").read_text()):
                assert time.monotonic() < deadline, group
                time.sleep(0.05)
        jobs = [s.run('print(open("/proc/self/autogroup").read().strip())', timeout=60) for s in standbys]
    finally:
        for standby in standbys:
            standby.close()
    ours = Path("/proc/self/autogroup").read_text().split()[:1]  # empty in the root autogroup (CI's)
    for job in jobs:
        assert job.returncode == 0, job.stderr
        group, nice = job.stdout.split(" ", 1)
        assert [group] != ours and group.startswith("/autogroup-") and nice.strip() == "nice 0"


@pytest.mark.parametrize("ending, status, said", [
    ("raise ValueError('no model')", 1, "ValueError: no model"),
    ("sys.exit('a message')", 1, "a message"),
    ("sys.exit(3)", 3, ""),
    ("sys.exit()", 0, ""),
    ("print('last words', end='')", 0, ""),
])
def test_a_standby_job_ends_as_a_fresh_process_would(files, ending, status, said):
    """Its exit status, and what it printed last, even though it skips the interpreter's teardown."""
    code = f"import sys\nprint('before')\n{ending}\n"
    standby = StandbyPython(("json",), course=COURSE, files=files, env={}, sandboxed=False)
    try:
        waited = standby.run(code, timeout=60)
    finally:
        standby.close()
    fresh = fresh_python(code, course=COURSE, timeout=60, sandboxed=False, files=files)
    assert waited.returncode == fresh.returncode == status
    assert waited.stdout == fresh.stdout and said in waited.stderr and said in fresh.stderr
