"""The student's command line: check (the feedback tier), annotate and classroom50 (its reports), serve-fixtures."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from .config import CASSETTE_DIR, Course, load_course
from .errors import UsageError
from .protocol import ChildResult, ExitCode


def table(rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows)


def existing_folder(value: str) -> str:
    """argparse type: a folder that exists (a missing submission is a mistake in the command, not a 0)."""
    if not Path(value).is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {value}")
    return value


def grader_refuses(course: Course, sandboxed: bool = True, result_file: str | None = None) -> int | None:
    """1, with the reason on stderr, where the grader cannot run notebooks here (no usable sandbox with the course's
    limits); None where it can. Commands that grade many submissions ask once, before grading any."""
    from .execution.nbgrader_course import GraderUnavailable, preflight
    from .sandbox import Limits

    try:
        preflight(sandboxed, Limits.from_course(course))
    except GraderUnavailable as err:
        return _nothing_graded(err, result_file)
    return None


def _nothing_graded(err: Exception, result_file: str | None) -> int:
    """The grader cannot run notebooks here: said on stderr, and in the caller's result file (protocol)."""
    reason = f"grader_error: nothing was graded. {err}"
    print(reason, file=sys.stderr)
    if result_file:
        ChildResult(ExitCode.GRADER_ERROR, reason).write(Path(result_file))
    return ExitCode.GRADER_ERROR


def grade_and_print(grade_it, out, result_file: str | None = None) -> int:
    """Run grade_it() and print its grade; exit 1 with grader_error, writing no report, when the grader cannot run
    notebooks."""
    from .execution.nbgrader_course import GraderUnavailable

    try:
        grade = grade_it()
    except GraderUnavailable as err:
        return _nothing_graded(err, result_file)
    print_grade(grade, out)
    return ExitCode.OK


def print_grade(grade, out) -> None:
    """The grade as a table, each problem in both languages, and where the reports went."""
    rows = [["exercise", "score", "problems"]]
    rows += [[r.exercise.id, f"{r.score:g}/{r.exercise.max_score:g}", ",".join(p.code for p in r.problems) or "-"]
             for r in grade.runs]
    rows.append(["total", f"{grade.score:g}/{grade.max_score:g}", ""])
    print(table(rows))
    for run in grade.runs:
        for p in run.problems:
            print(f"[{run.exercise.id}] {p.message_ja} / {p.message_en}")
    if out:
        print(f"reports written to {out}/grade.json, grade.md")


def cmd_check(args) -> int:
    from .grading import grade_into
    from .grading.tier import FEEDBACK

    return grade_and_print(lambda: grade_into(Path(args.out), Path(args.submission), args.exercise, tier=FEEDBACK,
                                                   course=args.course), args.out)


def cmd_serve(args) -> int:
    from .fmapi import FixtureServer
    from .fmapi.server import Upstream

    upstream = None
    if args.record:
        host, token = os.environ.get("DATABRICKS_HOST"), os.environ.get("DATABRICKS_TOKEN")
        if not host or not token:
            print("record mode needs DATABRICKS_HOST and DATABRICKS_TOKEN for the real workspace", file=sys.stderr)
            return 2
        upstream = Upstream(host, token)
    server = FixtureServer(Path(args.cassettes), token=args.token, port=args.port, log_path=args.log,
                           upstream=upstream, record_to=args.record, course=args.course)
    with server:
        print(f"fixture server on {server.url} ({'record' if upstream else 'replay'} mode)", flush=True)
        print(f"  export DATABRICKS_HOST={server.url} DATABRICKS_TOKEN={server.token}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_annotate(args) -> int:
    from .export.github import annotations
    from .grade_file import read_grade

    for line in annotations(read_grade(args.grade_json)):
        print(line)
    return 0


def cmd_classroom50(args) -> int:
    import json

    from .export.classroom50 import result
    from .grade_file import read_grade

    text = json.dumps(result(read_grade(args.grade_json), os.environ), ensure_ascii=False, indent=1) + "\n"
    Path(args.out).write_text(text, encoding="utf-8")
    return 0


def add_commands(sub) -> None:
    """The commands a student's repository can run (the instructor's CLI adds its own to these)."""
    s = sub.add_parser("check", help="feedback tier: visible tests only, cpu profile (the student's workflow)")
    s.add_argument("submission", nargs="?", default=".", type=existing_folder,
                   help="the student's repository (default: .)")
    s.add_argument("--exercise", action="append")
    s.add_argument("--out", default="feedback")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("serve-fixtures", help="run the Foundation Model API fixture server")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--token", help="bearer token clients must send (default: random)")
    s.add_argument("--cassettes", default=str(CASSETTE_DIR))
    s.add_argument("--log", help="append every request as JSONL here")
    s.add_argument("--record", help="record mode: proxy to DATABRICKS_HOST and write this cassette")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("annotate", help="print GitHub Actions annotations: each lost point and each problem")
    s.add_argument("grade_json")
    s.set_defaults(func=cmd_annotate)

    s = sub.add_parser("classroom50", help="write Classroom 50's result.json (schema result-v1) from grade.json")
    s.add_argument("grade_json")
    s.add_argument("--out", default="result.json")
    s.set_defaults(func=cmd_classroom50)


def run(parser: argparse.ArgumentParser, course: Course, argv=None) -> int:
    """Parse argv and run its command with the course (args.course): the one place a command's errors become its
    exit status."""
    from .execution.environment import our_tools_first

    os.environ["PATH"] = our_tools_first(os.environ.get("PATH"))  # nbgrader's gradebook runs `alembic` from PATH
    args = parser.parse_args(argv)
    args.course = course
    try:
        return args.func(args)
    except UsageError as err:  # bad arguments (e.g. an unknown exercise): argparse's message and exit 2
        if getattr(args, "result_file", None):
            ChildResult(ExitCode.USAGE, str(err)).write(Path(args.result_file))
        parser.error(str(err))
    except Exception as err:  # the grader's own error, never the user's: its traceback, exit 1
        logging.getLogger("coursegrader").exception("grader error (not a usage mistake)")
        if getattr(args, "result_file", None):
            ChildResult(ExitCode.GRADER_ERROR, f"grader_error: {type(err).__name__}: {err}").write(
                Path(args.result_file))
        return ExitCode.GRADER_ERROR


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursegrader", description=__doc__)
    add_commands(parser.add_subparsers(dest="command", required=True))
    return run(parser, load_course(), argv)
