"""GitHub Actions: one annotation per check that lost points and per problem, as workflow commands
(https://docs.github.com/actions/reference/workflows-and-actions/workflow-commands)."""
from __future__ import annotations


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, notebook: str, title: str, message: str) -> str:
    return f"::{kind} file={_property(notebook)},title={_property(title)}::{_data(message)}"


def annotations(grade: dict) -> list[str]:
    lines = []
    for ex_id, ex in grade["exercises"].items():
        notebook = f"{ex_id}/{ex_id}.ipynb"
        for p in ex["problems"]:
            lines.append(_command("error" if p.get("fatal") else "warning", notebook, f"{ex_id}: {p['code']}",
                                  f"{p['message_ja']} / {p['message_en']}"))
        for check in ex["checks"]:
            lost = check["max_score"] - check["score"]
            if lost > 0:
                lines.append(_command("warning", notebook, f"{check['id']} -{lost:g}", check["message"]))
    return lines
