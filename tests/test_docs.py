"""The documentation: README size, links that lead somewhere, the grade.json schema, real commands.

Fast: reads Markdown and JSON, builds the argument parsers; grades nothing.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
from pathlib import Path
from urllib.parse import unquote

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SCHEMA = DOCS / "grade.schema.json"
MARKDOWN = [README, *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """Markdown without code blocks and code spans (links there are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text(encoding="utf-8")))


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)  # http:, https:, mailto:, ...


def slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped (letters of any script kept), spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for _, title in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(title)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def test_readme_is_short():
    assert len(README.read_bytes()) < 10_000
    README.read_bytes().decode("utf-8")


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_existing_files(path):
    broken = []
    for target in links(path):
        if not relative(target) or target.startswith("#"):
            continue
        file_part = unquote(target.split("#", 1)[0])
        if not (path.parent / file_part).exists():
            broken.append(target)
    assert broken == [], f"{path.name}: links to missing files: {broken}"


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_link_anchors_name_a_heading(path):
    broken = []
    for target in links(path):
        if not relative(target) or "#" not in target:
            continue
        file_part, anchor = target.split("#", 1)
        dest = (path.parent / unquote(file_part)) if file_part else path
        if dest.suffix == ".md" and dest.is_file() and unquote(anchor) not in anchors(dest):
            broken.append(target)
    assert broken == [], f"{path.name}: anchors that name no heading: {broken}"


def test_the_docs_have_a_readme_link_each():
    linked = {(README.parent / t.split("#", 1)[0]).resolve() for t in links(README) if relative(t) and not t.startswith("#")}
    unlinked = [p.name for p in [*DOCS.glob("*.md"), SCHEMA] if p.resolve() not in linked]
    assert unlinked == []


# -- grade.json ------------------------------------------------------------------------

def schema() -> dict:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def minimal_report() -> dict:
    return {
        "schema_version": 1,
        "grader_version": "0.2.0",
        "submission": "s001",
        "tier": "official",
        "sandbox": True,
        "score": 1.0,
        "max_score": 2.0,
        "exercises": {
            "ex01": {
                "title": "Chat Completion API の基礎",
                "score": 1.0,
                "max_score": 2.0,
                "status": "graded",
                "problems": [{"code": "cell_restored", "message_ja": "…", "message_en": "…", "fatal": False}],
                "checks": [
                    {"id": "ex01_client", "score": 1.0, "max_score": 1.0, "passed": True, "message": "正解です。",
                     "test": {"passed": True, "error": None},
                     "evidence": [{"id": "uses_sdk_client", "passed": True, "message": "OK"}]},
                    {"id": "ex01_qa", "score": 0, "max_score": 1, "passed": False, "message": "…",
                     "test": {"passed": False, "error": "AssertionError: "}, "evidence": []},
                ],
            }
        },
    }


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_a_minimal_report_validates():
    validator().validate(minimal_report())


def broken(edit) -> dict:
    report = copy.deepcopy(minimal_report())
    edit(report)
    return report


def ex01(report: dict) -> dict:
    return report["exercises"]["ex01"]


@pytest.mark.parametrize("edit", [
    lambda r: r.pop("tier"),
    lambda r: r.update(tier="unofficial"),
    lambda r: r.update(sandbox="yes"),
    lambda r: r.update(score="1"),
    lambda r: r.update(extra=1),
    lambda r: r["exercises"].update(exercise7=r["exercises"]["ex01"]),
    lambda r: ex01(r).update(status="skipped"),
    lambda r: ex01(r).pop("problems"),
    lambda r: ex01(r)["problems"][0].pop("fatal"),
    lambda r: ex01(r)["checks"][0]["test"].update(error=3),
    lambda r: ex01(r)["checks"][0]["evidence"][0].pop("message"),
    lambda r: ex01(r)["checks"][1].update(note="x"),
], ids=["no tier", "tier", "sandbox type", "score type", "unknown field", "exercise key", "status",
        "no problems", "problem without fatal", "test error type", "evidence without message", "check field"])
def test_a_broken_report_does_not_validate(edit):
    assert not validator().is_valid(broken(edit))


def test_the_examples_in_grade_json_md_validate():
    """Every ```json block in docs/grade-json.md is a whole report the schema accepts."""
    text = (DOCS / "grade-json.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```json\n(.*?)^```", text, re.S | re.M)
    assert blocks
    for block in blocks:
        report = json.loads(block)
        validator().validate(report)
        assert report["score"] == sum(e["score"] for e in report["exercises"].values())
        for ex in report["exercises"].values():
            assert ex["max_score"] == sum(c["max_score"] for c in ex["checks"])


# -- commands ---------------------------------------------------------------------------

def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    return {name for action in parser._actions if isinstance(action, argparse._SubParsersAction)
            for name in action.choices}


def coursegrader_parser() -> argparse.ArgumentParser:
    from coursegrader import cli

    parser = argparse.ArgumentParser(prog="python -m coursegrader")
    cli.add_commands(parser.add_subparsers(dest="command"))
    return parser


def readme_commands() -> list[tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Commands\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README has no Commands section"
    return re.findall(r"python -m (autograder|coursegrader) ([\w-]+)", section.group(1))


def test_readme_commands_are_real_subcommands():
    from autograder.cli import build_parser
    from coursegrader.config import load_course

    known = {"autograder": subcommands(build_parser(load_course())), "coursegrader": subcommands(coursegrader_parser())}
    mentioned = readme_commands()
    assert {package for package, _ in mentioned} == {"autograder", "coursegrader"}
    unknown = [f"python -m {package} {cmd}" for package, cmd in mentioned if cmd not in known[package]]
    assert unknown == []
    assert known["coursegrader"] <= known["autograder"]  # the instructor's CLI has every student command


def test_the_student_readme_says_when_each_exercise_is_done():
    """course.toml's plan (the course's 90 minutes: ex01-ex04 in class, ex05 begun, ex06 after) in the release:
    each row names the in-class and homework sections, as the notebooks' headings do."""
    import nbformat

    from autograder.plan import plan_summary
    from coursegrader.config import RELEASE_DIR, load_course

    text = (RELEASE_DIR / "README.md").read_text(encoding="utf-8")
    for ex in load_course().exercises.values():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{ex.id}/`"))
        nb = nbformat.read(RELEASE_DIR / ex.id / ex.notebook, as_version=4)
        assert row.rstrip(" |").endswith(plan_summary(ex, nb))
        assert nb.cells[0].source.endswith("> 予定：" + plan_summary(ex, nb))
    assert "授業中（1.1〜1.4、約 11 分）・宿題（1.5〜1.6、約 11 分）" in text
    assert "| **合計** | **84 分**（授業は 90 分。" in text  # the timetable: set-up and in-class sections
    assert [e.plan for e in load_course().exercises.values()] == ["start-in-class"] * 5 + ["homework"] * 2  # ex06, bonus
