"""Command line: a thin layer over the library (assign, check, grade, export, collect, record, bench)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .config import CASSETTE_DIR, load_course


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows)


def cmd_release(args) -> int:
    from .assign import release

    for path in release(args.exercise):
        print(f"wrote {path}")
    return 0


def resolve_profile(name: str | None) -> str | None:
    """`auto`: the gpu profile where CUDA is there, else the course default (cpu)."""
    if name != "auto":
        return name
    import torch

    return "gpu" if torch.cuda.is_available() else load_course().default_profile


def cmd_grade(args) -> int:
    from .grade import grade_submission

    return _graded(lambda: grade_submission(Path(args.submission), args.exercise, Path(args.out) if args.out else None,
                                            cell_timeout_s=args.cell_timeout, profile=resolve_profile(args.profile),
                                            sandbox=not args.no_sandbox), args.out)


def cmd_check(args) -> int:
    from .grade import grade_submission

    return _graded(lambda: grade_submission(Path(args.submission), args.exercise, Path(args.out), tier="feedback"),
                   args.out)


def _graded(grade_it, out) -> int:
    """Grade and print; exit 1 with grader_error, writing no report, when the grader cannot run notebooks."""
    from .grade.nbgrader_runner import GraderUnavailable

    try:
        grade = grade_it()
    except GraderUnavailable as err:
        print(f"grader_error: nothing was graded. {err}", file=sys.stderr)
        return 1
    return _print_grade(grade, out)


def _print_grade(grade, out) -> int:
    rows = [["exercise", "score", "problems"]]
    rows += [[r.exercise.id, f"{r.score:g}/{r.exercise.max_score:g}", ",".join(p.code for p in r.problems) or "-"]
             for r in grade.runs]
    rows.append(["total", f"{grade.score:g}/{grade.max_score:g}", ""])
    print(_table(rows))
    for run in grade.runs:
        for p in run.problems:
            print(f"[{run.exercise.id}] {p.message_ja} / {p.message_en}")
    if out:
        print(f"reports written to {out}/grade.json, grade.md")
    return 0


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
                           upstream=upstream, record_to=args.record)
    with server:
        print(f"fixture server on {server.url} ({'record' if upstream else 'replay'} mode)", flush=True)
        print(f"  export DATABRICKS_HOST={server.url} DATABRICKS_TOKEN={server.token}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def cmd_record(args) -> int:
    from .fmapi.server import Upstream
    from .grade.pipeline import gradable_exercises
    from .record import record_exercise

    host, token = os.environ.get("DATABRICKS_HOST"), os.environ.get("DATABRICKS_TOKEN")
    scripted = None
    if args.scripted:
        sys.path.insert(0, str(CASSETTE_DIR))
        import scripted_upstream

        scripted = scripted_upstream.start()
        host, token = f"http://127.0.0.1:{scripted.server_address[1]}", "dapi-scripted"
    if not host or not token:
        print("set DATABRICKS_HOST and DATABRICKS_TOKEN (a real workspace), or pass --scripted", file=sys.stderr)
        return 2
    try:
        for exercise in [e for e in gradable_exercises(args.exercise) if e.cassette]:
            print(f"recorded {record_exercise(exercise.id, Upstream(host, token), Path(args.dest))}")
    finally:
        if scripted:
            scripted.shutdown()
    return 0


def cmd_demo(args) -> int:
    import json
    from concurrent.futures import ThreadPoolExecutor

    from .grade.batch import grade_one
    from .grade.pipeline import gradable_exercises
    from .samples import build_sample, load_catalog

    out = Path(args.out)
    catalog = load_catalog()
    names = args.sample or list(catalog)
    ex_ids = [e.id for e in gradable_exercises()]

    def run(name):
        sample = catalog[name]
        path = build_sample(sample, out / "submissions" / name)
        grade_one(path, out / "reports" / name, sample.exercises, cell_timeout_s=sample.cell_timeout_s)
        grade = json.loads((out / "reports" / name / "grade.json").read_text(encoding="utf-8"))
        print(f"graded {name}: {grade['score']:g}/{grade['max_score']:g}", flush=True)
        return name, grade

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        grades = dict(pool.map(run, names))
    rows = [["sample", *ex_ids, "total"]]
    for name in names:
        exs = grades[name]["exercises"]
        cells = [f"{exs[e]['score']:g}/{exs[e]['max_score']:g}" + ("!" if exs[e]["problems"] else "") if e in exs else "-"
                 for e in ex_ids]
        rows.append([name, *cells, f"{grades[name]['score']:g}/{grades[name]['max_score']:g}"])
    print("\n" + _table(rows))
    print(f"\nreports: {out / 'reports'}/<sample>/grade.json, grade.md, <ex>/feedback.html"
          "  ('!' = the report names a problem; '-' = not part of that sample)")
    return 0


def cmd_collect(args) -> int:
    import datetime as dt

    from .collect import collect

    deadline = dt.datetime.fromisoformat(args.deadline or load_course().deadline)
    for c in collect(Path(args.roster), deadline, Path(args.dest), args.grace_days):
        print(f"{c.student_id}: {c.status} {c.commit or ''} {c.committed_at or ''}".rstrip())
        if c.dropped:
            print(f"  dropped links / special files: {', '.join(c.dropped)}")
    return 0


def cmd_grade_all(args) -> int:
    from .grade.batch import grade_all

    index, count = (int(x) for x in args.shard.split("/"))
    if not 0 <= index < count:
        raise ValueError(f"--shard {args.shard}: expected K/N with 0 <= K < N")
    codes = grade_all(Path(args.submissions), Path(args.out), args.jobs, args.exercise,
                      resolve_profile(args.profile), shard=(index, count), sandbox=not args.no_sandbox)
    failed = [s for s, code in codes.items() if code != 0]
    print(f"graded {len(codes)} submissions into {args.out}" + (f"; grader failed for {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def cmd_shards(args) -> int:
    """The job matrix for grade-all --shard: [0, 1, ...], no more shards than students."""
    import json

    from .grade.batch import students_in

    count = max(1, min(args.count, len(students_in(Path(args.submissions)))))
    print(json.dumps(list(range(count))))
    return 0


def cmd_report(args) -> int:
    from .export.report import write_report

    out = Path(args.out or Path(args.graded_dir) / "_report")
    summary = write_report(Path(args.graded_dir), out)
    print(f"{summary['students']} students, {summary['late']} late -> {out}/index.html, {out}/gradebook.csv")
    for name in summary["skipped"]:
        print(f"skipped (unreadable grade.json): {name}")
    return 0


def cmd_classroom(args) -> int:
    import json

    from .export.classroom import github_output_line

    grade = json.loads(Path(args.grade_json).read_text(encoding="utf-8"))
    for ex in args.exercise or list(grade["exercises"]):
        print(github_output_line(grade, ex))
    return 0


def cmd_prefetch(args) -> int:
    """Download a profile's Hub model and dataset into HF_HOME (needs HF_TOKEN for gated Gemma)."""
    from huggingface_hub import snapshot_download

    profile = load_course().profile(resolve_profile(args.profile))
    wanted = [(v, kind) for v, kind in ((profile.model_id, "model"), (profile.dataset, "dataset"),
                                        (profile.bertscore_model, "model"))
              if profile.resolve(v) == v]  # repository and package paths (the cpu profile) need nothing
    for repo_id, kind in wanted:
        try:
            path = snapshot_download(repo_id, repo_type=kind)
        except Exception as err:  # noqa: BLE001 - report and fail this step, with the cause
            print(f"prefetch failed for {kind} {repo_id}: {type(err).__name__}: {err}", file=sys.stderr)
            return 1
        print(f"{kind} {repo_id} -> {path}")
    if not wanted:
        print(f"profile {profile.name}: model and dataset are in the repository; nothing to fetch")
    return 0


