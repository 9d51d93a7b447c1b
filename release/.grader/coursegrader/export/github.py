"""GitHub Actions annotations, as workflow commands
(https://docs.github.com/actions/reference/workflows-and-actions/workflow-commands): one per exercise
that lost points, listing each lost point with its reason, and one per problem. GitHub shows at most
ten warnings and ten errors of a step, so a blank repository's 36 lost checks go into six annotations.
A problem that only informs (problems.NOTICES) is a notice. A bonus exercise's annotation says so in its
title: its points are bonus points, not lost from the core total."""
from __future__ import annotations

from ..grade_file import GradeFile
from ..problems import NOTICES


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, notebook: str, title: str, message: str) -> str:
    return f"::{kind} file={_property(notebook)},title={_property(title)}::{_data(message)}"


def annotations(grade: GradeFile) -> list[str]:
    """The workflow commands for a grade: per exercise, one per problem and one listing its lost points."""
    lines = []
    for ex in grade.exercises.values():
        notebook = f"{ex.id}/{ex.id}.ipynb"
        for p in ex.problems:
            level = "error" if p.fatal else "notice" if p.code in NOTICES else "warning"
            lines.append(_command(level, notebook, f"{ex.id}: {p.code}", f"{p.message_ja} / {p.message_en}"))
        lost = [(c.id, c.max_score - c.score, c.message) for c in ex.checks if c.score < c.max_score]
        if lost:
            title = f"{ex.id}: {ex.score:g}/{ex.max_score:g}" + (" (bonus)" if ex.bonus else "")
            lines.append(_command("warning", notebook, title,
                                  "\n".join(f"{cid} -{points:g}: {message}" for cid, points, message in lost)))
    return lines
