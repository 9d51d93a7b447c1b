"""How ex06's checks run their runner programs (runners/*.py) in a fresh process, and how the grader talks to the
load runner's scoring server through the folder it shares with that process (its exchange folder)."""
from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

from coursegrader.execution.forked import IN_A_FORK
from coursegrader.execution.fresh_python import fresh_python
from coursegrader.grading.untrusted import temporary_folder
from coursegrader.sandbox.policy import profile_paths

from ..evidence import Evidence

RUNNERS = Path(__file__).with_name("runners")
SERVED_ANSWER_LIMIT = 1 << 20  # bytes of the scoring server's answer the grader reads


def runner_program(name: str) -> str:
    """The program a fresh process runs for runners/<name>.py: in_a_fork (forked.IN_A_FORK), then the runner."""
    return IN_A_FORK + (RUNNERS / f"{name}.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class RunnerProcess:
    """Where a runner runs: run(program, *args, timeout=…, stdin=…) raises TimeoutExpired; exchange is a folder of
    the grader's that the process may write too (None: none)."""
    run: Callable[..., subprocess.CompletedProcess]
    exchange: Path | None


@contextmanager
def runner_process(ev: Evidence, standby: str | None = None, *, files: Path | None = None,
                   env: dict[str, str] | None = None, exchange: bool = False) -> Iterator[RunnerProcess]:
    """The standby process `standby`, started with the kernel, where it was started for these files and this
    environment (with an exchange folder, where one is asked for); else a fresh process (sandboxed where
    ev.sandboxed) on a copy of `files`, with an exchange folder of its own where asked, removed afterwards."""
    waiting = ev.processes.take(standby, files, env, exchange=exchange)
    if waiting is not None:
        yield RunnerProcess(waiting.run, waiting.exchange)
        return
    with temporary_folder(prefix="exchange-") if exchange else nullcontext() as folder:
        yield RunnerProcess(partial(fresh_python, course=ev.course, sandboxed=ev.sandboxed,
                                    readable=profile_paths(ev.profile),
                                    files=files, env=env, exchange=folder), folder)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def ask_over_unix_socket(path: Path, questions: list[str], deadline: float, stop: threading.Event) -> tuple:
    """(HTTP status, JSON answer) of the grader's own /invocations request, once the server answers /ping;
    (None, reason) when it never does before the deadline or the runner ends."""
    body = json.dumps({"dataframe_records": [{"question": q} for q in questions]}, ensure_ascii=False).encode()
    while time.monotonic() < deadline and not stop.is_set():
        try:
            ping = _UnixHTTPConnection(path, timeout=5)
            ping.request("GET", "/ping")
            ready = ping.getresponse().status == 200
            ping.close()
        except OSError:
            ready = False
        if ready:
            break
        time.sleep(0.1)
    else:
        return None, "the server did not start"
    try:
        conn = _UnixHTTPConnection(path, timeout=max(1.0, deadline - time.monotonic()))
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read(SERVED_ANSWER_LIMIT + 1)
        conn.close()
    except OSError as err:
        return None, f"the request failed: {type(err).__name__}"
    if len(raw) > SERVED_ANSWER_LIMIT:
        return None, "the answer is too large"
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, None
