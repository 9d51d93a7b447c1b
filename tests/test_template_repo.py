"""The template repository (release/) and its feedback tier, run as GitHub Actions would."""
import json
import shutil
import sys
from pathlib import Path

import yaml

from coursegrader.config import CASSETTE_DIR, RELEASE_DIR, SOURCE_DIR, load_course
from coursegrader.fmapi.matchers import signature
from coursegrader.fmapi.persister import load_cassettes
from autograder.samples import build_sample, load_catalog
from autograder.template_repo import GRADER_DIR

from shapes import reshape_submission
from commands import coursegrader

COURSE = load_course()
EXERCISES = [e for e in COURSE.exercises if (SOURCE_DIR / e).is_dir()]
BUNDLE = RELEASE_DIR / GRADER_DIR


def test_template_repository_has_what_a_student_repository_needs():
    assert (RELEASE_DIR / "README.md").read_text().count("Databricks") >= 3
    assert [p.name for p in (RELEASE_DIR / ".github" / "workflows").iterdir()] == ["feedback.yml"]
    workflow = yaml.safe_load((RELEASE_DIR / ".github" / "workflows" / "feedback.yml").read_text())
    assert workflow[True]["push"]["paths"][:len(EXERCISES)] == [f"{ex}/**" for ex in EXERCISES]  # notebooks only
    assert workflow["concurrency"]["cancel-in-progress"] is True and workflow["permissions"] == {"contents": "read"}
    cache = next(s for s in workflow["jobs"]["feedback"]["steps"] if s.get("uses", "").startswith("actions/cache"))
    assert "hashFiles('requirements.txt')" in cache["with"]["key"]
    for ex in EXERCISES:
        assert (RELEASE_DIR / ex / f"{ex}.ipynb").read_bytes() == (BUNDLE / "release" / ex / f"{ex}.ipynb").read_bytes()
    assert (RELEASE_DIR / "requirements.txt").read_text() == (RELEASE_DIR.parent / "requirements.txt").read_text()


def test_official_checks_and_hidden_data_stay_out_of_the_template():
    assert sorted(p.name for p in BUNDLE.iterdir()) == ["coursegrader", "fixtures", "nbgrader_config.py", "release"]
    assert not list(RELEASE_DIR.rglob("checks")) and not list(RELEASE_DIR.rglob("reference_lm.py"))
    assert not list(RELEASE_DIR.rglob("heldout_prompts.json")) and not list(RELEASE_DIR.rglob("catalog.toml"))
    assert not list(RELEASE_DIR.rglob("source"))


def test_shipped_cassettes_match_the_same_requests_without_schemas_or_tool_specs():
    ours = {c.name: c for c in load_cassettes(CASSETTE_DIR)}
    shipped = load_cassettes(BUNDLE / "fixtures" / "fmapi")
    assert sorted(c.name for c in shipped) == sorted(ours)
    for cassette in shipped:
        for mine, theirs in zip(ours[cassette.name].interactions, cassette.interactions):
            assert signature(theirs.request["body"]) == signature(mine.request["body"])
            assert theirs.responses == mine.responses
            text = json.dumps(theirs.request["body"])
            assert '"schema"' not in text and '"parameters"' not in text
    assert any('"schema"' in json.dumps(i.request["body"]) for c in ours.values() for i in c.interactions)


def student_repo(tmp_path: Path, sample: str | None, shape: str = "release") -> Path:
    """A student's clone of the template, with a sample's notebooks committed over the blanks (saved in `shape`,
    tests/shapes.py: "databricks" as a Databricks Git folder commits them)."""
    repo = tmp_path / "repo"
    shutil.copytree(RELEASE_DIR, repo)
    if sample:
        built = build_sample(load_catalog(COURSE)[sample], tmp_path / "sample", COURSE)
        reshape_submission(built, shape)
        for ex in EXERCISES:
            if (built / ex).is_dir():
                for blank in (repo / ex).glob("*.ipynb"):
                    blank.unlink()  # Databricks's Source format replaces the .ipynb
        for ex in EXERCISES:
            if (built / ex).is_dir():
                shutil.copytree(built / ex, repo / ex, dirs_exist_ok=True)
    return repo


