"""endpoint: move the course to another Foundation Model endpoint.

Databricks retires pay-per-token endpoints; after that only workspaces that used one in the previous 30 days
keep it. The endpoint's name lives in course.toml (`[course] chat_model`); the source notebooks hold it once
each, as the constant their students call (CHAT_MODEL), and the cassettes hold it in every request they
recorded. `python -m autograder endpoint NAME` changes all three:

- without a workspace, it re-labels the cassettes: each recorded request asked NAME, and its recorded answer
  stays the one the old endpoint gave (the cassette's meta says so, under `relabelled`);
- with `--record` (DATABRICKS_HOST and DATABRICKS_TOKEN, or `--scripted`), it re-records them from NAME.

Then it regenerates release/ (`python -m autograder release`), which carries the name to the students.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from coursegrader.config import CASSETTE_DIR, COURSE_TOML, SOURCE_DIR, Course, load_course
from coursegrader.fmapi.cassette import Cassette
from coursegrader.fmapi.persister import load_cassette, save_cassette

# A serving endpoint's name: letters, digits, dashes and underscores, at most 63 characters (Databricks's rule).
ENDPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


class EndpointError(ValueError):
    """The switch cannot be made as asked; nothing was changed."""


@dataclass(frozen=True)
class EndpointSwitch:
    old: str
    new: str
    notebooks: tuple[Path, ...]   # source notebooks whose constant changed
    cassettes: tuple[Path, ...]   # cassettes re-labelled (empty when re-recorded)
    requests: int                 # recorded and scripted requests re-labelled


def relabel(cassette: Cassette, old: str, new: str) -> int:
    """Every request the cassette holds for `old` now asks `new`; the recorded answers are kept as they are.
    Returns how many requests changed."""
    changed = 0
    for interaction in cassette.interactions:
        if interaction.request.get("body", {}).get("model") == old:
            interaction.request["body"]["model"] = new
            changed += 1
    scripted = []
    for item in cassette.scripted:
        if item.request.get("body", {}).get("model") == old:
            body = {**item.request["body"], "model": new}
            item = dataclasses.replace(item, request={**item.request, "body": body})  # re-derives its template
            changed += 1
        scripted.append(item)
    cassette.scripted = scripted
    if changed:
        history = cassette.meta.setdefault("relabelled", [])
        history.append({"from": old, "to": new,
                        "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                        "note": "the requests were re-labelled; the answers are still the ones recorded from "
                                "the old endpoint (re-record with `python -m autograder endpoint --record`)"})
    return changed


def _literal_count(nb, name: str) -> int:
    return sum(c.source.count(f'"{name}"') for c in nb.cells if c.cell_type == "code")


def plan_notebooks(old: str, new: str, course: Course, source_dir: Path = SOURCE_DIR) -> dict[Path, object]:
    """The source notebooks to change, already changed in memory; refuses unless each API exercise holds the
    old name exactly once (as its CHAT_MODEL constant) and none holds the new one."""
    changed = {}
    for exercise in course.exercises.values():
        path = Path(source_dir) / exercise.id / exercise.notebook
        nb = nbformat.read(path, as_version=4)
        count = _literal_count(nb, old)
        if exercise.cassette and count != 1:
            raise EndpointError(f"{path}: expected the endpoint \"{old}\" once (its CHAT_MODEL constant), found {count}")
        if _literal_count(nb, new):
            raise EndpointError(f"{path}: already mentions \"{new}\"")
        if count:
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.source = cell.source.replace(f'"{old}"', f'"{new}"')
            changed[path] = nb
    return changed


def switch_endpoint(new: str, course: Course, *, relabel_cassettes: bool = True, course_toml: Path = COURSE_TOML,
                    source_dir: Path = SOURCE_DIR, cassette_dir: Path = CASSETTE_DIR) -> EndpointSwitch:
    """Write the new name into course.toml, the source notebooks and (unless they are to be re-recorded) the
    cassettes. Everything is checked before anything is written. `course` is the course as it was read before
    the switch (it still names the old endpoint)."""
    if not ENDPOINT_NAME.fullmatch(new):
        raise EndpointError(f"{new!r} is not a serving endpoint name (letters, digits, - and _, at most 63)")
    old = course.chat_model
    if new == old:
        raise EndpointError(f"the course already uses {old}")
    toml_text = Path(course_toml).read_text(encoding="utf-8")
    line = f'chat_model = "{old}"'
    if toml_text.count(line) != 1:
        raise EndpointError(f"{course_toml}: expected one line `{line}`")
    notebooks = plan_notebooks(old, new, course, source_dir)
    cassettes = {}
    if relabel_cassettes:
        for exercise in course.exercises.values():
            if exercise.cassette:
                path = Path(cassette_dir) / exercise.cassette
                cassette = load_cassette(path)
                cassettes[path] = (cassette, relabel(cassette, old, new))
    Path(course_toml).write_text(toml_text.replace(line, f'chat_model = "{new}"'), encoding="utf-8")
    for path, nb in notebooks.items():
        nbformat.write(nb, path)
    for path, (cassette, _) in cassettes.items():
        save_cassette(cassette, path)
    load_course.cache_clear()  # course.toml read again in this process gives the new name
    return EndpointSwitch(old, new, tuple(notebooks), tuple(cassettes), sum(n for _, n in cassettes.values()))
