"""The instructor's command line: the student's commands (coursegrader.cli) plus release, grade,
collect, grade-all, report, demo, record, bench and the rest."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from coursegrader import cli as core_cli
from coursegrader.cli import existing_folder, grade_and_print, grader_refuses, table
from coursegrader.config import CASSETTE_DIR, REPO_ROOT, Course, Profile, load_course
from coursegrader.errors import UsageError
from coursegrader.statuses import ProfileName

from .mutate.operators import OPERATORS


def cmd_release(args) -> int:
    from .assign import release

    written = release(args.course, args.exercise)
    if args.classroom50:
        from .template_repo import write_classroom50_bundle

        written += write_classroom50_bundle(REPO_ROOT / "release", Path(args.classroom50), args.course)
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_mirror(args) -> int:
    from .hub_mirror import MirrorError, mirror

    try:
        done = mirror(resolve_profile(args.profile, args.course), Path(args.dest))
    except (MirrorError, OSError) as err:
        print(f"mirror: {err}", file=sys.stderr)
        return 1
    for item in done:
        print(f"{item.kind} {item.repo_id}@{item.revision[:12]} -> {Path(args.dest) / item.repo_id} "
              f"({item.files} files, {item.size_bytes / 1e6:.1f} MB)")
    print("copy the folder to a Volume (or workspace files), set course.toml [hub_mirror] root to its path, "
          "and run `python -m autograder release`")
    return 0


def cmd_endpoint(args) -> int:
    import subprocess

    from .endpoint import EndpointError, switch_endpoint

    record = args.record or args.scripted
    try:
        switch = switch_endpoint(args.name, args.course, relabel_cassettes=not record)
    except EndpointError as err:
        print(f"endpoint: {err}; nothing was changed", file=sys.stderr)
        return 2
    print(f"course.toml and {len(switch.notebooks)} source notebooks: {switch.old} -> {switch.new}")
    if switch.cassettes:
        print(f"re-labelled {switch.requests} requests in {len(switch.cassettes)} cassettes (answers as recorded "
              f"from {switch.old}; re-record them with --record where a workspace is reachable)")
    steps = ([["record", *(["--scripted"] if args.scripted else [])]] if record else []) + [["release"]]
    for step in steps:  # fresh processes: they read the new course.toml
        if subprocess.run([sys.executable, "-m", "autograder", *step], cwd=REPO_ROOT).returncode:
            print(f"endpoint: `python -m autograder {' '.join(step)}` failed; the course already names "
                  f"{switch.new}: fix the cause and run it again", file=sys.stderr)
            return 1
    return 0


def resolve_profile(name: str | None, course: Course) -> Profile:
    """A profile by name, resolved once; `auto`: the gpu profile where CUDA is there, else the course default."""
    if name == "auto":
        import torch

        name = ProfileName.GPU if torch.cuda.is_available() else course.default_profile
    return course.profile(name)


def cmd_grade(args) -> int:
    from .official import grade_official

    out = Path(args.out) if args.out else None
    return grade_and_print(lambda: grade_official(Path(args.submission), args.exercise, out,
                                                  cell_timeout_s=args.cell_timeout,
                                                  profile=resolve_profile(args.profile, args.course),
                                                  sandbox=not args.no_sandbox, course=args.course),
                           args.out, args.result_file)


def cmd_record(args) -> int:
    from coursegrader.fmapi.server import Upstream
    from coursegrader.grading.pipeline import gradable_exercises

    from .official import OFFICIAL
    from .record import record_exercise, scripted_workspace

    host, token = os.environ.get("DATABRICKS_HOST"), os.environ.get("DATABRICKS_TOKEN")
    scripted = None
    if args.scripted:
        scripted = scripted_workspace()
        host, token = f"http://127.0.0.1:{scripted.server_address[1]}", "dapi-scripted"
    if not host or not token:
        print("set DATABRICKS_HOST and DATABRICKS_TOKEN (a real workspace), or pass --scripted", file=sys.stderr)
        return 2
    try:
        for exercise in [e for e in gradable_exercises(args.course, args.exercise, OFFICIAL) if e.cassette]:
            print(f"recorded {record_exercise(exercise.id, Upstream(host, token), args.course, Path(args.dest))}")
    finally:
        if scripted:
            scripted.shutdown()
    return 0


def cmd_demo(args) -> int:
    import json
    from concurrent.futures import ThreadPoolExecutor

    from coursegrader.grade_file import read_grade
    from coursegrader.grading.pipeline import gradable_exercises

    from .batch import GRADE_FAILED_FILE, grade_one
    from .official import OFFICIAL
    from .samples import build_sample, load_catalog

    if (refused := grader_refuses(args.course)) is not None:
        return refused
    out = Path(args.out)
    catalog = load_catalog(args.course)
    names = args.sample or [name for name, sample in catalog.items() if args.all or sample.handful]
    ex_ids = [e.id for e in gradable_exercises(args.course, None, OFFICIAL)]

    done, start = [], time.perf_counter()
    print(f"grading {len(names)} samples, {args.jobs} at a time"
          + ("" if args.all or args.sample else " (a handful; --all grades the whole catalog)"), flush=True)

    def run(name):
        sample = catalog[name]
        path = build_sample(sample, out / "submissions" / name, args.course)
        grade_one(path, out / "reports" / name, args.course, sample.exercises, cell_timeout_s=sample.cell_timeout_s)
        done.append(name)
        try:
            grade = read_grade(out / "reports" / name / "grade.json")
        except OSError:  # grade_one recorded why in grade_failed.json
            failure = json.loads((out / "reports" / name / GRADE_FAILED_FILE).read_text(encoding="utf-8"))
            print(f"[{len(done)}/{len(names)}] grader failed for {name}: {failure['reason']}", flush=True)
            return name, None
        print(f"[{len(done)}/{len(names)}] graded {name}: {grade.score:g}/{grade.max_score:g}"
              f" ({time.perf_counter() - start:.0f} s)", flush=True)
        return name, grade

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        grades = dict(pool.map(run, names))
    rows = [["sample", *ex_ids, "total"]]
    for name in names:
        if grades[name] is None:
            rows.append([name, *["?"] * len(ex_ids), "grader failed"])
            continue
        grade, exs = grades[name], grades[name].exercises
        cells = [f"{exs[e].score:g}/{exs[e].max_score:g}" + ("!" if exs[e].problems else "") if e in exs else "-"
                 for e in ex_ids]
        bonus = f" +{grade.bonus_score:g}/{grade.bonus_max_score:g} bonus" if grade.bonus_max_score else ""
        rows.append([name, *cells, f"{grade.score:g}/{grade.max_score:g}{bonus}"])
    print("\n" + table(rows))
    print(f"\nreports: {out / 'reports'}/<sample>/grade.json, grade.md, <ex>/feedback.html"
          "  ('!' = the report names a problem; '-' = not part of that sample)")
    return 1 if None in grades.values() else 0


def cmd_collect(args) -> int:
    import datetime as dt

    from .collect import RepositoryNames, collect

    if bool(args.org) != bool(args.prefix):
        raise UsageError("--org and --prefix go together")
    names = RepositoryNames(args.org, args.prefix, os.environ.get("GITHUB_SERVER_URL") or "https://github.com") \
        if args.org else None
    deadline = dt.datetime.fromisoformat(args.deadline or args.course.deadline)
    roster = Path(args.roster) if args.roster else None
    for c in collect(roster, deadline, Path(args.dest), args.grace_days, args.api_url, names):
        print(f"{c.student_id}: {c.status} {c.commit or ''} {c.committed_at or ''} [{c.time_source}]".rstrip())
        if c.dropped:
            print(f"  dropped links / special files: {', '.join(c.dropped)}")
    return 0


def cmd_grade_all(args) -> int:
    from .batch import grade_all

    index, count = (int(x) for x in args.shard.split("/"))
    if not 0 <= index < count:
        raise UsageError(f"--shard {args.shard}: expected K/N with 0 <= K < N")
    if (refused := grader_refuses(args.course, not args.no_sandbox)) is not None:
        return refused
    codes = grade_all(Path(args.submissions), Path(args.out), args.course, args.jobs, args.exercise,
                      resolve_profile(args.profile, args.course).name if args.profile else None, shard=(index, count),
                      sandbox=not args.no_sandbox, on_graded=_print_progress(Path(args.out)))
    failed = [s for s, code in codes.items() if code != 0]
    print(f"graded {len(codes) - len(failed)} of {len(codes)} submissions into {args.out}"
          + (f"; grader failed for {', '.join(failed)} (see their grade_failed.json)" if failed else ""))
    return 1 if failed else 0


def _print_progress(out: Path):
    from coursegrader.grade_file import read_grade

    def minutes(seconds: float) -> str:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"

    def show(p) -> None:
        try:
            grade = read_grade(out / p.student / "grade.json")
            result = f"{grade.score:g}/{grade.max_score:g}"
        except (OSError, ValueError):  # no grade.json, or none that reads
            result = f"grade_failed (exit {p.exit_status})"
        print(f"[{p.done}/{p.total}] {p.student}: {result}  elapsed {minutes(p.elapsed_s)}, "
              f"ETA {minutes(p.eta_s)}", flush=True)
    return show


def cmd_merge(args) -> int:
    from .batch import merge_shards

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty")
    strays = merge_shards(Path(args.shards_dir), Path(args.submissions), args.count, out)
    for stray in strays:
        print(f"left out (not that shard's student): {stray}")
    print(f"merged {len(list(out.iterdir())) if out.exists() else 0} students into {out}")
    return 0


def cmd_shards(args) -> int:
    """The job matrix for grade-all --shard: [0, 1, ...], no more shards than students."""
    import json

    from .batch import students_in

    count = max(1, min(args.count, len(students_in(Path(args.submissions)))))
    print(json.dumps(list(range(count))))
    return 0


def cmd_report(args) -> int:
    from coursegrader.statuses import StudentOutcome

    from .dashboard.report import write_report

    out = Path(args.out or Path(args.graded_dir) / "_report")
    summary = write_report(Path(args.graded_dir), out, Path(args.roster) if args.roster else None, args.course)
    print(f"{summary['students']} students, {summary['late']} late -> {out}/index.html, {out}/gradebook.csv")
    for sid, status in summary["accounted"].items():
        if status != StudentOutcome.GRADED:
            print(f"{status}: {sid}")
    for name in summary["skipped"]:
        print(f"skipped (unreadable grade.json): {name}")
    return 0


def readable_by_all(folder: Path) -> None:
    """What prefetch fetched, for sandboxed kernels, which run as other users (hub caches write some
    files 0600). Only that: never the rest of HF_HOME, such as a saved token."""
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(parent) / name
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod(mode | 0o444 | (0o111 if path.is_dir() else 0))


def cmd_prefetch(args) -> int:
    """Download a profile's Hub model, dataset and BERTScore encoder into HF_HOME (HF_TOKEN for gated
    Gemma). The dataset goes through the course's own loader, so that it loads again with HF_HUB_OFFLINE=1."""
    from huggingface_hub import snapshot_download

    from coursegrader.course_dataset import load_course_dataset
    from coursegrader.execution.environment import datasets_cache_folder

    profile = resolve_profile(args.profile, args.course)

    def model(repo_id: str) -> Path:  # the repository's cache folder: blobs, snapshots/<revision>, refs
        return Path(snapshot_download(repo_id, repo_type="model")).parents[1]

    def dataset(repo_id: str) -> Path:
        load_course_dataset(repo_id)
        return datasets_cache_folder(repo_id)

    fetch = {"model": model, "dataset": dataset}
    wanted = profile.hub_ids  # repository and package paths (the cpu profile) need nothing
    for repo_id, kind in wanted:
        try:
            path = fetch[kind](repo_id)
        except Exception as err:  # noqa: BLE001 - report and fail this step, with the cause
            print(f"prefetch failed for {kind} {repo_id}: {type(err).__name__}: {err}", file=sys.stderr)
            return 1
        readable_by_all(path)
        print(f"{kind} {repo_id} -> {path}")
    if not wanted:
        print(f"profile {profile.name}: model and dataset are in the repository; nothing to fetch")
    return 0


