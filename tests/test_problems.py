"""One wording source per code: every check failure and exercise-level problem is worded in coursegrader/problems.py."""
import ast
import re
import string
from pathlib import Path

import pytest

from coursegrader.config import load_course
from coursegrader.problems import (_TEXT, CHECK_FAILURES, REGENERATE_DOC, is_listed, problem,
                                   render_problem_codes_doc, texts, wording)

REPO = Path(__file__).resolve().parents[1]
CHECK_FILES = sorted((REPO / "autograder" / "checks").glob("ex*.py"))
EVIDENCE = REPO / "autograder" / "evidence.py"
ALL_CODES = [*_TEXT, *CHECK_FAILURES]
# Codes other code than the checks fails with: claim_matches (evidence.py) and the pipeline (a check that raised).
SHARED = ("claim_missing", "claim_mismatch", "check_crashed")


def _placeholders(text: str) -> dict[str, str]:
    """field name -> its format spec, for every placeholder of a text."""
    found = {}
    for _, name, spec, _ in string.Formatter().parse(text):
        if name is not None:
            assert name.isidentifier(), f"placeholder {{{name}}} in {text!r}: use plain field names"
            found[name] = spec or ""
    return found


def _fields_of(code: str) -> dict[str, str]:
    ja, en = texts(code)
    return {**_placeholders(en), **_placeholders(ja)}


def _dummy(code: str) -> dict:
    """A value for every placeholder: a number where the text formats one (`{value:.4f}`), else a string."""
    return {name: 1.5 if spec else f"<{name}>" for name, spec in _fields_of(code).items()}


