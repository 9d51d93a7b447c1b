"""Scripted interactions: a rule that answers requests no recording covers, in a recorded answer's shape.

A cassette may list them under "scripted". Each names its rule, the request it stands for (a template:
`{question}` matches any text there) and a recorded response whose shape the answer copies. The server
tries them only after every recorded interaction; what they serve is logged with `"scripted": true`,
and the grade report says so. Today: the ex06 LLM judge for eval questions that were never recorded
(the gpu profile's eval set is the real dataset's split).
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Callable

from ..metrics.gozaru import is_gozaru
from . import matchers

WILDCARD = "{question}"


def gozaru_judge(body: dict) -> str:
    """The stand-in judge: an answer in ござる style scores 5, any other 2."""
    user = next((m for m in reversed(body.get("messages") or []) if m.get("role") == "user"), {})
    found = matchers.ANSWER_TAG.search(str(user.get("content") or ""))
    if found and is_gozaru(found.group(1)):
        verdict = {"score": 5, "reason": "質問に答えており、語尾も一貫して「ござる」口調です。"}
    else:
        verdict = {"score": 2, "reason": "「ござる」口調になっていません。"}
    return json.dumps(verdict, ensure_ascii=False)


RULES: dict[str, Callable[[dict], str]] = {"gozaru_judge": gozaru_judge}


@dataclass
class ScriptedInteraction:
    id: str
    rule: str
    request: dict   # {"endpoint", "body"}: the template
    response: dict  # {"status", "body"}: a recorded response, whose shape the answer copies
    title: str = ""

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"scripted interaction {self.id}: unknown rule {self.rule!r}")
        template = matchers.signature(self.request["body"])
        self._template = {**template, "messages": []}
        self._messages = [(m[0], _pattern(m[1]), m[2:]) for m in template["messages"]]

    def matches(self, live: dict) -> bool:
        if {**live, "messages": []} != self._template or len(live["messages"]) != len(self._messages):
            return False
        return all(role == m[0] and text.fullmatch(m[1]) and rest == m[2:]
                   for (role, text, rest), m in zip(self._messages, live["messages"]))

    def respond(self, body: dict) -> dict:
        response = copy.deepcopy(self.response)
        response["body"]["choices"][0]["message"]["content"] = RULES[self.rule](body)
        return response

    def to_json(self) -> dict:
        return {"id": self.id, "title": self.title, "rule": self.rule, "request": self.request, "response": self.response}


def _pattern(normalized: str) -> re.Pattern:
    return re.compile(".+".join(re.escape(part) for part in normalized.split(WILDCARD)), re.S)
