"""The GitHub Classroom template repository: everything in release/ around the notebooks.

release/ holds the student notebooks plus what the feedback tier needs to run in the
student's repository with no secrets and no network:

  README.md                          the student guide (Japanese)
  .github/workflows/classroom.yml    check on every push, report to Classroom
  requirements.txt                   the same pins as ours
  .grader/autograder/                the feedback-tier subset of this package (no checks/)
  .grader/release/exNN/              pristine notebooks: nbgrader's source for visible tests
  .grader/fixtures/                  signature-only cassettes, the tiny model, the training data
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .config import CASSETTE_DIR, FIXTURES_DIR, PACKAGE_DIR, REPO_ROOT, load_course
from .fmapi.matchers import signature_only
from .fmapi.persister import load_cassettes, save_cassette

TEMPLATES = PACKAGE_DIR / "templates"
GRADER_DIR = ".grader"

# The feedback tier's modules. Not shipped: grade/checks (the official evidence checks),
# grade/reference_lm, samples, record, collect, bench, export/report.
FEEDBACK_MODULES = (
    "__init__.py", "__main__.py", "cli.py", "config.py", "course.toml", "execute.py", "mlflow_store.py",
    "fmapi/__init__.py", "fmapi/cassette.py", "fmapi/matchers.py", "fmapi/persister.py", "fmapi/server.py",
    "fmapi/validation.py",
    "grade/__init__.py", "grade/pipeline.py", "grade/nbgrader_runner.py", "grade/nbgrader_job.py",
    "grade/resilient_execute.py", "grade/feedback_filters.py", "grade/submission.py", "grade/problems.py",
    "grade/report.py", "grade/evidence.py", "grade/untrusted.py",
    "sandbox/__init__.py", "sandbox/policy.py", "sandbox/launch.py", "sandbox/inside.py", "sandbox/kernel.py",
    "export/__init__.py", "export/classroom.py",
    "metrics/__init__.py", "metrics/gozaru.py",
)
# Local model and data for the cpu profile (held-out prompts stay with the official grader).
FEEDBACK_FIXTURES = ("models/tiny-gemma3-ja", "models/tiny-gemma3-ja-gozaru-lora", "data/gozaru_dataset.jsonl")
MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "adapter_config.json", "adapter_model.safetensors",
               "tokenizer_config.json", "chat_template.jinja")


def write_template_repository(release_dir: Path, exercise_ids: list[str]) -> list[Path]:
    release_dir = Path(release_dir)
    grader = release_dir / GRADER_DIR
    shutil.rmtree(grader, ignore_errors=True)
    for rel in FEEDBACK_MODULES:
        _copy(PACKAGE_DIR / rel, grader / "autograder" / rel)
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
