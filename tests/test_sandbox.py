"""Official grading cannot be forged: every adversarial submission (fixtures/submissions/adversarial.toml)
scores what it earned, names its problem, leaves the checkout byte-for-byte unchanged (also 20 s
later), leaves no process behind (of its own: other gradings may run beside it), and puts no hidden-test line and no live student markup in any output."""
import ctypes
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from coursegrader.config import RELEASE_DIR, REPO_ROOT, SOURCE_DIR, SUBMISSIONS_DIR, load_course
from coursegrader.execution.environment import kernel_env
from coursegrader.execution.nbgrader_course import GraderUnavailable, KernelWorkspace, NbgraderCourse
from autograder.samples import build_sample, load_catalog
from coursegrader.sandbox import Limits, probe
from coursegrader.sandbox.launch import UID_BASE
from test_release import leaks, secret_lines
from commands import autograder
from expectations import assert_graded_as_expected

COURSE = load_course()
LIMITS = Limits.from_course(COURSE)
ADVERSARIAL = load_catalog(COURSE, SUBMISSIONS_DIR / "adversarial.toml")
DAEMON_MARKER = "sandbox-daemon-marker"
# A student's markup that would run in a TA's browser: a script element or an event handler attribute.
LIVE_MARKUP = re.compile(r"<script[^>]*>[^<]*pwned|<img[^>]*onerror", re.IGNORECASE)
NETWORK_PROBE_PORT = 47619  # the port network_elsewhere tries: a service beside the grader
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="bubblewrap sandbox: Linux only")


