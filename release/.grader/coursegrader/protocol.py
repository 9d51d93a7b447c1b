"""How the grader's processes talk to the processes they start: exit codes, and JSON files in their place of a log.

- `ExitCode`: every exit status a grader process ends with, in one place.
- `NbgraderJob`: the request the grader writes for nbgrader's process (execution/nbgrader_job.py), which reads it
  from the one argument it is given. The job says "graded" on a pipe once it wrote `JobGrades` (so the grader
  verifies while the feedback renders), and writes a `ChildResult` as it ends.
- `ChildResult`: why a child ended the way it did, written by the child, read by the parent: nbgrader's process
  for the grader, `autograder grade` for grade-all (`--result-file`). A parent reads no log and no stdout marker.

Read results are bounded in size and checked in type: a child whose result is missing or malformed is treated
as one that said nothing (its exit status alone stands).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from enum import IntEnum
from pathlib import Path

RESULT_LIMIT = 1 << 16  # bytes of a result file a parent reads
REASON_LIMIT = 500  # characters of a reason kept


class ExitCode(IntEnum):
    OK = 0
    GRADER_ERROR = 1  # the grader's own error, or it cannot grade here (a ChildResult says which and why)
    USAGE = 2  # argparse: a mistake in the command
    AUTOGRADE_FAILED = 3  # nbgrader's autograde reported a failure
    GRADER_UNAVAILABLE = 4  # nothing of the student's ran: nbgrader could not prepare or the kernel did not start


@dataclass(frozen=True)
class ChildResult:
    """What a child process says of how it ended."""
    exit: ExitCode
    reason: str = ""

    def write(self, path: Path) -> None:
        _write_json(Path(path), {"exit": self.exit.name, "reason": self.reason[:REASON_LIMIT]})

    @classmethod
    def read(cls, path: Path) -> "ChildResult | None":
        """The result, or None where there is none (the child was killed) or it is not one."""
        data = _read_json(Path(path))
        if not isinstance(data, dict) or data.get("exit") not in ExitCode.__members__:
            return None
        reason = data.get("reason")
        return cls(ExitCode[data["exit"]], reason[:REASON_LIMIT] if isinstance(reason, str) else "")


@dataclass(frozen=True)
class NbgraderJob:
    """One exercise's nbgrader work, as the grader asks nbgrader's process for it (see execution/nbgrader_job.py)."""
    root: str  # the throwaway course folder (the job's working folder)
    exercise_id: str
    student: str
    feedback: bool  # also render the feedback HTML
    cache_dir: str  # the grader's cache (generated gradebooks), never a kernel's
    graded_fd: int  # the pipe's write end the job says GRADED on

    MODULE = "coursegrader.execution.nbgrader_job"
    REQUEST_FILE, RESULT_FILE, GRADES_FILE, LOG_FILE = "job.json", "job_result.json", "grades.json", "job.log"
    GRADED = b"graded"  # said on graded_fd once GRADES_FILE is written

    def write(self) -> list[str]:
        """The request written into root; the command that runs it."""
        path = Path(self.root) / self.REQUEST_FILE
        _write_json(path, asdict(self))
        return [sys.executable, "-m", self.MODULE, str(path)]

    @classmethod
    def read(cls, path: str) -> "NbgraderJob":
        return cls(**json.loads(Path(path).read_text(encoding="utf-8")))

    def path(self, name: str) -> Path:
        return Path(self.root) / name


@dataclass(frozen=True)
class JobGrades:
    """The autograded cells' scores as nbgrader's gradebook holds them: grade_id -> (auto_score, max_score)."""
    scores: dict[str, tuple[float, float]]

    def write(self, path: Path) -> None:
        _write_json(Path(path), {gid: list(pair) for gid, pair in self.scores.items()})

    @classmethod
    def read(cls, path: Path) -> "JobGrades":
        """Raises ValueError where the file is not what the job writes (OSError where it is missing)."""
        data = _read_json(Path(path), strict=True)
        if not isinstance(data, dict) or not all(
                isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)
                for v in data.values()):
            raise ValueError("not a grades file")
        return cls({str(gid): (float(v[0]), float(v[1])) for gid, v in data.items()})


def _write_json(path: Path, data) -> None:
    """Atomically: a reader sees the whole file or none."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(partial, path)


def _read_json(path: Path, strict: bool = False):
    """The file's JSON; None (strict: the error) where it is missing, too large or not JSON."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(RESULT_LIMIT + 1)
        if len(raw) > RESULT_LIMIT:
            raise ValueError(f"{path.name} is over {RESULT_LIMIT} bytes")
        return json.loads(raw.decode("utf-8"))
    except (OSError, ValueError):
        if strict:
            raise
        return None