def cmd_reference_adapter(args) -> int:
    """Train the profile's reference adapter with the ex05 solution (the gpu profiles: on the runner)."""
    from .reference_adapter import build_reference_adapter

    profile = resolve_profile(args.profile, args.course)
    existing = profile.reference_adapter_path()
    if existing and not args.force:
        print(f"reference adapter for profile {profile.name}: {existing} (exists; --force rebuilds)")
        return 0
    print(f"reference adapter for profile {profile.name}: {build_reference_adapter(profile, args.course)}")
    return 0


def cmd_mlflow_ui(args) -> int:
    """Open the MLflow UI on one graded student's ex06 store (localhost only)."""
    import subprocess

    from coursegrader.mlflow_store import ui_command

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

    if (refused := grader_refuses(args.course)) is not None:
        return refused

    run_bench(args.exercise, Path(args.out), args.course, repeat=args.repeat,
              profile=resolve_profile(args.profile, args.course) if args.profile else None)
    return 0


def cmd_calibrate(args) -> int:
    from .calibrate import calibrate, calibration_path, print_calibration

    profile = resolve_profile(args.profile, args.course)
    if (refused := grader_refuses(args.course)) is not None:
        return refused
    print_calibration(calibrate(profile, args.course, Path(args.out) if args.out else None))
    print(f"-> {args.out or calibration_path(profile.name)}")
    return 0


