"""What outside-the-kernel checks read.

Trusted: the fixture server's request log (kept in the grader process) and the
instructor's source notebook. Untrusted: claims, i.e. values the student's
kernel reported; a check may use a claim only to compare it with trusted data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

from coursegrader.config import Course, Profile
from coursegrader.fmapi.log import LogEntry
from coursegrader.fmapi.matchers import normalize_text
from coursegrader.fmapi.server import CHAT_PATH, INVOCATIONS_PATH
from coursegrader.grading.results import Verdict
from coursegrader.notebook import CLAIM_MIMETYPE, graded_cells, is_solution, solution_cells
from coursegrader.precision import Precision, machine_precision
from coursegrader.problems import wording

from .shared_work import SharedLookups, WaitingProcesses



def ok(message: str = "OK") -> Verdict:
    return Verdict(True, message)


def fail(code: str, **fields) -> Verdict:
    """A failed check: `code` names its wording in coursegrader/problems.py; `fields` fill in its placeholders."""
    ja, _ = wording(code, **fields)
    return Verdict(False, ja, code, fields)


@dataclass
class Exchange:
    """One served chat request and its response."""
    request: dict
    response: dict
    status: int
    authorized: bool

    @property
    def messages(self) -> list[dict]:
        return self.request.get("messages") or []

    @property
    def reply(self) -> dict:
        choices = self.response.get("choices") or [{}]
        return choices[0].get("message") or {}

    @property
    def schema_name(self) -> str | None:
        rf = self.request.get("response_format") or {}
        return (rf.get("json_schema") or {}).get("name")


@dataclass
class Evidence:
    log: list[LogEntry]  # the fixture server's, as the grader kept it
    inputs: dict
    source_literals: dict[str, dict]  # grade_id -> {name: literal}
    course: Course  # the course graded for (its chat model, MLflow names, limits, timeouts)
    claims: dict[str, dict] = field(default_factory=dict)  # grade_id -> {name: value}
    profile: Profile | None = None
    work_dir: Path | None = None  # where the student's notebook ran (its saved artifacts)
    errors: dict[str, list] = field(default_factory=dict)  # grade_id -> [(ename, evalue)]: for messages only
    adapter_dir: str | None = None  # ex06: the adapter the grader supplied to the kernel
    notebook: object = None  # the graded notebook as nbgrader wrote it (never a file the kernel wrote)
    sandboxed: bool = True  # run student code the checks start (ex06) in the sandbox
    shared: SharedLookups = field(default_factory=SharedLookups, repr=False)  # lookups the checks share
    processes: WaitingProcesses = field(default_factory=WaitingProcesses, repr=False)  # started with the kernel

    @property
    def chat_model(self) -> str:
        """The model every chat request must name (course.toml [course] chat_model)."""
        return self.course.chat_model

    @property
    def precision(self) -> Precision:
        """The precision the student's kernel ran its model in here, by the notebooks' rule: the grader's own model
        runs use it too."""
        return machine_precision(self.course.bf16_min_capability)

    @cached_property
    def exchanges(self) -> list[Exchange]:
        """The served chat requests, parsed from the log once."""
        out = []
        for e in self.log:
            if e.is_post and (e.path == CHAT_PATH or INVOCATIONS_PATH.match(e.path)) and e.request:
                out.append(Exchange(e.request, e.response or {}, e.status, bool(e.authorized)))
        return out

    def served(self, where: Callable[[Exchange], bool] = lambda x: True) -> list[Exchange]:
        """Successful (HTTP 200) exchanges that satisfy `where`."""
        return [x for x in self.exchanges if x.status == 200 and where(x)]

    def claim(self, grade_id: str, name: str):
        cell = self.claims.get(grade_id) or {}
        if name not in cell:
            raise KeyError(name)
        return cell[name]

    def claimed(self, grade_id: str, name: str, kind: type):
        """The claim if there is one of this type, else None (e.g. an answer for the grader to confirm first)."""
        value = (self.claims.get(grade_id) or {}).get(name)
        return value if isinstance(value, kind) else None


def claim_matches(ev: "Evidence", grade_id: str, name: str, expected, /, mismatch: str | None = None,
                  alike: Callable[[object, object], bool] | None = None, **fields) -> Verdict:
    """Compare a value the kernel reported with one computed from trusted data.

    For a dict, only the expected keys are compared (extra keys are allowed); `alike(claimed, expected)`
    replaces equality, value by value. A mismatch fails with `fail(mismatch, **fields)`, or without
    `mismatch` with `claim_mismatch` (naming `expected`)."""
    try:
        claimed = ev.claim(grade_id, name)
    except KeyError:
        return fail("claim_missing", name=name, grade_id=grade_id)
    equal = alike or (lambda a, b: a == b)
    if isinstance(expected, dict):
        same = isinstance(claimed, dict) and all(k in claimed and equal(claimed[k], v) for k, v in expected.items())
    else:
        same = equal(claimed, expected)
    if not same:
        return fail(mismatch, **fields) if mismatch else fail("claim_mismatch", name=name, expected=expected)
    return ok()


def same_messages(actual: list[dict], expected: list[tuple[str, str]]) -> bool:
    """Role and normalised text equality for plain (non-tool) messages."""
    if len(actual) != len(expected):
        return False
    return all(m.get("role") == r and normalize_text(m.get("content")) == normalize_text(t)
               for m, (r, t) in zip(actual, expected))


def claims_in(nb) -> dict[str, dict]:
    """grade_id -> {name: value} reported by `report()` in that cell's outputs (a solution cell's: in its answer's
    cells, an answer being split over several)."""
    claims: dict[str, dict] = {}
    for grade_id, graded in graded_cells(nb):
        for cell in (solution_cells(nb, grade_id) if is_solution(graded) else [graded]):
            if cell.get("cell_type") == "code":
                _claims_of(cell, claims.setdefault(grade_id, {}))
    return {gid: found for gid, found in claims.items() if found}


def _claims_of(cell, found: dict) -> None:
    """The claims `report()` made in one cell's outputs, into found (a later one of the same name wins)."""
    for output in cell.get("outputs", []):
        data = output.get("data", {}).get(CLAIM_MIMETYPE)
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                continue
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            found[data["name"]] = data.get("value")
