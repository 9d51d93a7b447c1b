"""A standby process runs its one job exactly as a fresh process would: on a copy of the files as they are
when the job is given, in the same sandbox, and nothing it does reaches the files the grader reads next."""
import os
import subprocess
import sys

import pytest

from coursegrader.execution.fresh_python import StandbyPython, fresh_python

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
    standby = StandbyPython(("json",), files=files, env={"COURSE_X": "1"}, sandboxed=sandboxed)
    try:
        (files / "late.txt").write_text("written while it waited")  # the kernel is still running
        assert standby.serves(files, {"COURSE_X": "1"}) and not standby.serves(files, {"COURSE_X": "2"})
        waited = standby.run(JOB, "a", "b", timeout=60, stdin="input")
        assert not standby.serves(files, {"COURSE_X": "1"})  # one job each
    finally:
        standby.close()
    fresh = fresh_python(JOB, "a", "b", timeout=60, sandboxed=sandboxed, files=files, env={"COURSE_X": "1"},
                         stdin="input")
    assert waited.returncode == fresh.returncode == 0, waited.stderr
    assert waited.stdout == "written while it waited 1 ['a', 'b'] input True\n"
    assert fresh.stdout.replace("False", "True") == waited.stdout  # the same, but for what it imported first
    if sandboxed:
        assert (files / "late.txt").read_text() == "written while it waited"  # it wrote to its own copy


def test_a_standby_job_past_its_time_is_killed(files):
    standby = StandbyPython((), files=files, env={}, sandboxed=SANDBOXED[-1])
    with pytest.raises(subprocess.TimeoutExpired):
        standby.run("while True: pass", timeout=2)
    assert standby.proc.poll() is not None


def test_an_unused_standby_is_closed_with_nothing_left(files):
    standby = StandbyPython(("json",), files=files, env={}, sandboxed=SANDBOXED[-1])
    pid = standby.proc.pid
    standby.close()
    assert standby.proc.poll() is not None and not os.path.exists(f"/proc/{pid}/status")