def cmd_mutate(args) -> int:
    import json

    from coursegrader.grading.pipeline import gradable_exercises

    from .mutate.mutants import exercise_mutants
    from .mutate.run import grade_mutants, print_summary, report, sample_of
    from .official import OFFICIAL

    mutants = []
    for exercise in gradable_exercises(args.course, args.exercise, OFFICIAL):
        found = [m for m in exercise_mutants(exercise, args.operator)
                 if (not args.cell or m.cell in args.cell) and (not args.id or m.id in args.id)]
        mutants += sample_of(found, args.sample) if args.sample else found
    if args.list:
        for mutant in mutants:
            print(f"{mutant.id}  line {mutant.line}: {mutant.description}")
        return 0
    if (refused := grader_refuses(args.course)) is not None:
        return refused
    out, start = Path(args.out), time.perf_counter()
    print(f"grading {len(mutants)} mutants, {args.jobs} at a time", flush=True)
    done = []

    def show(outcome):
        done.append(outcome)
        verdict = ("killed" if outcome.killed else "GRADER FAILED" if outcome.score is None
                   else "equivalent" if outcome.equivalent else "SURVIVED")
        print(f"[{len(done)}/{len(mutants)}] {outcome.mutant.id}: {verdict}"
              f" ({time.perf_counter() - start:.0f} s)", flush=True)

    outcomes = grade_mutants(mutants, args.jobs, out / "work", args.course, show)
    out.mkdir(parents=True, exist_ok=True)
    (out / "mutation.json").write_text(json.dumps(report(outcomes), ensure_ascii=False, indent=1), encoding="utf-8")
    reached = print_summary(outcomes, args.min_score)
    print(f"\n{len(mutants)} mutants in {time.perf_counter() - start:.0f} s -> {out / 'mutation.json'}")
    return 0 if reached else 1


