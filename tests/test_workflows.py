"""GitHub Actions workflows: actionlint and zizmor, the commands they run, and where secrets may appear."""
import datetime as dt
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autograder.cli import build_parser
from coursegrader.config import RELEASE_DIR, REPO_ROOT, load_course
from commands import autograder

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml")) + [
    RELEASE_DIR / ".github" / "workflows" / "feedback.yml"]
ACTIONLINT = Path(sys.executable).parent / "actionlint"
ZIZMOR = Path(sys.executable).parent / "zizmor"
# Each command below is run by a test, with the workflow's own arguments:
EXERCISED = {
    "check": "test_template_repo.py::run_workflow_commands",
    "annotate": "test_template_repo.py::run_workflow_commands",
    "collect": "test_collect.py",
    "shards": "test_collect.py::test_sharded_grading_merges_into_one_nbgrader_gradebook",
    "grade-all": "test_collect.py::test_sharded_grading_merges_into_one_nbgrader_gradebook",
    "merge": "test_collect.py::test_sharded_grading_merges_into_one_nbgrader_gradebook",
    "report": "test_collect.py::test_sharded_grading_merges_into_one_nbgrader_gradebook",
    "prefetch": "test_gpu_dry_run.py::test_prefetch_downloads_the_profiles_repositories_through_the_hub_api",
    "reference-adapter": "test_gpu_dry_run.py::test_reference_adapter_is_built_for_the_hub_model",
}


def load(path):
    return yaml.safe_load(path.read_text())


