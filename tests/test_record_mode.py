"""Record mode against a second local server standing in for a real workspace."""
import json
import shutil

import pytest

from coursegrader.config import load_course
from coursegrader.fmapi import FixtureServer
from coursegrader.fmapi.persister import load_cassette
from coursegrader.fmapi.server import Upstream

MODEL = "databricks-meta-llama-3-3-70b-instruct"
TOKEN = "dapi0123456789abcdef0123456789ab"
COURSE = load_course()


def ask(server, question, temperature=0.0):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/serving-endpoints", api_key=server.token)
    return client.chat.completions.create(model=MODEL, temperature=temperature,
                                          messages=[{"role": "user", "content": question}])


def test_record_then_replay(tmp_path, scripted_workspace):
    dest = tmp_path / "recorded.json"
    with FixtureServer(upstream=Upstream(scripted_workspace, TOKEN), record_to=dest, course=COURSE) as recorder:
        first = ask(recorder, "LLMは何の略ですか？").choices[0].message.content
        names = [ask(recorder, "新しいカフェの名前を1つだけ考えてください。名前だけを答えてください。", 1.2).choices[0].message.content
                 for _ in range(3)]
    text = dest.read_text()
    assert TOKEN not in text and scripted_workspace not in text, "token and workspace host must be redacted"
    cassette = load_cassette(dest)
    assert len(cassette.interactions) == 2 and len(cassette.interactions[1].responses) == 3
    body = cassette.interactions[0].responses[0]["body"]
    assert {"id", "object", "created", "model", "choices", "usage"} <= set(body)

    with FixtureServer(cassettes=[cassette], course=COURSE) as replay:
        assert ask(replay, "LLMは何の略ですか？").choices[0].message.content == first
        again = [ask(replay, "新しいカフェの名前を1つだけ考えてください。名前だけを答えてください。", 1.2).choices[0].message.content
                 for _ in range(3)]
    assert again == names


def test_redaction_of_hosts_and_tokens():
    from coursegrader.fmapi.persister import redact

    text = json.dumps({"url": "https://adb-123.azuredatabricks.net/x", "auth": "Bearer dapiabcdef0123456789abcdef"})
    out = redact(text, {"https://adb-123.azuredatabricks.net": "https://example.cloud.databricks.com"})
    assert "adb-123" not in out and "dapiabcdef" not in out and "example.cloud.databricks.com" in out


def test_committed_cassettes_hold_no_secrets_or_hosts():
    from coursegrader.config import CASSETTE_DIR

    for path in CASSETTE_DIR.glob("*.json"):
        text = path.read_text()
        assert "127.0.0.1" not in text and "dapi" not in text.replace("<redacted-token>", ""), path
        assert "HIDDEN" not in text and "BEGIN SOLUTION" not in text, path


@pytest.mark.slow
def test_recording_again_keeps_the_scripted_interactions_and_reproduces_the_verdicts(tmp_path, scripted_workspace):
    """record --scripted --exercise ex06 over the committed cassette: the hand-written scripted interactions and
    their note stay, and the recorded judge verdicts are the committed ones (the rule is deterministic)."""
    from autograder.record import record_exercise
    from coursegrader.config import CASSETTE_DIR

    committed = load_cassette(CASSETTE_DIR / "ex06_llm_judge.json")
    shutil.copy(CASSETTE_DIR / "ex06_llm_judge.json", tmp_path)
    again = load_cassette(record_exercise("ex06", Upstream(scripted_workspace, TOKEN), COURSE, tmp_path))
    assert [s.to_json() for s in again.scripted] == [s.to_json() for s in committed.scripted] != []
    assert again.meta["scripted"] == committed.meta["scripted"]
    verdicts = lambda c: [[r["body"]["choices"][0]["message"]["content"] for r in i.responses]  # noqa: E731
                          for i in c.interactions]
    assert verdicts(again) == verdicts(committed)
