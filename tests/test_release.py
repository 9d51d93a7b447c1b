"""release/ is generated from source/ and holds no solution or hidden test."""
import re
import shutil

import nbformat
import pytest

from autograder.assign import release
from coursegrader.config import RELEASE_DIR, SOURCE_DIR, load_course
from coursegrader.notebook import graded_cells, is_test

EXERCISES = [e for e in load_course().exercises if (SOURCE_DIR / e).is_dir()]
REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.S)


def secret_lines(exercise_id: str, regions=("SOLUTION", "HIDDEN TESTS")) -> set[str]:
    """Meaningful lines found only inside solution or hidden-test regions of the source
    (a line the task statement itself shows, such as `qa_answer = ask(QA_QUESTION)`, is public,
    and so is what the model replies: every student sees it in their outputs)."""
    lines, public = set(), _model_replies() + _shipped_grader_code()
    for ex in EXERCISES:  # code one exercise asks for may be given code in a later one
        nb = nbformat.read(SOURCE_DIR / ex / f"{ex}.ipynb", as_version=4)
        for cell in nb.cells:
            if ex == exercise_id:
                for kind, body in REGION.findall(cell.source):
                    if kind in regions:
                        lines |= {l.strip() for l in body.splitlines() if len(l.strip()) > 12 and not l.strip().startswith("#")}
            public += REGION.sub(lambda m: "" if m.group(1) in regions else m.group(2), cell.source) + "\n"
    return {l for l in lines if l not in public}


def _shipped_grader_code() -> str:
    """The public package is public by design (it ships whole in release/.grader)."""
    from autograder.template_repo import CORE_PACKAGE

    return "".join(p.read_text() for p in sorted(CORE_PACKAGE.rglob("*.py")))


def _model_replies() -> str:
    import json

    from coursegrader.config import CASSETTE_DIR

    replies = [r["body"] for p in sorted(CASSETTE_DIR.glob("*.json"))
               for i in json.loads(p.read_text())["interactions"] for r in i["responses"]]
    return json.dumps(replies, ensure_ascii=False, indent=2) + "\n"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    release(load_course(), EXERCISES, release_dir=out)
    return out


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_release_is_not_stale(regenerated, exercise_id):
    name = f"{exercise_id}/{exercise_id}.ipynb"
    assert (RELEASE_DIR / name).read_text() == (regenerated / name).read_text(), (
        f"release/{name} is stale: run `python -m autograder release` and commit")


def test_template_repository_is_not_stale(regenerated):
    files = lambda root: {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
                          if p.is_file() and "__pycache__" not in p.parts}  # release/.gitignore leaves bytecode out
    ours, fresh = files(RELEASE_DIR), files(regenerated)
    assert sorted(ours) == sorted(fresh), "release/ is stale: run `python -m autograder release` and commit"
    assert [name for name in ours if ours[name] != fresh[name]] == []


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_release_holds_no_solution_or_hidden_test(exercise_id):
    secrets = secret_lines(exercise_id)
    assert secrets, "the source must have solution / hidden-test regions"
    for path in RELEASE_DIR.rglob("*"):
        if path.is_file() and b"\0" not in path.read_bytes()[:4096]:  # text files (weights are binary)
            text = path.read_text(errors="ignore")
            assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text, path
            text = text.replace("\\n", "\n").replace('\\"', '"')
            for line in secrets:
                assert not leaks(line, text), f"{path} leaks {line!r}"


def leaks(line: str, text: str) -> bool:
    """The line occurs as a whole: `return result` is not found in `return results`."""
    return re.search(r"(?<!\w)" + re.escape(line) + r"(?!\w)", text) is not None