def cmd_mlflow_ui(args) -> int:
    """Open the MLflow UI on one graded student's ex06 store (localhost only)."""
    import subprocess

    from .mlflow_store import ui_command

    try:
        cmd = ui_command(Path(args.graded_student), args.port)
    except FileNotFoundError as err:
        print(err, file=sys.stderr)
        return 1
    cmd[0] = str(Path(sys.executable).parent / "mlflow")
    print(f"MLflow UI: http://127.0.0.1:{args.port}  ({' '.join(cmd[1:])})", flush=True)
    return subprocess.call(cmd)


def cmd_bench(args) -> int:
    from .bench import run_bench

    run_bench(args.exercise, Path(args.out), repeat=args.repeat)
    return 0


PROFILE_CHOICES = sorted(load_course().profiles) + ["auto"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("release", help="stamp points from course.toml and regenerate release/ (nbgrader generate_assignment)")
    s.add_argument("--exercise", action="append")
    s.set_defaults(func=cmd_release)

    s = sub.add_parser("grade", help="grade one student's repository")
    s.add_argument("submission")
    s.add_argument("--exercise", action="append", help="exNN; repeat for several (default: all)")
    s.add_argument("--out", help="write grade.json, grade.md and feedback here")
    s.add_argument("--cell-timeout", type=int, help="seconds per cell (default: course.toml)")
    s.add_argument("--profile", choices=PROFILE_CHOICES, help="model profile for ex04-ex06 (default: cpu; auto: gpu if CUDA)")
    s.add_argument("--no-sandbox", action="store_true",
                   help="debugging only: run student code without the sandbox (grade.json says \"sandbox\": false)")
    s.set_defaults(func=cmd_grade)

    s = sub.add_parser("check", help="feedback tier: visible tests only, cpu profile (the student's Classroom workflow)")
    s.add_argument("submission", nargs="?", default=".", help="the student's repository (default: .)")
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

    s = sub.add_parser("record", help="re-record cassettes by running the source notebooks through record mode")
    s.add_argument("--exercise", action="append")
    s.add_argument("--scripted", action="store_true", help="use fixtures/fmapi/scripted_upstream.py instead of a workspace")
    s.add_argument("--dest", default=str(CASSETTE_DIR), help="folder for the cassettes")
    s.set_defaults(func=cmd_record)

    s = sub.add_parser("demo", help="build the sample submissions and grade them")
    s.add_argument("--sample", action="append", help="only this sample (repeatable)")
    s.add_argument("--out", default="out/demo")
    s.add_argument("--jobs", type=int, default=2, help="samples graded at a time")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("collect", help="clone every roster repository at its last commit before the deadline")
    s.add_argument("--roster", required=True, help="CSV: student_id, github_username, repository")
    s.add_argument("--deadline", help="ISO time (default: course.toml)")
    s.add_argument("--grace-days", type=float, default=0.0, help="also take commits this long after the deadline (charged as late)")
    s.add_argument("--dest", default="submissions")
    s.set_defaults(func=cmd_collect)

    s = sub.add_parser("grade-all", help="grade every collected submission in parallel")
    s.add_argument("submissions")
    s.add_argument("--out", default="graded")
    s.add_argument("--jobs", type=int, default=2)
    s.add_argument("--exercise", action="append")
    s.add_argument("--profile", choices=PROFILE_CHOICES)
    s.add_argument("--shard", default="0/1", help="K/N: grade only every N-th student from the K-th (a job matrix)")
    s.add_argument("--no-sandbox", action="store_true", help="debugging only: see `grade --no-sandbox`")
    s.set_defaults(func=cmd_grade_all)

    s = sub.add_parser("shards", help="print the grading job matrix as JSON ([0, 1, ...]) for grade-all --shard")
    s.add_argument("submissions")
    s.add_argument("--count", type=int, default=10)
    s.set_defaults(func=cmd_shards)

    s = sub.add_parser("report", help="class gradebook CSV and HTML dashboard from graded submissions")
    s.add_argument("graded_dir", help="one folder per student (named by student id), each as `grade --out` writes it")
    s.add_argument("--out", help="default: GRADED_DIR/_report")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("classroom", help="print `<exercise>=<base64>` lines ($GITHUB_OUTPUT) for the Classroom grading reporter")
    s.add_argument("grade_json")
    s.add_argument("--exercise", action="append", help="default: every exercise in grade.json")
    s.set_defaults(func=cmd_classroom)

    s = sub.add_parser("prefetch", help="download a profile's Hub model and dataset into HF_HOME before grading offline")
    s.add_argument("--profile", choices=PROFILE_CHOICES, default="gpu")
    s.set_defaults(func=cmd_prefetch)

    s = sub.add_parser("mlflow-ui", help="open the MLflow UI on a graded submission's ex06 store (127.0.0.1)")
    s.add_argument("graded_student", help="a student's folder as `grade --out` writes it")
    s.add_argument("--port", type=int, default=5000)
    s.set_defaults(func=cmd_mlflow_ui)

    s = sub.add_parser("bench", help="time grading (sandbox on and off) vs plain execution of the solution notebooks")
    s.add_argument("--exercise", action="append")
    s.add_argument("--repeat", type=int, default=2, help="gradings per exercise and mode; the fastest counts")
    s.add_argument("--out", default="out/bench")
    s.set_defaults(func=cmd_bench)
    return p


def main(argv=None) -> int:
    from .execute import our_tools_first

    os.environ["PATH"] = our_tools_first(os.environ.get("PATH"))  # nbgrader's gradebook runs `alembic` from PATH
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:  # bad arguments (e.g. an unknown exercise), not a grader failure
        parser.error(str(err))
