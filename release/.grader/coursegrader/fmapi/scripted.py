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


SENTENCE_END = re.compile(r"[。！？!?]+")


def gozaru_judge(body: dict) -> str:
    """The stand-in judge, 1-5: style first (ござる: +3), then detail (more than one sentence: +1) and calm (no
    exclamation mark: +1). So one run's scores differ, and their mean is not their median."""
    user = next((m for m in reversed(body.get("messages") or []) if m.get("role") == "user"), {})
    found = matchers.ANSWER_TAG.search(str(user.get("content") or ""))
    answer = found.group(1) if found else ""
    gozaru = bool(found) and is_gozaru(answer)
    detailed = len([part for part in SENTENCE_END.split(answer) if part.strip()]) > 1
    calm = not re.search(r"[！!]", answer)
    remarks = ["語尾が「ござる」口調です" if gozaru else "「ござる」口調になっていません"]
    remarks += [] if detailed else ["説明が一文だけで短めです"]
    remarks += [] if calm else ["「！」が落ち着きに欠けます"]
    score = min(5, 1 + 3 * gozaru + detailed + calm)
    return json.dumps({"score": score, "reason": "".join(f"{r}。" for r in remarks)}, ensure_ascii=False)


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
