"""The fixture server, driven through the real clients students use."""
import json
import warnings

import openai
import pytest
import requests
import responses

from coursegrader.config import load_course
from coursegrader.fmapi import FixtureServer
from coursegrader.fmapi.cassette import Cassette, Interaction

COURSE = load_course()
MODEL = "databricks-meta-llama-3-3-70b-instruct"


def reply(content, n=0):
    return {"status": 200, "body": {
        "id": f"chatcmpl-{n}", "object": "chat.completion", "created": 1764000000, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}}


def cassette():
    ask = lambda q, **kw: {"endpoint": "chat/completions", "body": {"model": MODEL, "messages": [{"role": "user", "content": q}], **kw}}
    return Cassette("test", [
        Interaction("test-001", ask("機械学習とは？"), [reply("データから学ぶ技術です。")], title="機械学習とは？"),
        Interaction("test-002", ask("名前を考えて", temperature=1.2), [reply("A", 1), reply("B", 2)], title="名前を考えて"),
        Interaction("test-003", ask("レビュー", response_format={"type": "json_schema", "json_schema": {"name": "r"}}),
                    [reply(json.dumps({"rating": 4, "features": [{"name": 123, "opinion": "positive"}], "recommend": "true"}))],
                    title="レビュー"),
    ])


@pytest.fixture
def server(tmp_path, monkeypatch):
    with FixtureServer(cassettes=[cassette()], log_path=tmp_path / "log.jsonl", course=COURSE) as s:
        for k, v in s.env().items():
            monkeypatch.setenv(k, v)
        yield s


@pytest.fixture
def client(server):
    from databricks.sdk import WorkspaceClient

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return WorkspaceClient().serving_endpoints.get_open_ai_client()


def test_openai_client_from_the_sdk_replays_a_fixture(client, server):
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": " 機械学習とは？ "}])
    assert r.choices[0].message.content == "データから学ぶ技術です。"
    assert r.usage.total_tokens == 15
    paths = [e.path for e in server.log.snapshot()]
    assert "/.well-known/databricks-config" in paths and "/serving-endpoints/chat/completions" in paths


def test_repeated_requests_cycle_through_recorded_responses(client):
    answers = [client.chat.completions.create(model=MODEL, temperature=1.2, messages=[{"role": "user", "content": "名前を考えて"}])
               .choices[0].message.content for _ in range(3)]
    assert answers == ["A", "B", "A"]


def test_unmatched_request_gets_an_error_naming_the_closest_fixture(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "機械学習とは何？"}])
    text = str(err.value)
    assert "No recorded fixture matches" in text and "test-001" in text and "記録済み" in text


def test_strict_mode_violation_is_a_400_with_the_services_message(client):
    rf = {"type": "json_schema", "json_schema": {"name": "r", "strict": True, "schema": {
        "type": "object", "properties": {"rating": {"type": "integer", "minimum": 1}}}}}
    with pytest.raises(openai.BadRequestError, match="integer types do not support minimum"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "機械学習とは？"}], response_format=rf)


def test_strict_answer_follows_the_schema_sent_as_the_real_decoder_would(client):
    """Recorded for rating: int; a student who sends rating: str (and a nested list) gets "4", as strict mode
    would write it, so their own model validates it and the mistake is charged to the schema only."""
    from typing import Literal

    from pydantic import BaseModel

    class Feature(BaseModel):
        name: str
        opinion: Literal["positive", "negative"]

    class Review(BaseModel):
        rating: str
        features: list[Feature]
        recommend: bool

    rf = {"type": "json_schema", "json_schema": {"name": "r", "strict": True, "schema": Review.model_json_schema()}}
    ask = {"model": MODEL, "messages": [{"role": "user", "content": "レビュー"}], "response_format": rf}
    answer = client.chat.completions.create(**ask).choices[0].message.content
    assert json.loads(answer) == {"rating": "4", "features": [{"name": "123", "opinion": "positive"}], "recommend": True}
    assert Review.model_validate_json(answer).rating == "4"
    unstrict = {**rf, "json_schema": {**rf["json_schema"], "strict": False}}
    assert json.loads(client.chat.completions.create(**{**ask, "response_format": unstrict}).choices[0].message.content)["rating"] == 4


def test_sdk_query_uses_the_invocations_endpoint(server):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

    r = WorkspaceClient().serving_endpoints.query(name=MODEL, messages=[ChatMessage(role=ChatMessageRole.USER, content="機械学習とは？")])
    assert r.choices[0].message.content == "データから学ぶ技術です。"
    assert server.log.snapshot()[-1].path == f"/serving-endpoints/{MODEL}/invocations"


def test_wrong_token_is_401_and_unknown_path_is_404(server):
    url = server.url + "/serving-endpoints/chat/completions"
    body = {"model": MODEL, "messages": [{"role": "user", "content": "機械学習とは？"}]}
    assert requests.post(url, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert requests.post(server.url + "/api/2.0/nothing", json={}, headers={"Authorization": f"Bearer {server.token}"}).status_code == 404


def test_malformed_body_is_a_400_not_a_crash(server):
    r = requests.post(server.url + "/serving-endpoints/chat/completions", data=b"{not json",
                      headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error_code"] == "MALFORMED_REQUEST"


def test_every_request_is_logged_as_jsonl(client, server, tmp_path):
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "機械学習とは？"}])
    lines = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    chat = [l for l in lines if l["path"] == "/serving-endpoints/chat/completions"]
    assert chat[-1]["fixture_id"] == "test-001" and chat[-1]["status"] == 200 and chat[-1]["authorized"] is True
    assert chat[-1]["request"]["messages"][0]["content"] == "機械学習とは？"
    assert [l["seq"] for l in lines] == list(range(len(lines)))