def test_the_leak_check_can_fail(tmp_path):
    """A release that carries a solution line is caught by the same scan."""
    line = sorted(secret_lines("ex01"))[0]
    assert leaks(line, (SOURCE_DIR / "ex01" / "ex01.ipynb").read_text().replace("\\n", "\n").replace('\\"', '"'))


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_points_in_source_match_course_toml(exercise_id):
    exercise = load_course().exercises[exercise_id]
    nb = nbformat.read(SOURCE_DIR / exercise_id / exercise.notebook, as_version=4)
    points = {gid: c.metadata["nbgrader"]["points"] for gid, c in graded_cells(nb) if is_test(c)}
    assert points == {c.grade_id: c.points for c in exercise.cells}


@pytest.mark.parametrize("exercise_id", [e for e in EXERCISES if load_course().exercises[e].cassette])
def test_one_model_constant_per_notebook(exercise_id):
    """The endpoint is course.toml's, written once in each notebook (`python -m autograder endpoint` moves both)."""
    text = (SOURCE_DIR / exercise_id / f"{exercise_id}.ipynb").read_text()
    assert text.count(f'\\"{load_course().chat_model}\\"') == 1


DATABRICKS_ONLY = r"dbutils|%pip|magic\(\"pip\"|quality_monitors|serving_endpoints\.create|ai_query|CREATE VOLUME"
GUARD = 'if "DATABRICKS_RUNTIME_VERSION" in os.environ:'
NAMED_GUARD = ('ON_DATABRICKS = "DATABRICKS_RUNTIME_VERSION" in os.environ', "if ON_DATABRICKS:")


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_databricks_only_cells_are_guarded(exercise_id):
    """What exists only on Databricks (dbutils, %pip, monitors, endpoints, ai_query, volumes, and its `spark`, except
    in the bonus that starts a local Spark of its own) runs only under a guard: the runtime's variable, or a
    name the notebook sets from it."""
    nb = nbformat.read(RELEASE_DIR / exercise_id / f"{exercise_id}.ipynb", as_version=4)
    only_there = DATABRICKS_ONLY if exercise_id == "ex02_spark" else DATABRICKS_ONLY + r"|\bspark\."
    named = NAMED_GUARD[0] in "\n".join(cell.source for cell in nb.cells)
    for cell in nb.cells:
        if cell.cell_type == "code" and re.search(only_there, cell.source):
            assert GUARD in cell.source or (named and NAMED_GUARD[1] in cell.source), cell.source[:200]
            assert not re.search(r"^\s*%pip", cell.source, re.M), "a bare %pip runs outside Databricks too"


def test_heldout_prompts_never_reach_the_release():
    import json

    from coursegrader.config import FIXTURES_DIR

    prompts = json.loads((FIXTURES_DIR / "data" / "heldout_prompts.json").read_text())
    text = "".join(p.read_text(errors="ignore") for p in RELEASE_DIR.rglob("*") if p.is_file())
    text = text.replace("\\n", "\n").replace('\\"', '"')
    assert prompts and not [p for p in prompts if p in text]


def test_release_stamps_the_hub_mirror_into_the_profile_cells(tmp_path):
    """course.toml's [hub_mirror] root is the notebooks' default (HUB_MIRROR); `release` writes it there."""
    from autograder.assign import sync_hub_mirror

    course = load_course()
    variable = course.profile_env["hub_mirror"]
    for ex in ("ex04", "ex05", "ex06"):
        text = (RELEASE_DIR / ex / f"{ex}.ipynb").read_text()
        assert text.count(f'os.environ.get(\\"{variable}\\", \\"{course.hub_mirror}\\")') == 1, ex
    shutil.copytree(SOURCE_DIR / "ex05", tmp_path / "ex05")
    exercise = course.exercises["ex05"]
    assert sync_hub_mirror(exercise, "/Volumes/main/llm_course/hub", variable, tmp_path)
    stamped = nbformat.read(tmp_path / "ex05" / "ex05.ipynb", as_version=4)
    assert 'os.environ.get("COURSE_HUB_MIRROR", "/Volumes/main/llm_course/hub")' in "".join(c.source for c in stamped.cells)
    assert not sync_hub_mirror(exercise, "/Volumes/main/llm_course/hub", variable, tmp_path)  # already stamped
