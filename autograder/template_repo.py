"""The GitHub Classroom template repository: everything in release/ around the notebooks.

release/ holds the student notebooks plus what the feedback tier needs to run in the
student's repository with no secrets and no network:

  README.md                          the student guide (Japanese)
  .github/workflows/classroom.yml    check on every push, report to Classroom
  requirements.txt                   the same pins as ours
  .grader/coursegrader/              the public grader package, whole (students may see and run all of it)
  .grader/release/exNN/              pristine notebooks: nbgrader's source for visible tests
  .grader/fixtures/                  signature-only cassettes, the tiny model, the training data
"""
from __future__ import annotations

import shutil
from pathlib import Path

import coursegrader
from coursegrader.config import CASSETTE_DIR, FIXTURES_DIR, REPO_ROOT, load_course
from coursegrader.fmapi.matchers import signature_only
from coursegrader.fmapi.persister import load_cassettes, save_cassette

TEMPLATES = Path(__file__).resolve().parent / "templates"
GRADER_DIR = ".grader"
CORE_PACKAGE = Path(coursegrader.__file__).resolve().parent  # shipped whole: it holds nothing students may not see
# Local model and data for the cpu profile (held-out prompts stay with the official grader).
FEEDBACK_FIXTURES = ("models/tiny-gemma3-ja", "models/tiny-gemma3-ja-gozaru-lora", "data/gozaru_dataset.jsonl")
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "adapter_config.json", "adapter_model.safetensors",
               "tokenizer_config.json", "chat_template.jinja")


def write_template_repository(release_dir: Path, exercise_ids: list[str]) -> list[Path]:
    release_dir = Path(release_dir)
    grader = release_dir / GRADER_DIR
    shutil.rmtree(grader, ignore_errors=True)
    shutil.copytree(CORE_PACKAGE, grader / CORE_PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _copy(REPO_ROOT / "nbgrader_config.py", grader / "nbgrader_config.py")
    for ex_id in exercise_ids:
        nb = f"{ex_id}/{load_course().exercises[ex_id].notebook}"
        _copy(release_dir / nb, grader / "release" / nb)
    for cassette in load_cassettes(CASSETTE_DIR):
        for interaction in cassette.interactions:
            interaction.request = {**interaction.request, "body": signature_only(interaction.request["body"])}
        save_cassette(cassette, grader / "fixtures" / "fmapi" / f"{cassette.name}.json")
    for rel in FEEDBACK_FIXTURES:
        src = FIXTURES_DIR / rel
        for f in ([src / n for n in MODEL_FILES if (src / n).exists()] if src.is_dir() else [src]):
            _copy(f, grader / "fixtures" / f.relative_to(FIXTURES_DIR))
    _copy(REPO_ROOT / "requirements.txt", release_dir / "requirements.txt")
    (release_dir / ".gitignore").write_text("feedback/\n__pycache__/\n.ipynb_checkpoints/\n", encoding="utf-8")
    (release_dir / "README.md").write_text(student_readme(exercise_ids), encoding="utf-8")
    workflow = release_dir / ".github" / "workflows" / "classroom.yml"
    workflow.parent.mkdir(parents=True, exist_ok=True)
    workflow.write_text(classroom_workflow(exercise_ids), encoding="utf-8")
    return [release_dir / "README.md", workflow, grader]


def classroom_workflow(exercise_ids: list[str]) -> str:
    env = "\n".join(f'          {ex.upper()}_RESULTS: "${{{{ steps.check.outputs.{ex} }}}}"' for ex in exercise_ids)
    text = (TEMPLATES / "classroom.yml").read_text(encoding="utf-8")
    return text.replace("{reporter_env}", env).replace("{runners}", ",".join(exercise_ids))


def student_readme(exercise_ids: list[str]) -> str:
    course = load_course()
    table = "\n".join(f"| `{ex}/` | {course.exercises[ex].title}（{course.exercises[ex].max_score:g} 点） |"
                      for ex in exercise_ids)
    text = (TEMPLATES / "student_README.md").read_text(encoding="utf-8")
    return text.replace("{title}", course.title).replace("{exercise_table}", table)


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