def build_parser(course: Course) -> argparse.ArgumentParser:
    """The instructor's parser; `--profile` offers the course's profiles."""
    profiles = sorted(course.profiles) + ["auto"]
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    core_cli.add_commands(sub)

    s = sub.add_parser("release", help="stamp points from course.toml and regenerate release/ (nbgrader generate_assignment)")
    s.add_argument("--exercise", action="append")
    s.add_argument("--classroom50", metavar="DIR", help="also write the Classroom 50 bundle here: template/ "
                                                        "(no workflows) and config/autograders/<assignment>/autograder.py")
    s.set_defaults(func=cmd_release)

    s = sub.add_parser("grade", help="grade one student's repository")
    s.add_argument("submission", type=existing_folder)
    s.add_argument("--exercise", action="append", help="exNN; repeat for several (default: all)")
    s.add_argument("--out", help="write grade.json, grade.md and feedback here")
    s.add_argument("--cell-timeout", type=int, help="seconds per cell (default: course.toml)")
    s.add_argument("--profile", choices=profiles, help="model profile for ex04-ex06 (default: cpu; auto: gpu if CUDA)")
    s.add_argument("--result-file", help=argparse.SUPPRESS)  # grade-all's: why it failed (a protocol.ChildResult)
    s.add_argument("--no-sandbox", action="store_true",
                   help="debugging only: run student code without the sandbox (grade.json says \"sandbox\": false)")
    s.set_defaults(func=cmd_grade)

    s = sub.add_parser("mirror", help="lay out the profile's cached Hub repositories as DEST/<repo id>/ for a "
                                      "Volume (after prefetch)")
    s.add_argument("dest", help="the folder to write (a Volume's path when run on Databricks)")
    s.add_argument("--profile", choices=profiles, default=ProfileName.GPU, help="whose Hub ids (default: gpu)")
    s.set_defaults(func=cmd_mirror)

    s = sub.add_parser("endpoint", help="move the course to another Foundation Model endpoint (course.toml, source "
                                        "notebooks, cassettes), then release")
    s.add_argument("name", help="the serving endpoint's name, e.g. databricks-llama-4-maverick")
    s.add_argument("--record", action="store_true",
                   help="re-record the cassettes from it (DATABRICKS_HOST, DATABRICKS_TOKEN) instead of re-labelling them")
    s.add_argument("--scripted", action="store_true", help="re-record against fixtures/fmapi/scripted_upstream.py")
    s.set_defaults(func=cmd_endpoint)

    s = sub.add_parser("record", help="re-record cassettes by running the source notebooks through record mode")
    s.add_argument("--exercise", action="append")
    s.add_argument("--scripted", action="store_true", help="use fixtures/fmapi/scripted_upstream.py instead of a workspace")
    s.add_argument("--dest", default=str(CASSETTE_DIR), help="folder for the cassettes")
    s.set_defaults(func=cmd_record)

    s = sub.add_parser("demo", help="build sample submissions and grade them (a handful; --all: the whole catalog)")
    s.add_argument("--sample", action="append", help="only this sample (repeatable)")
    s.add_argument("--all", action="store_true", help="every sample of the catalog (default: a representative handful)")
    s.add_argument("--out", default="out/demo")
    s.add_argument("--jobs", type=int, default=2, help="samples graded at a time")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("collect", help="clone every roster repository at the last commit pushed before the deadline")
    s.add_argument("--roster", help="CSV: student_id, github_username, repository; or Classroom 50's roster.csv "
                                    "(with --org and --prefix); without it, every <prefix>-* repository of --org")
    s.add_argument("--org", help="the organization of the student repositories")
    s.add_argument("--prefix", help="their name before -<username> (Classroom 50: <classroom>-<assignment>)")
    s.add_argument("--deadline", help="ISO time (default: course.toml)")
    s.add_argument("--grace-days", type=float, default=0.0, help="also take pushes this long after the deadline (charged as late)")
    s.add_argument("--dest", default="submissions")
    s.add_argument("--api-url", help="GitHub REST API for push times (default: $GITHUB_API_URL or https://api.github.com)")
    s.set_defaults(func=cmd_collect)

    s = sub.add_parser("grade-all", help="grade every collected submission in parallel")
    s.add_argument("submissions", type=existing_folder)
    s.add_argument("--out", default="graded")
    s.add_argument("--jobs", type=int, default=2)
    s.add_argument("--exercise", action="append")
    s.add_argument("--profile", choices=profiles)
    s.add_argument("--shard", default="0/1", help="K/N: grade only every N-th student from the K-th (a job matrix)")
    s.add_argument("--no-sandbox", action="store_true", help="debugging only: see `grade --no-sandbox`")
    s.set_defaults(func=cmd_grade_all)

    s = sub.add_parser("shards", help="print the grading job matrix as JSON ([0, 1, ...]) for grade-all --shard")
    s.add_argument("submissions", type=existing_folder)
    s.add_argument("--count", type=int, default=10)
    s.set_defaults(func=cmd_shards)

    s = sub.add_parser("merge", help="merge the shards' graded folders, each shard only its own students")
    s.add_argument("shards_dir", type=existing_folder, help="holds graded-0/, graded-1/, ... (one per shard)")
    s.add_argument("--submissions", required=True, type=existing_folder, help="the collected submissions")
    s.add_argument("--count", required=True, type=int, help="the number of shards")
    s.add_argument("--out", default="graded")
    s.set_defaults(func=cmd_merge)

    s = sub.add_parser("report", help="class gradebook CSV and HTML dashboard from graded submissions")
    s.add_argument("graded_dir", help="one folder per student (named by student id), each as `grade --out` writes it")
    s.add_argument("--out", help="default: GRADED_DIR/_report")
    s.add_argument("--roster", help="roster CSV (collect's, or Classroom 50's roster.csv): every student on it "
                                    "is listed as graded, grade_failed, not_collected or missing")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("prefetch", help="download a profile's Hub model and dataset into HF_HOME before grading offline")
    s.add_argument("--profile", choices=profiles, default=ProfileName.GPU)
    s.set_defaults(func=cmd_prefetch)

    s = sub.add_parser("reference-adapter", help="train the profile's reference LoRA adapter (ex06's fallback) with the ex05 solution")
    s.add_argument("--profile", choices=profiles, default=ProfileName.GPU)
    s.add_argument("--force", action="store_true", help="rebuild even if it exists")
    s.set_defaults(func=cmd_reference_adapter)

    s = sub.add_parser("mlflow-ui", help="open the MLflow UI on a graded submission's ex06 store (127.0.0.1)")
    s.add_argument("graded_student", help="a student's folder as `grade --out` writes it")
    s.add_argument("--port", type=int, default=5000)
    s.set_defaults(func=cmd_mlflow_ui)

    s = sub.add_parser("bench", help="time grading (sandbox on and off) vs plain execution of the solution notebooks")
    s.add_argument("--exercise", action="append")
    s.add_argument("--repeat", type=int, default=2, help="gradings per exercise and mode; the fastest counts")
    s.add_argument("--out", default="out/bench")
    s.add_argument("--profile", choices=profiles, help="time this profile's model (default: ex04-ex06 only)")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("calibrate", help="grade the solution and ex05 mistakes with a profile; write what its "
                                         "thresholds rest on to fixtures/calibration/<profile>.json")
    s.add_argument("--profile", choices=profiles, default=ProfileName.CPU)
    s.add_argument("--out", help="write here instead")
    s.set_defaults(func=cmd_calibrate)

    s = sub.add_parser("mutate", help="mutation-test the grader: grade mistakes made on purpose in the source solutions")
    s.add_argument("--exercise", action="append")
    s.add_argument("--cell", action="append", help="only mutants of this solution cell (grade id; repeatable)")
    s.add_argument("--operator", action="append", help="only this operator (repeatable): " + ", ".join(OPERATORS))
    s.add_argument("--id", action="append", help="only this mutant (an id from --list or mutation.json; repeatable)")
    s.add_argument("--sample", type=int, help="at most this many mutants per exercise (a stable subset)")
    s.add_argument("--jobs", type=int, default=2, help="mutants graded at a time")
    s.add_argument("--list", action="store_true", help="list the mutants without grading them")
    s.add_argument("--min-score", type=float, default=0.9, help="exit 1 when an exercise kills fewer (default 0.9)")
    s.add_argument("--out", default="out/mutate")
    s.set_defaults(func=cmd_mutate)
    return p


def main(argv=None) -> int:
    course = load_course()  # the one read of course.toml: every command gets it as args.course
    return core_cli.run(build_parser(course), course, argv)