def checkout_fingerprint() -> dict[str, str]:
    """sha256 of every file git tracks or would track (ignored build outputs aside), plus git status."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    prints = {}
    for name in filter(None, listed):
        path = REPO_ROOT / name
        if path.is_file() and not path.is_symlink():
            prints[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    prints["git status"] = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT,
                                          capture_output=True, text=True, check=True).stdout
    return prints


PR_SET_CHILD_SUBREAPER = 36  # prctl(2): orphans below this process are re-parented to it, not to init


def _processes() -> dict[int, tuple[int, int, str, str]]:
    """pid -> (parent pid, uid, state, command line) of every process on the machine."""
    table = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            uid = os.stat(f"/proc/{pid}").st_uid
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        table[int(pid)] = (int(ppid), uid, state, cmdline)
    return table


def _below_us(table: dict[int, tuple[int, int, str, str]]) -> list[int]:
    ours, found = {os.getpid()}, True
    while found:
        found = {pid for pid, (ppid, *_) in table.items() if ppid in ours and pid not in ours}
        ours |= found
    return sorted(ours - {os.getpid()})


def sandbox_processes() -> list[str]:
    """Processes this session's sandboxes started that are still alive: a private sandbox uid, or the daemon's
    marker. Only ours (the `before` fixture makes this process their subreaper, so an escaped orphan still
    counts): gradings beside this test run are not its business. Our sandbox orphans that already exited are
    reaped first (none is a Popen child of ours: those are root's)."""
    def sandboxed(uid, cmdline):
        return DAEMON_MARKER in cmdline or (os.geteuid() == 0 and uid >= UID_BASE)

    table = _processes()
    for pid in _below_us(table):
        ppid, uid, state, cmdline = table[pid]
        if state == "Z" and ppid == os.getpid() and sandboxed(uid, cmdline):
            os.waitpid(pid, os.WNOHANG)
    table = _processes()
    return [f"{pid} uid={table[pid][1]} {table[pid][3][:120]}" for pid in _below_us(table)
            if sandboxed(table[pid][1], table[pid][3])]


def sandbox_processes_after_teardown(seconds: float = 15) -> list[str]:
    """sandbox_processes() once a sandbox that just ended had time to take down its PID namespace (a fork bomb's
    hundreds of processes take a moment on a busy machine); anything still there after `seconds` stays listed."""
    deadline = time.monotonic() + seconds
    while (left := sandbox_processes()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture(scope="module")
def before():
    probe(LIMITS)  # these tests are about the sandbox: without it they must fail, not skip
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, os.strerror(ctypes.get_errno())
    yield checkout_fingerprint()
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


class Listener:
    """A TCP service on the grader's loopback that no sandbox may reach."""

    def __init__(self, port: int):
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


@pytest.fixture(scope="module")
def listener():
    server = Listener(NETWORK_PROBE_PORT)
    yield server
    server.sock.close()


@pytest.fixture(scope="module")
def adversarial(before, listener, gradings):
    """name -> (sample, grade, out_dir, finished_at): the session's official grading of an adversarial sample
    (conftest's adversarial_job). The first ask grades all those the collected tests name, two at a time (those in
    conftest's ALONE after them, each alone when asked for), once the `before` snapshot is taken and the listener
    is listening."""
    return gradings.adversarial


def output_text(out_dir: Path, suffixes=(".json", ".md", ".html", ".jsonl", ".txt")) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(out_dir.rglob("*"))
                     if p.is_file() and not p.is_symlink() and p.suffix in suffixes)


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversary_gains_nothing(adversarial, before, name):
    sample, grade, out, _ = adversarial(name)
    assert_graded_as_expected(sample, grade)
    assert checkout_fingerprint() == before, "the checkout changed"
    assert sandbox_processes_after_teardown() == []
    text = output_text(out)
    for ex in sample.exercises:
        hidden = [line for line in secret_lines(ex, regions=("HIDDEN TESTS",)) if leaks(line, text)]
        assert hidden == [], f"hidden-test lines in the outputs: {hidden[:3]}"
    assert not LIVE_MARKUP.search(output_text(out, (".md", ".html"))), "live student markup in a page"
    assert json.loads((out / "grade.json").read_text(encoding="utf-8"))["sandbox"] is True


def test_link_submissions_are_refused_without_reading_them(adversarial):
    _, grade, out, _ = adversarial("link_notebook_fifo")  # reading a FIFO would hang the grader
    assert grade.runs[0].stopped and "FIFO" in grade.runs[0].problems[0].message_en
    assert (out / "grade.json").is_file()


def test_what_a_cell_prints_is_bounded_in_bytes(adversarial):
    """80 MB printed, displayed and raised in one cell (the red team's 300 MB page came from three long lines):
    the graded outputs stop at cell_output_kb, with a note, and every file kept is bounded."""
    _, _, out, _ = adversarial("bomb_output")
    limits = load_course().limits
    page = (out / "ex01" / "feedback.html").read_text(encoding="utf-8")
    assert len(page.encode()) < limits.feedback_html_bytes and f"出力が上限（{limits.cell_output_kb} KB）" in page
    sizes = {p.relative_to(out).as_posix(): p.stat().st_size for p in out.rglob("*") if p.is_file()}
    assert sum(sizes.values()) < 4 * limits.cell_output_bytes + (1 << 20), sizes


def test_the_report_carries_nothing_the_kernel_made_after_the_hidden_tests_began(adversarial):
    """A hook saw every cell run, hidden tests included, and raised them zlib-compressed in base64 from a later
    cell: grade.md (what a student may see) withholds that exception's text; feedback.html (for TAs) may show it."""
    import base64
    import zlib

    from coursegrader.grading.pipeline import WITHHELD

    _, grade, out, _ = adversarial("hook_encodes_hidden_tests")
    report = (out / "grade.md").read_text(encoding="utf-8") + (out / "grade.json").read_text(encoding="utf-8")
    assert WITHHELD in report
    decoded = ""
    for blob in re.findall(r"[A-Za-z0-9+/=]{40,}", report + (out / "ex01" / "feedback.html").read_text(encoding="utf-8")):
        try:
            decoded += zlib.decompress(base64.b64decode(blob)).decode("utf-8", "replace")
        except ValueError:
            continue
    hidden = [line for line in secret_lines("ex01", regions=("HIDDEN TESTS",))]
    assert [line for line in hidden if leaks(line, decoded)], "the hook did not capture the hidden tests: no test"
    message = next(c.message for c in grade.runs[0].checks if c.id == "ex01_usage")
    assert WITHHELD in message and not re.search(r"[A-Za-z0-9+/=]{40,}", message)


def test_html_outputs_are_inert(adversarial):
    _, grade, out, _ = adversarial("html_in_outputs")
    page = (out / "ex01" / "feedback.html").read_text(encoding="utf-8")
    assert 'http-equiv="Content-Security-Policy"' in page and "script-src" not in page.split("Content-Security-Policy")[1][:200]
    assert "application/javascript" not in page and not LIVE_MARKUP.search(page) and "&lt;script&gt;" in page
    assert "&lt;script&gt;alert" in (out / "grade.md").read_text(encoding="utf-8")


def test_the_sandbox_is_what_the_readme_says(adversarial):
    _, grade, _, _ = adversarial("sandbox_facts")
    facts = next(c for c in grade.runs[0].autograded.notebook.cells if "sandbox facts hold" in c.source)
    assert [o for o in facts.outputs if o.output_type == "error"] == []
    assert "sandbox facts hold" in "".join(o.get("text", "") for o in facts.outputs)


def test_network_reaches_nothing_but_the_fixture_server(adversarial, listener):
    adversarial("network_elsewhere")
    assert listener.connections == 0


def test_nothing_happens_later(adversarial, before):
    """The daemon sample's sleeper would write 20 s after grading; nothing may have survived to do it."""
    *_, finished = adversarial("escape_setsid_daemon")
    time.sleep(max(0.0, finished + 21 - time.monotonic()))
    assert sandbox_processes() == []
    assert checkout_fingerprint() == before


def _cli(*args, env):
    return autograder(*args, env=env, timeout=600)


def test_official_tier_refuses_without_a_sandbox(tmp_path):
    submission = build_sample(load_catalog(COURSE)["solution"], tmp_path / "sub", COURSE)
    proc = _cli("grade", str(submission), "--exercise", "ex01", "--out", str(tmp_path / "out"),
                env={"PATH": str(tmp_path), "HOME": str(tmp_path)})  # no bwrap on PATH
    assert proc.returncode == 1
    assert "grader_error" in proc.stderr and "bubblewrap" in proc.stderr and "apparmor" in proc.stderr
    assert not (tmp_path / "out" / "grade.json").exists()


@pytest.mark.parametrize("command", [["demo", "--sample", "solution"], ["grade-all", "{subs}", "--out", "{out}"],
                                     ["mutate", "--exercise", "ex01", "--sample", "1"]], ids=lambda c: c[0])
def test_commands_that_grade_many_say_why_they_cannot_and_exit_cleanly(tmp_path, command):
    """Without bubblewrap on PATH (a fresh machine), nothing is graded, the reason is printed once, no traceback."""
    (tmp_path / "subs" / "alice").mkdir(parents=True)
    args = [a.format(subs=tmp_path / "subs", out=tmp_path / "out") for a in command]
    if command[0] in ("demo", "mutate"):
        args += ["--out", str(tmp_path / "out")]
    proc = _cli(*args, env={"PATH": str(tmp_path), "HOME": str(tmp_path)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.count("grader_error: nothing was graded.") == 1 and "bubblewrap" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not list((tmp_path / "out").rglob("grade.json"))


def test_kernel_runs_the_graders_interpreter_whatever_is_on_path(tmp_path):
    """<venv>/bin/python -m autograder grade, the environment's bin not on PATH: still the grader's own kernel."""
    submission = build_sample(load_catalog(COURSE)["solution"], tmp_path / "sub", COURSE)
    for extra in ([], ["--no-sandbox"]):
        out = tmp_path / f"out{len(extra)}"
        proc = _cli("grade", str(submission), "--exercise", "ex01", "--out", str(out), *extra,
                    env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert proc.returncode == 0, proc.stderr[-2000:]
        grade = json.loads((out / "grade.json").read_text(encoding="utf-8"))
        assert grade["score"] == grade["max_score"] == 10
        assert grade["sandbox"] is (not extra)
    assert "サンドボックスなし" in (tmp_path / "out1" / "grade.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("kernel_argv", [
    ["/bin/false", "-f", "{connection_file}"],  # not the grader's interpreter
    [sys.executable, "-c", "raise SystemExit(1)", "{connection_file}"],  # exits before its kernel_info reply
], ids=["other_interpreter", "exits_at_once"])
def test_a_kernel_that_cannot_start_stops_grading(tmp_path, kernel_argv):
    """A broken course kernel fails before any student code runs: the grader's failure, never a 0."""
    exercise = load_course().exercises["ex01"]
    kernel = KernelWorkspace(tmp_path / "run", sandboxed=False, readable=[], limits=LIMITS)
    env = {**kernel_env({}, kernel.home, COURSE.cpu_threads), **kernel.install_kernelspec(load_course().kernel)}
    spec_file = tmp_path / "run" / "jupyter" / "kernels" / load_course().kernel / "kernel.json"
    spec_file.write_text(json.dumps({**json.loads(spec_file.read_text()), "argv": kernel_argv}))
    course = NbgraderCourse(tmp_path / "course", exercise,
                            nbformat.read(SOURCE_DIR / "ex01" / exercise.notebook, as_version=4), 30, kernel, load_course())
    submitted = nbformat.read(RELEASE_DIR / "ex01" / exercise.notebook, as_version=4)
    with pytest.raises(GraderUnavailable, match="did not start"):
        course.autograde(submitted, env, timeout_s=300, feedback=False)

FORGE_GRADED = """import os, stat, time
forged = []
for fd in range(3, 1024):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, b"graded")
            forged.append(fd)
    except OSError:
        pass
print("forged", forged)
time.sleep(3)  # the grader would read the grades now, before nbgrader wrote them
"""


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandbox", "no_sandbox"])
def test_a_kernel_cannot_say_the_grades_are_written(tmp_path, sandboxed):
    """Only nbgrader's process holds the pipe that says its grades are written (the grader then verifies while
    the feedback renders): a cell writing "graded" to every pipe it holds changes nothing."""
    exercise = load_course().exercises["ex01"]
    kernel = KernelWorkspace(tmp_path / "run", sandboxed=sandboxed, readable=[], limits=LIMITS)
    env = {**kernel_env({}, kernel.home, COURSE.cpu_threads), **kernel.install_kernelspec(load_course().kernel)}
    course = NbgraderCourse(tmp_path / "course", exercise,
                            nbformat.read(SOURCE_DIR / "ex01" / exercise.notebook, as_version=4), 30, kernel, load_course())
    submitted = nbformat.read(RELEASE_DIR / "ex01" / exercise.notebook, as_version=4)
    submitted.cells.insert(0, nbformat.v4.new_code_cell(FORGE_GRADED))
    result = course.autograde(submitted, env, timeout_s=300, feedback=True)
    try:
        assert "forged" in "".join(o.get("text", "") for o in result.notebook.cells[0].outputs)
        assert set(result.cells) == {c.grade_id for c in exercise.cells}  # nbgrader's whole result, read after it
        assert not any(c.passed for c in result.cells.values())  # the blank: every test failed
        assert result.feedback_html is not None and "ex01" in result.feedback_html.read_text(encoding="utf-8")
    finally:
        result.close()
    assert result.feedback.proc.returncode is not None  # nbgrader's process is gone once the grading ends


def test_a_token_saved_in_hf_home_is_empty_inside_the_sandbox(tmp_path, monkeypatch):
    """HF_HOME (the prefetched models) is readable in every sandbox; a token `hf auth login` saved there is not."""
    from coursegrader import sandbox
    from coursegrader.sandbox.policy import SandboxPolicy

    hf_home = tmp_path / "hf"
    (hf_home / "hub").mkdir(parents=True)
    (hf_home / "token").write_text("hf_instructors_token")
    (hf_home / "token").chmod(0o644)  # even a token left readable by all
    monkeypatch.setenv("HF_HOME", str(hf_home))
    work = tmp_path / "work"
    work.mkdir()
    probe_code = "import os, sys; print(repr(open(sys.argv[1]).read()), os.path.isdir(sys.argv[2]))"
    proc = sandbox.run(SandboxPolicy(work, LIMITS), [sys.executable, "-c", probe_code, str(hf_home / "token"), str(hf_home / "hub")],
                       env=kernel_env({}, Path("/tmp"), COURSE.cpu_threads), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["''", "True"]