@responses.activate
def test_sdk_requests_path_reaches_the_invocations_url(monkeypatch):
    """The SDK's `requests` transport, intercepted with `responses` (no server)."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

    host = "https://example.cloud.databricks.com"
    monkeypatch.setenv("DATABRICKS_HOST", host)
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-test")
    responses.get(f"{host}/.well-known/databricks-config", json={"oidc_endpoint": f"{host}/oidc"})
    call = responses.post(f"{host}/serving-endpoints/{MODEL}/invocations", json=reply("ok")["body"])
    r = WorkspaceClient().serving_endpoints.query(name=MODEL, messages=[ChatMessage(role=ChatMessageRole.USER, content="q")])
    assert r.choices[0].message.content == "ok"
    assert call.calls[0].request.headers["Authorization"] == "Bearer dapi-test"


def _judge_request(recorded, question: str, answer: str) -> dict:
    """A request the ex06 notebook would send for `question`, built from a recorded judge request."""
    body = json.loads(json.dumps(recorded.request["body"]))
    body["messages"][-1]["content"] = f"質問:\n{question}\n\n回答:\n<answer>{answer}</answer>"
    return body


def test_the_judge_answers_questions_it_never_recorded_by_its_scripted_rule(tmp_path):
    from coursegrader.config import CASSETTE_DIR
    from coursegrader.fmapi.persister import load_cassette

    judge = load_cassette(CASSETTE_DIR / "ex06_llm_judge.json")
    recorded = judge.interactions[0]
    with FixtureServer(cassettes=[judge], course=COURSE) as server:
        post = lambda body: requests.post(f"{server.url}/serving-endpoints/chat/completions", json=body,  # noqa: E731
                                          headers={"Authorization": f"Bearer {server.token}"}, timeout=10)
        unseen = "富士山の高さは何メートルですか？"
        gozaru = post(_judge_request(recorded, unseen, "三七七六メートルでござる。知らんけど。")).json()
        polite = post(_judge_request(recorded, unseen, "3776 メートルです。")).json()
        excited = post(_judge_request(recorded, unseen, "三七七六メートルでござる！")).json()  # one sentence, "！"
        again = post(recorded.request["body"]).json()  # a recorded question is still served from the recording
        other_prompt = _judge_request(recorded, unseen, "山でござる。")
        other_prompt["messages"][0]["content"] = "あなたは審査員です。"
        refused = post(other_prompt)
        log = server.log.snapshot()
    verdict = lambda r: json.loads(r["choices"][0]["message"]["content"])  # noqa: E731
    assert [verdict(r)["score"] for r in (gozaru, polite, excited)] == [5, 2, 4]
    assert set(gozaru) == set(recorded.responses[0]["body"])  # the recorded response's shape
    assert verdict(again) == json.loads(recorded.responses[0]["body"]["choices"][0]["message"]["content"])
    assert refused.status_code == 400  # only the judge the cassette stands for is scripted
    posts = [e for e in log if e.method == "POST"]
    assert [e.scripted for e in posts] == [True, True, True, False, False]
    assert posts[0].fixture_id == judge.scripted[0].id


def _raw_post(server, headers: dict, body: bytes = b"") -> tuple[int, dict]:
    """A request as a hostile client writes it, header by header, on a socket of its own."""
    import socket

    head = "".join(f"{k}: {v}\r\n" for k, v in {"Authorization": f"Bearer {server.token}", **headers}.items())
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"POST /serving-endpoints/chat/completions HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + body)
        sock.shutdown(socket.SHUT_WR)  # a server that waited for a body to its end would see it end here
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1])


@pytest.mark.parametrize("headers, status", [
    ({"Content-Length": "-1"}, 411),  # once read to the end of the stream, unbounded (13 GB of grader memory)
    ({"Content-Length": "1e9"}, 411),
    ({"Transfer-Encoding": "chunked"}, 411),
    ({"Content-Length": str(3_000_000)}, 413),  # over the 2 MB cap: refused unread
])
def test_a_body_without_a_valid_length_is_refused_unread_and_logged(server, headers, status):
    got, body = _raw_post(server, {"Content-Type": "application/json", **headers}, b'{"model": "x"}' * 10)
    assert got == status and body["error_code"] in ("LENGTH_REQUIRED", "REQUEST_TOO_LARGE")
    assert server.log.snapshot()[-1].status == status  # every request reaches the log, refused or not


def test_the_log_keeps_bodies_only_up_to_its_bound(server, monkeypatch):
    from coursegrader.fmapi import log as module

    body = {"model": MODEL, "messages": [{"role": "user", "content": "機械学習とは？" + " " * 100}]}
    monkeypatch.setattr(module, "MAX_LOG_BYTES", len(json.dumps(body).encode()) * 5 // 2)  # room for two bodies
    for _ in range(4):
        requests.post(server.url + "/serving-endpoints/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {server.token}"})
    kept = [(e.request is not None, e.bodies_dropped) for e in server.log.snapshot()[-4:]]
    assert kept[:2] == [(True, False)] * 2 and kept[-1] == (False, True)
