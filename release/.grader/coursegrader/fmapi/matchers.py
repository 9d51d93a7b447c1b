"""How a live request matches a recorded one: on what matters, not on bytes.

A request is first reduced to a signature (model, normalised messages,
response_format name, tool names, tool_choice, temperature); each matcher
compares one field of two signatures and says why they differ.
"""
from __future__ import annotations

import difflib
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

_SPACES = re.compile(r"\s+")
# Text inside <answer>…</answer> is not matched: an LLM judge's request quotes the model
# answer under review, which differs per student; the recorded verdicts are served in turn.
ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S)


def normalize_text(text) -> str:
    if isinstance(text, list):  # content parts: keep the text parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if text is None:
        return ""
    text = ANSWER_TAG.sub("<answer>…</answer>", str(text))
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def canonical_json(text) -> str:
    """JSON text in canonical form, or the normalised text if it is not JSON."""
    if isinstance(text, (dict, list)):
        return json.dumps(text, ensure_ascii=False, sort_keys=True)
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return normalize_text(text)


def _tool_call_signature(call: dict) -> tuple:
    fn = call.get("function") or {}
    return (fn.get("name"), canonical_json(fn.get("arguments") or "{}"))


def _message_signature(msg: dict) -> tuple:
    role = msg.get("role")
    if role == "tool":
        return (role, canonical_json(msg.get("content")))
    calls = tuple(_tool_call_signature(c) for c in msg.get("tool_calls") or ())
    return (role, normalize_text(msg.get("content")), calls)


def _tool_choice(body: dict) -> str | None:
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return "function:" + str((choice.get("function") or {}).get("name"))
    if choice is None and body.get("tools"):
        return "auto"  # the API's default when tools are given
    return choice


def signature(body: dict) -> dict:
    rf = body.get("response_format") or {}
    schema_name = (rf.get("json_schema") or {}).get("name") if rf.get("type") == "json_schema" else rf.get("type")
    temperature = body.get("temperature")
    return {
        "model": body.get("model"),
        "messages": [_message_signature(m) for m in body.get("messages") or []],
        "response_format": schema_name,
        "tools": sorted((t.get("function") or {}).get("name", "") for t in body.get("tools") or []),
        "tool_choice": _tool_choice(body),
        "temperature": None if temperature is None else float(temperature),
    }


def signature_only(body: dict) -> dict:
    """The smallest request body with the same signature: no schema or tool parameter bodies.
    Cassettes shipped to students carry this, so they show no solution schema or tool spec."""
    slim = {k: body[k] for k in ("model", "messages", "tool_choice", "temperature") if k in body}
    rf = body.get("response_format")
    if rf:
        slim["response_format"] = ({"type": "json_schema", "json_schema": {"name": (rf.get("json_schema") or {}).get("name")}}
                                   if rf.get("type") == "json_schema" else {"type": rf.get("type")})
    if body.get("tools"):
        slim["tools"] = [{"type": "function", "function": {"name": (t.get("function") or {}).get("name", "")}}
                         for t in body["tools"]]
    return slim


@dataclass(frozen=True)
class Matcher:
    name: str
    differs: Callable[[dict, dict], str | None]  # recorded sig, live sig -> reason or None


def _field(name: str, label: str) -> Matcher:
    def differs(rec, live):
        if rec[name] != live[name]:
            return f"{label}: expected {rec[name]!r}, got {live[name]!r}"
        return None
    return Matcher(name, differs)


def _messages(rec, live):
    a, b = rec["messages"], live["messages"]
    if len(a) != len(b):
        return f"messages: expected {len(a)} messages ({_roles(a)}), got {len(b)} ({_roles(b)})"
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"messages[{i}] ({x[0]}) differs: expected {_short(x)!r}, got {_short(y)!r}"
    return None


def _roles(sig_messages) -> str:
    return ",".join(m[0] for m in sig_messages) or "-"


def _short(msg_sig, limit=60) -> str:
    text = msg_sig[1] if msg_sig[1] else str(msg_sig[2:])
    return text if len(text) <= limit else text[:limit] + "…"


DEFAULT_MATCHERS: tuple[Matcher, ...] = (
    _field("model", "model"),
    Matcher("messages", _messages),
    _field("response_format", "response_format schema name"),
    _field("tools", "tool names"),
    _field("tool_choice", "tool_choice"),
    _field("temperature", "temperature"),
)


def mismatches(recorded: dict, live: dict, matchers=DEFAULT_MATCHERS) -> list[str]:
    return [r for m in matchers if (r := m.differs(recorded, live))]


HINT_CHARS = 2000  # texts compared for the 'closest fixture' hint only up to here: ~2 ms per fixture, any request


def similarity(recorded: dict, live: dict, matchers=DEFAULT_MATCHERS) -> float:
    """Rank for 'closest fixture' hints: matching fields first, then text (its first HINT_CHARS)."""
    fields = sum(1 for m in matchers if m.differs(recorded, live) is None)
    text = difflib.SequenceMatcher(None, repr(recorded["messages"])[:HINT_CHARS],
                                   repr(live["messages"])[:HINT_CHARS]).ratio()
    return fields + text
