"""coursegrader.grade_file: grade.json as typed records, checked against docs/grade.schema.json.
Fast: reads docs/grade-json.md's example; grades nothing."""
from __future__ import annotations

import copy
import json
import re

import jsonschema
import pytest

from coursegrader.config import REPO_ROOT
from coursegrader.grade_file import SCHEMA_FILE, InvalidGradeFile, read_grade, validate
from coursegrader.statuses import ExerciseStatus, TierName

EXAMPLE = json.loads(re.search(r"```json\n(.*?)```", (REPO_ROOT / "docs" / "grade-json.md").read_text(encoding="utf-8"),
                               re.S).group(1))
SCHEMA = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def test_the_example_reads_as_typed_records_in_the_files_order():
    grade = read_grade(EXAMPLE)
    assert grade.tier is TierName.OFFICIAL and grade.profile == "cpu" and (grade.score, grade.max_score) == (55, 66)
    assert list(grade.exercises) == list(EXAMPLE["exercises"])
    ex03 = grade.exercises["ex03"]
    assert ex03.id == "ex03" and ex03.status is ExerciseStatus.ERROR and ex03.problems[0].fatal
    assert [c.id for c in ex03.checks] == [c["id"] for c in EXAMPLE["exercises"]["ex03"]["checks"]]
    assert grade.exercises["ex01"].checks[0].evidence[0].id == "uses_sdk_client"


def test_fields_older_files_lack_read_as_the_docs_say():
    """No bonus fields (0 and False) and no profile (None); numbers kept as written (1 stays 1, 1.0 stays 1.0)."""
    grade = read_grade(EXAMPLE)
    assert (grade.bonus_score, grade.bonus_max_score, grade.exercises["ex01"].bonus) == (0, 0, False)
    older = {k: v for k, v in EXAMPLE.items() if k != "profile"}
    older["exercises"] = {"ex01": {**EXAMPLE["exercises"]["ex01"], "score": 10}}
    grade = read_grade(older)
    assert grade.profile is None
    assert type(grade.exercises["ex01"].score) is int and type(grade.exercises["ex01"].max_score) is float


def _mutated(edit) -> dict:
    data = copy.deepcopy(EXAMPLE)
    edit(data)
    return data


NOT_GRADE_JSON = {
    "unknown status": lambda d: d["exercises"]["ex01"].update(status="done"),
    "negative score": lambda d: d["exercises"]["ex01"]["checks"][0].update(score=-1),
    "unknown field": lambda d: d.update(extra=1),
    "missing field": lambda d: d["exercises"]["ex01"]["checks"][0].pop("evidence"),
    "problem without fatal": lambda d: d["exercises"]["ex03"]["problems"][0].pop("fatal"),
    "bad exercise id": lambda d: d["exercises"].update(exercise7=d["exercises"]["ex01"]),
    "unknown tier": lambda d: d.update(tier="preview"),
    "other schema version": lambda d: d.update(schema_version=2),
    "test error not a string": lambda d: d["exercises"]["ex01"]["checks"][0]["test"].update(error=1),
    "bonus not a boolean": lambda d: d["exercises"]["ex01"].update(bonus="yes"),
}


@pytest.mark.parametrize("case", NOT_GRADE_JSON)
def test_what_the_schema_refuses_is_refused_here(case):
    """The compiled validator refuses what jsonschema (draft 2020-12) refuses, as a ValueError."""
    data = _mutated(NOT_GRADE_JSON[case])
    assert not SCHEMA.is_valid(data)
    with pytest.raises(InvalidGradeFile) as raised:
        read_grade(data)
    assert isinstance(raised.value, ValueError)


def test_the_example_is_valid_for_both_validators():
    SCHEMA.validate(EXAMPLE)
    validate(EXAMPLE)


def test_a_file_that_is_not_json_is_a_value_error(tmp_path):
    (tmp_path / "grade.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError):
        read_grade(tmp_path / "grade.json")
