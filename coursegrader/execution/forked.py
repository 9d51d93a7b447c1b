"""Student code in a grader's fresh process, kept off that process's report.

A fresh process that runs student code for a check (ex06's criteria, promotion and load runners) reports on
its stdout. Student code in the same process could print a report of its own and exit, so the runner never
runs student code itself: it prepends `IN_A_FORK` and calls `in_a_fork(work, *args)`. `work` runs in a
forked child whose stdout is /dev/null and whose other inherited descriptors are closed; the runner is made
non-dumpable first, so the child cannot reach it through /proc/<pid>/fd or ptrace. The child's answer comes
back as JSON over a pipe of its own, and the grader checks its shape (one verdict per case); anything the
student's code writes elsewhere is never read. The runner prints one JSON line, its report, at the end.
"""

ANSWER_LIMIT = 1 << 20  # bytes of a child's answer read back; a longer answer is no answer

IN_A_FORK = f"""
import ctypes as _ctypes, json as _json, os as _os, sys as _sys, traceback as _traceback

def in_a_fork(work, *args):
    \"\"\"(exit status, JSON answer or None) of work(*args) in a child that cannot write this process's stdout.\"\"\"
    _ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no /proc/<pid>/fd, no ptrace
    read, write = _os.pipe()
    _sys.stdout.flush()
    _sys.stderr.flush()
    pid = _os.fork()
    if pid == 0:
        status = 1
        try:
            null = _os.open(_os.devnull, _os.O_RDWR)
            _os.dup2(null, 0)
            _os.dup2(null, 1)
            _os.closerange(3, write)
            _os.closerange(write + 1, 1 << 16)
            _sys.stdin = _sys.stdout = open(_os.devnull, "r+")
            answer = _json.dumps(work(*args)).encode()
            while answer:
                answer = answer[_os.write(write, answer):]
            status = 0
        except BaseException:
            _traceback.print_exc()
        finally:
            _os._exit(status)
    _os.close(write)
    chunks, size = [], 0
    while chunk := _os.read(read, 65536):
        size += len(chunk)
        if size <= {ANSWER_LIMIT}:
            chunks.append(chunk)
    _os.close(read)
    status = _os.waitstatus_to_exitcode(_os.waitpid(pid, 0)[1])
    try:
        answer = _json.loads(b"".join(chunks)) if status == 0 and size <= {ANSWER_LIMIT} else None
    except ValueError:
        answer = None
    return status, answer
"""


def report_line(stdout: str) -> dict | None:
    """The runner's report: the last line of its stdout, a JSON object (None if there is none)."""
    import json

    lines = stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return report if isinstance(report, dict) else None