def run_workflow_commands(repo: Path, *check_args: str) -> tuple[dict, list[str], str]:
    """feedback.yml's commands, with only PATH and HOME set: (grade.json, annotation lines, what was printed)."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(repo.parent / "home")}
    grader = repo / GRADER_DIR
    check = coursegrader("check", "..", "--out", "../feedback", *check_args, cwd=grader, env=env, timeout=900)
    assert check.returncode == 0, check.stdout + check.stderr
    annotate = coursegrader("annotate", "../feedback/grade.json", cwd=grader, env=env)
    assert annotate.returncode == 0, annotate.stderr
    grade = json.loads((repo / "feedback" / "grade.json").read_text())
    return grade, annotate.stdout.splitlines(), check.stdout + check.stderr + annotate.stdout


def _hidden_test_lines() -> set[str]:
    from test_release import secret_lines

    return set().union(*(secret_lines(ex, regions=("HIDDEN TESTS",)) for ex in EXERCISES))


def test_feedback_tier_gives_the_solution_every_visible_point(tmp_path):
    """The solution as a Databricks Git folder commits it in Databricks's Source format (exNN/exNN.py): what
    students push who switch the notebook format (the official tier grades the .ipynb commit, test_shapes)."""
    repo = student_repo(tmp_path, "solution", shape="source_py")
    grade, annotations, log = run_workflow_commands(repo)
    assert grade["tier"] == "feedback"
    exercises = [load_course().exercises[e] for e in EXERCISES]
    assert grade["score"] == grade["max_score"] == sum(e.max_score for e in exercises if not e.bonus) == 66
    assert grade["bonus_score"] == grade["bonus_max_score"] == sum(e.max_score for e in exercises if e.bonus) == 4
    assert {ex: [p["code"] for p in e["problems"]] for ex, e in grade["exercises"].items()} == \
           {ex: ["cells_matched_by_content"] for ex in EXERCISES}
    assert [line.split("::")[1] for line in annotations] == [  # nothing lost: only that the cells were found
        f"notice file={ex}/{ex}.ipynb,title={ex}%3A cells_matched_by_content" for ex in EXERCISES]
    assert "途中経過" in (repo / "feedback" / "grade.md").read_text()
    shown = log + "".join(p.read_text(errors="ignore") for p in (repo / "feedback").rglob("*") if p.is_file())
    shown = shown.replace("\\n", "\n").replace('\\"', '"')
    hidden = _hidden_test_lines()
    assert hidden and not [line for line in hidden if line in shown]


def test_feedback_tier_gives_the_blank_release_nothing(tmp_path):
    repo = student_repo(tmp_path, None)
    grade, annotations, _ = run_workflow_commands(repo, "--exercise", "ex01", "--exercise", "ex04")
    assert grade["score"] == 0 and grade["max_score"] == 21
    lost = [line for line in annotations if line.startswith("::warning file=ex0")]
    assert [line.split("::")[1] for line in lost] == [  # one per exercise: GitHub shows ten per step
        "warning file=ex01/ex01.ipynb,title=ex01%3A 0/10", "warning file=ex04/ex04.ipynb,title=ex04%3A 0/11"]
    assert all(f"{c['id']} -{c['max_score']:g}: " in lost[0] for c in grade["exercises"]["ex01"]["checks"])


def test_feedback_tier_reports_a_broken_notebook_and_grades_the_rest(tmp_path):
    repo = student_repo(tmp_path, "solution")
    (repo / "ex02" / "ex02.ipynb").write_text("{ not json")
    grade, annotations, _ = run_workflow_commands(repo, "--exercise", "ex01", "--exercise", "ex02")
    assert grade["exercises"]["ex02"]["status"] == "error" and grade["exercises"]["ex02"]["score"] == 0
    assert grade["exercises"]["ex01"]["score"] == 10
    assert grade["exercises"]["ex02"]["problems"][0]["code"] == "notebook_malformed"
    assert any(line.startswith("::error file=ex02/ex02.ipynb,title=ex02%3A notebook_malformed::") for line in annotations)