def steps(path):
    for job_id, job in load(path)["jobs"].items():
        for step in job["steps"]:
            yield job_id, step


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_passes(path):
    run = subprocess.run([str(ACTIONLINT), "-no-color", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_zizmor_finds_nothing_in_any_workflow():
    run = subprocess.run([str(ZIZMOR), "--offline", "--no-progress", *map(str, WORKFLOWS)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_zizmor_catches_an_unpinned_action(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - uses: actions/checkout@v4\n        with:\n          persist-credentials: false\n")
    run = subprocess.run([str(ZIZMOR), "--offline", "--no-progress", str(bad)], capture_output=True, text=True)
    assert run.returncode != 0 and "unpinned-uses" in run.stdout + run.stderr


def test_no_workflow_mentions_the_retired_classroom_reporter():
    for path in WORKFLOWS + list((REPO_ROOT / "autograder" / "templates").iterdir()):
        assert "autograding-grading-reporter" not in path.read_text(), path.name


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ steps.nope.outputs.x }}\n")
    run = subprocess.run([str(ACTIONLINT), "-no-color", str(bad)], capture_output=True, text=True)
    assert run.returncode != 0 and "nope" in run.stdout


def autograder_commands():
    """(workflow, package, command): the instructor's `autograder` or the students' `coursegrader`."""
    for path in WORKFLOWS:
        for _, step in steps(path):
            for match in re.finditer(r"python -m (autograder|coursegrader) ([\w-]+)", step.get("run", "")):
                yield path.name, match.group(1), match.group(2)


def subcommands(parser) -> set[str]:
    return set(parser._subparsers._group_actions[0].choices)


def test_every_workflow_command_exists_and_is_exercised():
    import argparse

    from coursegrader import cli as student_cli

    student = argparse.ArgumentParser()
    student_cli.add_commands(student.add_subparsers())
    known = {"autograder": subcommands(build_parser(load_course())), "coursegrader": subcommands(student)}
    used = {(package, cmd) for _, package, cmd in autograder_commands()}
    assert {(package, cmd) for package, cmd in used if cmd not in known[package]} == set()
    assert {cmd for _, cmd in used} == set(EXERCISED)


def test_secrets_reach_only_the_collect_and_prefetch_steps():
    for path in WORKFLOWS:
        for job_id, step in steps(path):
            text = yaml.safe_dump(step)
            if "secrets." in text:
                assert path.name == "grade-submissions.yml"
                assert set(re.findall(r"secrets\.(\w+)", text)) <= {"CLASSROOM_TOKEN", "HF_TOKEN"}
                assert "autograder collect" in step["run"] or "autograder prefetch" in step["run"], step["name"]
        assert "secrets." not in yaml.safe_dump(load(path).get("env", {}))
    feedback = (RELEASE_DIR / ".github" / "workflows" / "feedback.yml").read_text()
    assert not re.search(r"\bsecrets\.\w", feedback)


def test_grading_jobs_leave_no_token_in_the_checkout():
    for path in WORKFLOWS:
        for job_id, step in steps(path):
            if step.get("uses", "").startswith("actions/checkout") and path.name == "grade-submissions.yml":
                assert step["with"]["persist-credentials"] is False, job_id


def test_the_scheduled_run_follows_the_course_deadline():
    cron = load(REPO_ROOT / ".github" / "workflows" / "grade-submissions.yml")[True]["schedule"][0]["cron"]
    minute, hour, day, month, _ = cron.split()
    due = dt.datetime.fromisoformat(load_course().deadline).astimezone(dt.timezone.utc) + dt.timedelta(minutes=30)
    due = due.replace(second=0, microsecond=0) + dt.timedelta(minutes=1 if due.second else 0)
    assert (int(month), int(day), int(hour), int(minute)) == (due.month, due.day, due.hour, due.minute)


def test_grading_runs_on_a_configurable_runner_with_cpu_fallback():
    grade = load(REPO_ROOT / ".github" / "workflows" / "grade-submissions.yml")["jobs"]["grade"]
    assert "vars.GRADER_RUNNER" in grade["runs-on"] and "ubuntu-latest" in grade["runs-on"]
    run = next(s["run"] for s in grade["steps"] if "grade-all" in s.get("run", ""))
    args = shlex.split(run)
    assert args[args.index("--profile") + 1] == "auto" and "--shard" in args


def test_prefetch_reaches_for_the_hub_and_fails_clearly_offline(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    run = autograder("prefetch", "--profile", "gpu", env=env)
    assert run.returncode == 1 and "prefetch failed for model google/gemma-3-270m-it" in run.stderr
    run = autograder("prefetch", "--profile", "auto", env=env)
    assert run.returncode == 0 and "nothing to fetch" in run.stdout  # no CUDA here: auto is the cpu profile


def test_the_grading_jobs_hold_no_token_no_secret_and_save_no_cache():
    jobs = load(REPO_ROOT / ".github" / "workflows" / "grade-submissions.yml")["jobs"]
    grade = jobs["grade"]
    assert grade["permissions"] == {}
    assert "secrets." not in yaml.safe_dump(grade)
    for step in grade["steps"]:
        uses = step.get("uses", "")
        assert not uses.startswith(("actions/checkout", "actions/cache")), uses  # no token; nothing saved
        assert "cache" not in step.get("with", {}), uses
    upload = next(s for s in grade["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "${{ !cancelled() }}"  # one student's failure never drops the shard
    assert "HF_TOKEN" in yaml.safe_dump(jobs["prefetch"]) and "grade-all" not in yaml.safe_dump(jobs["prefetch"])
    report = next(s["run"] for s in jobs["merge"]["steps"] if "autograder report" in s.get("run", ""))
    assert "--roster" in shlex.split(report)


def test_every_action_is_pinned_to_a_commit():
    for path in WORKFLOWS:
        for _, step in steps(path):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w.-]+)*@[0-9a-f]{40}", step["uses"]), (path.name, step["uses"])


def test_the_gpu_runner_installs_bitsandbytes_and_gets_the_cached_reference_adapter():
    jobs = load(REPO_ROOT / ".github" / "workflows" / "grade-submissions.yml")["jobs"]
    for job in ("prefetch", "grade"):
        install = next(s["run"] for s in jobs[job]["steps"] if s.get("name", "").startswith("Install"))
        assert "nvidia-smi" in install and "requirements-gpu.txt" in install and "PIP_EXTRA_INDEX_URL= " in install
    steps_ = jobs["prefetch"]["steps"]
    order = [s.get("run", "") + s.get("uses", "") for s in steps_]
    fetch = next(i for i, t in enumerate(order) if "autograder prefetch" in t)
    build = next(i for i, t in enumerate(order) if "reference-adapter --profile gpu" in t)
    restore = next(i for i, s in enumerate(steps_) if s.get("uses", "").startswith("actions/cache/restore"))
    assert fetch < restore < build
    assert steps_[restore]["with"]["key"].startswith("reference-adapter-gpu-")
    assert steps_[build]["env"]["HF_HUB_OFFLINE"] == "1" and "HF_TOKEN" not in yaml.safe_dump(steps_[build])
    assert any(s.get("with", {}).get("name") == "reference-adapter" for s in jobs["grade"]["steps"])
    assert load_course().profile("gpu").reference_adapter == "reference-adapters/gpu"