def _name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _failures(path: Path) -> list[tuple[str, int, object, set[str] | None]]:
    """(file, line, code, field names) for each `fail(code, …)` and `claim_matches(…, mismatch=code, …)` call.
    The code is None when it is not a string literal; the fields are None when passed with `**`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        fields = None if None in keywords else set(keywords)
        if _name(node.func) == "fail" and node.args:
            code_node = node.args[0]
        elif _name(node.func) == "claim_matches" and "mismatch" in keywords:
            code_node = keywords["mismatch"]
            fields = None if fields is None else fields - {"mismatch", "alike"}
        else:
            continue
        code = code_node.value if isinstance(code_node, ast.Constant) and isinstance(code_node.value, str) else None
        found.append((path.relative_to(REPO).as_posix(), node.lineno, code, fields))
    return found


CHECK_FAILS = [f for path in CHECK_FILES for f in _failures(path)]
EVIDENCE_FAILS = [f for f in _failures(EVIDENCE) if f[2] is not None]


def test_the_checks_are_found():
    assert [p.stem for p in CHECK_FILES] == sorted(load_course().exercises)
    assert len(CHECK_FAILS) > 50, "the ast scan should see every fail(...) of the checks"
    assert {f[2] for f in EVIDENCE_FAILS} == {"claim_missing", "claim_mismatch"}


@pytest.mark.parametrize("where", CHECK_FAILS, ids=lambda f: f"{f[0]}:{f[1]}")
def test_every_check_failure_names_a_worded_code_with_its_fields(where):
    path, line, code, fields = where
    assert code is not None, f"{path}:{line}: give fail() a string literal code (one from coursegrader/problems.py)"
    assert code in _TEXT or code in CHECK_FAILURES, f"{path}:{line}: {code!r} is not in coursegrader/problems.py"
    if fields is not None:
        assert fields == set(_fields_of(code)), (f"{path}:{line}: {code!r} is worded with fields "
                                                  f"{sorted(_fields_of(code))}, the call gives {sorted(fields)}")


def test_the_shared_codes_exist_and_are_not_listed():
    for code in SHARED:
        assert code in CHECK_FAILURES and not is_listed(code)
    for _, _, code, fields in EVIDENCE_FAILS:
        assert fields == set(_fields_of(code)), code


def test_no_code_is_in_both_tables_and_codes_are_snake_case():
    assert not set(_TEXT) & set(CHECK_FAILURES)
    for code in ALL_CODES:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", code), code


def test_check_failures_of_one_exercise_say_which():
    for code in CHECK_FAILURES:
        assert code in SHARED or re.match(r"ex0[1-6]_", code), f"{code}: prefix it with its exercise (exNN_) or make it shared"


@pytest.mark.parametrize("code", ALL_CODES)
def test_every_text_has_japanese_and_english_with_the_same_fields(code):
    ja, en = texts(code)
    assert ja.strip() and en.strip(), code
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", ja), f"{code}: the first text is the Japanese one"
    assert set(_placeholders(ja)) == set(_placeholders(en)), f"{code}: ja and en name different fields"


@pytest.mark.parametrize("code", ALL_CODES)
def test_every_text_formats_with_its_fields(code):
    fields = _dummy(code)
    ja, en = wording(code, **fields)
    for text in (ja, en):
        assert "{" not in text and "}" not in text, f"{code}: unformatted placeholder in {text!r}"
        for name, value in fields.items():
            assert str(value) in text, f"{code}: {{{name}}} is not shown"  # 1.5 shows as 1.50 / 1.5000 too


@pytest.mark.parametrize("code", list(_TEXT))
def test_a_listed_code_is_the_same_problem_the_report_lists(code):
    fields = _dummy(code)
    found = problem(code, **fields)
    assert is_listed(code) and found.code == code
    assert (found.message_ja, found.message_en) == wording(code, **fields)
    assert found.fatal is _TEXT[code][0]


def test_a_failed_check_carries_its_code_fields_and_japanese_message():
    from autograder.evidence import fail

    verdict = fail("ex01_wrong_model", model="databricks-x")
    assert not verdict.passed and verdict.code == "ex01_wrong_model" and verdict.fields == {"model": "databricks-x"}
    assert verdict.message == wording("ex01_wrong_model", model="databricks-x")[0]
    assert "databricks-x" in verdict.message
    listed = fail("mlflow_invalid_metric", metrics="base.bleu=nan")
    assert is_listed(listed.code)
    assert problem(listed.code, **listed.fields).message_ja == listed.message, "the cell and the report say the same"


def test_claim_matches_fails_with_codes():
    from autograder.evidence import Evidence, claim_matches

    ev = Evidence(log=[], inputs={}, source_literals={}, course=load_course(), claims={"c1": {"total": 3}})
    assert claim_matches(ev, "c1", "total", 3).passed
    missing = claim_matches(ev, "c2", "total", 3)
    assert (missing.code, missing.fields) == ("claim_missing", {"name": "total", "grade_id": "c2"})
    default = claim_matches(ev, "c1", "total", 4)
    assert (default.code, default.fields) == ("claim_mismatch", {"name": "total", "expected": 4})
    own = claim_matches(ev, "c1", "total", 4, mismatch="ex04_model_mismatch", expected={"class": "X"})
    assert (own.code, own.fields) == ("ex04_model_mismatch", {"expected": {"class": "X"}})
    hidden = claim_matches(ev, "c1", "total", [1, 2], mismatch="ex02_validation_mismatch", count=2)
    assert hidden.fields == {"count": 2}, "a mismatch names only the fields given: hidden expected values stay hidden"


def test_the_problem_codes_doc_is_up_to_date():
    doc = REPO / "docs" / "problem-codes.md"
    current = doc.read_text(encoding="utf-8") if doc.is_file() else None
    assert current == render_problem_codes_doc(), f"docs/problem-codes.md is out of date; regenerate it with:\n{REGENERATE_DOC}"


def test_the_doc_lists_every_code_once():
    rows = [line for line in render_problem_codes_doc().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == ALL_CODES
    assert all(row.count(" | ") == 4 for row in rows), "a | inside a text must be escaped"


def test_every_check_failure_code_is_used():
    used = {f[2] for f in CHECK_FAILS + EVIDENCE_FAILS}
    unused = set(CHECK_FAILURES) - used - {"check_crashed"}  # check_crashed: the pipeline's, for a check that raised
    assert not unused, f"worded but never failed with: {sorted(unused)}"
