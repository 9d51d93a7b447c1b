"""Synthetic Evidence for the evidence checks' unit tests, built from the repository's own data.

Inputs and literals come from the instructor's source notebooks; request logs come from the
recorded cassettes (fixtures/fmapi), replayed the way the fixture server logs them. A "correct"
log is the one the solution produces (the cassettes were recorded from it); a failing case edits
exactly what one check looks for.

Imported as a sibling module (`import builders`): pytest's default import mode puts tests/unit
on sys.path, as tests/unit has no __init__.py.
"""
from __future__ import annotations

import copy
import json
from dataclasses import replace
from functools import lru_cache
from typing import Callable, Iterable

import nbformat

from autograder.evidence import Evidence
from coursegrader.config import CASSETTE_DIR, SOURCE_DIR, load_course
from coursegrader.fmapi.log import LogEntry
from coursegrader.fmapi.matchers import normalize_text
from coursegrader.fmapi.persister import load_cassettes
from coursegrader.fmapi.server import CHAT_PATH, error_body
from coursegrader.notebook import code_literals, find_cell, inputs_of


# -- the instructor's notebooks ------------------------------------------------------------------

@lru_cache(maxsize=None)
def _source_nb(exercise_id: str):
    return nbformat.read(SOURCE_DIR / exercise_id / f"{exercise_id}.ipynb", as_version=4)


def source_notebook(exercise_id: str):
    """A private copy of source/<ex>/<ex>.ipynb (the solution is in it)."""
    return copy.deepcopy(_source_nb(exercise_id))


def inputs(exercise_id: str) -> dict:
    """The literals of the exercise's `<ex>_inputs` cell."""
    return copy.deepcopy(inputs_of(_source_nb(exercise_id), exercise_id))


def source_literals(exercise_id: str) -> dict[str, dict]:
    return copy.deepcopy(code_literals(_source_nb(exercise_id)))


def cell_source(exercise_id: str, grade_id: str) -> str:
    return find_cell(_source_nb(exercise_id), grade_id).source


def cpu_profile():
    return load_course().profile("cpu")


def machine_precision():
    """The precision the notebooks' rule gives on this machine (course.toml's threshold)."""
    from coursegrader.precision import machine_precision

    return machine_precision(load_course().bf16_min_capability)


# -- request logs --------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _cassettes() -> dict:
    return {c.name: c for c in load_cassettes(CASSETTE_DIR)}


def cassette(exercise_id: str):
    """The exercise's cassette, as course.toml names it."""
    name = load_course().exercises[exercise_id].cassette.removesuffix(".json")
    return _cassettes()[name]


def log_entry(request: dict, response: dict, *, status: int = 200, authorized: bool = True,
              path: str = CHAT_PATH, fixture_id: str | None = None, seq: int = 0) -> LogEntry:
    """One POST as the fixture server logs it (server._Handler.do_POST)."""
    return LogEntry("POST", path, status, seq=seq, authorized=authorized, endpoint="chat/completions",
                    request=copy.deepcopy(request), response=copy.deepcopy(response), fixture_id=fixture_id)


def unauthorized_entry(path: str = CHAT_PATH, seq: int = 0) -> LogEntry:
    """A POST without the workspace token: the server logs it without parsing the body."""
    return LogEntry("POST", path, 401, seq=seq, authorized=False,
                    response=error_body(401, "UNAUTHENTICATED", "Invalid access token."))


def rejected(entry: LogEntry, code: str = "NO_MATCHING_FIXTURE") -> LogEntry:
    """The same request answered with a 400 (as an unmatched or invalid request is)."""
    return replace(copy.deepcopy(entry), status=400, fixture_id=None, response=error_body(400, code, "rejected"))


def cassette_log(exercise_id: str) -> list[LogEntry]:
    """What the solution's run logs: every recorded request, once per recorded response, in order."""
    log = []
    for interaction in cassette(exercise_id).interactions:
        for response in interaction.responses:
            log.append(log_entry(interaction.request["body"], response["body"], status=response["status"],
                                 fixture_id=interaction.id, seq=len(log)))
    return log


def messages(entry: LogEntry) -> list[dict]:
    return entry.request.get("messages") or []


def reply(entry: LogEntry) -> dict:
    """The assistant message of a logged response."""
    return entry.response["choices"][0]["message"]


def reply_json(entry: LogEntry) -> dict:
    return json.loads(reply(entry)["content"])


def roles(entry: LogEntry) -> list[str]:
    return [m.get("role") for m in messages(entry)]


def last_user(entry: LogEntry) -> str:
    users = [m for m in messages(entry) if m.get("role") == "user"]
    return normalize_text(users[-1].get("content")) if users else ""


def select(log: Iterable[LogEntry], *, user: str | None = None, roles_are: list[str] | None = None,
           where: Callable[[LogEntry], bool] = lambda e: True) -> list[LogEntry]:
    """Entries whose last user message is `user` (normalised), whose message roles are `roles_are`."""
    return [e for e in log if e.request is not None
            and (user is None or last_user(e) == normalize_text(user))
            and (roles_are is None or roles(e) == roles_are)
            and where(e)]


def one(log: Iterable[LogEntry], **how) -> LogEntry:
    found = select(log, **how)
    assert len(found) == 1, f"expected one entry, found {len(found)}"
    return found[0]


def without(log: list[LogEntry], drop: Iterable[LogEntry]) -> list[LogEntry]:
    ids = {id(e) for e in drop}
    return [e for e in log if id(e) not in ids]


def schema_name(entry: LogEntry) -> str | None:
    return ((entry.request.get("response_format") or {}).get("json_schema") or {}).get("name")


# -- Evidence ------------------------------------------------------------------------------------

def evidence(exercise_id: str, log: list[LogEntry] | None = None, claims: dict | None = None, **fields) -> Evidence:
    """Evidence as autograder.executor.CheckExecutor.evidence builds it, from synthetic parts."""
    fields.setdefault("inputs", inputs(exercise_id))
    fields.setdefault("source_literals", source_literals(exercise_id))
    fields.setdefault("course", load_course())
    fields.setdefault("profile", cpu_profile())
    return Evidence(log=list(log or []), claims=copy.deepcopy(claims or {}), **fields)
