"""The template repository: everything in release/ around the notebooks.

release/ holds the student notebooks plus what the feedback tier needs to run in the
student's repository with no secrets and no network (a plain GitHub organization uses it as is):

  README.md                          the student guide (Japanese)
  .github/workflows/feedback.yml     check each push that changes a notebook: summary, annotations, HTML
  requirements.txt                   the same pins as ours
  .grader/coursegrader/              the public grader package, whole (students may see and run all of it)
  .grader/release/exNN/              pristine notebooks: nbgrader's source for visible tests
  .grader/fixtures/                  signature-only cassettes, the tiny model, the training data

For Classroom 50, write_classroom50_bundle writes the same template without workflows (Classroom 50
installs its own) and the autograder for the teacher's config repository.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

import coursegrader
from coursegrader.config import CASSETTE_DIR, FIXTURES_DIR, REPO_ROOT, Course
from coursegrader.fmapi.matchers import signature_only
from coursegrader.fmapi.persister import load_cassettes, save_cassette

TEMPLATES = Path(__file__).resolve().parent / "templates"
GRADER_DIR = ".grader"
CORE_PACKAGE = Path(coursegrader.__file__).resolve().parent  # shipped whole: it holds nothing students may not see
# Local model and data for the cpu profile (held-out prompts stay with the official grader).
FEEDBACK_FIXTURES = ("models/tiny-gemma3-ja", "models/tiny-gemma3-ja-gozaru-lora", "data/gozaru_dataset.jsonl")
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "adapter_config.json", "adapter_model.safetensors",
               "tokenizer_config.json", "chat_template.jinja")


def write_template_repository(release_dir: Path, exercise_ids: list[str], course: Course) -> list[Path]:
    release_dir = Path(release_dir)
    grader = release_dir / GRADER_DIR
    shutil.rmtree(grader, ignore_errors=True)
    shutil.copytree(CORE_PACKAGE, grader / CORE_PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _copy(REPO_ROOT / "nbgrader_config.py", grader / "nbgrader_config.py")
    for ex_id in exercise_ids:
        nb = f"{ex_id}/{course.exercises[ex_id].notebook}"
        _copy(release_dir / nb, grader / "release" / nb)
    for cassette in load_cassettes(CASSETTE_DIR):
        for interaction in cassette.interactions:
            interaction.request = {**interaction.request, "body": signature_only(interaction.request["body"])}
        for scripted in cassette.scripted:
            scripted.request = {**scripted.request, "body": signature_only(scripted.request["body"])}
        save_cassette(cassette, grader / "fixtures" / "fmapi" / f"{cassette.name}.json")
    for rel in FEEDBACK_FIXTURES:
        src = FIXTURES_DIR / rel
        for f in ([src / n for n in MODEL_FILES if (src / n).exists()] if src.is_dir() else [src]):
            _copy(f, grader / "fixtures" / f.relative_to(FIXTURES_DIR))
    _copy(REPO_ROOT / "requirements.txt", release_dir / "requirements.txt")
    (release_dir / ".gitignore").write_text(TEMPLATE_GITIGNORE, encoding="utf-8")
    (release_dir / "README.md").write_text(student_readme(release_dir, exercise_ids, course), encoding="utf-8")
    workflow = release_dir / ".github" / "workflows" / "feedback.yml"
    for stale in workflow.parent.glob("*.yml"):
        stale.unlink()
    workflow.parent.mkdir(parents=True, exist_ok=True)
    workflow.write_text(feedback_workflow(exercise_ids), encoding="utf-8")
    return [release_dir / "README.md", workflow, grader]


# What the feedback run and the notebooks write beside them (ex05's adapter and trainer output, Databricks's own
# folder): large, and never graded from the repository.
TEMPLATE_GITIGNORE = """feedback/
__pycache__/
.ipynb_checkpoints/
.venv/
result.json
release-body.md
ex*/gozaru-lora/
sft-output/
ex*/sft-output/
.databricks/
"""


def feedback_workflow(exercise_ids: list[str]) -> str:
    paths = "\n".join(f'      - "{ex}/**"' for ex in exercise_ids)
    return (TEMPLATES / "feedback.yml").read_text(encoding="utf-8").replace("{paths}", paths)


def write_classroom50_bundle(release_dir: Path, out: Path, course: Course) -> list[Path]:
    """out/template/: the template repository for Classroom 50 (release/ without workflows: Classroom 50
    adds its own autograde.yaml); out/config/autograders/<assignment>/autograder.py: for the config repository;
    out/image/: the Dockerfile of the grading environment (runtime.container), with requirements.txt."""
    settings = course.classroom50
    template, image = Path(out) / "template", Path(out) / "image"
    autograder = Path(out) / "config" / "autograders" / settings["assignment"] / "autograder.py"
    for ours in (template, autograder.parent, image):  # only what this writes is replaced; nothing else in out
        shutil.rmtree(ours, ignore_errors=True)
    shutil.copytree(release_dir, template, ignore=shutil.ignore_patterns(".github", "__pycache__", "feedback"))
    autograder.parent.mkdir(parents=True)
    image.mkdir(parents=True)

    def fill(name: str) -> str:
        text = (TEMPLATES / name).read_text(encoding="utf-8")
        return (text.replace("{title}", course.title).replace("{python}", settings["python"])
                .replace("{assignment}", settings["assignment"]))

    autograder.write_text(fill("classroom50_autograder.py"), encoding="utf-8")
    (image / "Dockerfile").write_text(fill("classroom50_Dockerfile"), encoding="utf-8")
    shutil.copyfile(release_dir / "requirements.txt", image / "requirements.txt")
    return [template, autograder, image]


def student_readme(release_dir: Path, exercise_ids: list[str], course: Course) -> str:
    from .plan import plan_summary

    table = "\n".join(
        f"| `{ex}/` | {course.exercises[ex].title}（{'ボーナス ' if course.exercises[ex].bonus else ''}{course.exercises[ex].max_score:g} 点） | "
        f"{plan_summary(course.exercises[ex], nbformat.read(release_dir / ex / f'{ex}.ipynb', as_version=4))} |"
        for ex in exercise_ids)
    from .plan import class_timetable

    notebooks = {ex: nbformat.read(release_dir / ex / f"{ex}.ipynb", as_version=4) for ex in exercise_ids}
    rows = class_timetable(course, notebooks)
    used = sum(minutes for _, minutes in rows)
    timetable = "\n".join(f"| {what} | {minutes} 分 |" for what, minutes in rows)
    timetable += (f"\n| **合計** | **{used} 分**（授業は {course.schedule.class_minutes} 分。"
                  f"残りの {course.schedule.class_minutes - used} 分は説明と質問に） |")
    text = (TEMPLATES / "student_README.md").read_text(encoding="utf-8")
    return (text.replace("{title}", course.title).replace("{exercise_table}", table)
            .replace("{class_timetable}", timetable))


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
