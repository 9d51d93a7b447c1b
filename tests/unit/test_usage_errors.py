"""Only a UsageError is the user's mistake (argparse's message, exit 2); any other error is the grader's (exit 1,
its traceback logged), so a malformed cassette or a JSON decoding error never reads as a typo."""
from __future__ import annotations

import argparse
import json
import logging

import pytest

from coursegrader.cli import run
from coursegrader.config import load_course
from coursegrader.errors import UsageError
from coursegrader.fmapi.persister import load_cassette


def parser_raising(error: Exception) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grader")
    parser.set_defaults(func=lambda args: (_ for _ in ()).throw(error))
    return parser


def test_a_usage_error_is_argparses_exit_2_with_its_message(capsys):
    with pytest.raises(SystemExit) as exited:
        run(parser_raising(UsageError("unknown exercise(s): ex99")), load_course(), [])
    assert exited.value.code == 2 and "unknown exercise(s): ex99" in capsys.readouterr().err


def test_a_malformed_cassette_is_the_graders_error_with_its_traceback(tmp_path, caplog):
    cassette = tmp_path / "ex01.json"
    cassette.write_text(json.dumps({"cassette_format": 99, "interactions": []}), encoding="utf-8")
    with pytest.raises(ValueError) as raised:
        load_cassette(cassette)
    assert not isinstance(raised.value, UsageError)
    with caplog.at_level(logging.ERROR, logger="coursegrader"):
        assert run(parser_raising(raised.value), load_course(), []) == 1
    assert "grader error" in caplog.text and "unsupported cassette_format" in caplog.text
    assert caplog.records[-1].exc_info is not None  # the traceback, not only the message


def test_a_json_decoding_error_is_not_a_usage_error(caplog):
    try:
        json.loads("{")
    except ValueError as err:
        decoding = err
    with caplog.at_level(logging.ERROR, logger="coursegrader"):
        assert run(parser_raising(decoding), load_course(), []) == 1
