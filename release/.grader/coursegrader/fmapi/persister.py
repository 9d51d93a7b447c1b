"""How cassettes are stored: one readable JSON file each, secrets redacted."""
from __future__ import annotations

import json
import re
from pathlib import Path

from .cassette import Cassette, Interaction
from .scripted import ScriptedInteraction

FORMAT_VERSION = 1
REDACTED_TOKEN = "<redacted-token>"
_TOKEN_PATTERNS = (
    re.compile(r"dapi[0-9a-f]{16,}"),  # Databricks personal access tokens
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._\-]+"),
)


def load_cassette(path: Path) -> Cassette:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("cassette_format") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported cassette_format {data.get('cassette_format')!r}")
    interactions = [
        Interaction(id=i["id"], title=i.get("title", ""), request=i["request"], responses=i["responses"])
        for i in data["interactions"]
    ]
    scripted = [ScriptedInteraction(**s) for s in data.get("scripted", [])]
    return Cassette(name=data["name"], interactions=interactions, meta=data.get("meta", {}), scripted=scripted)


def load_cassettes(directory: Path) -> list[Cassette]:
    return [load_cassette(p) for p in sorted(Path(directory).glob("*.json"))]


def redact(text: str, secrets: dict[str, str]) -> str:
    """Replace each secret (e.g. the real host) with its placeholder, then tokens."""
    for secret, placeholder in secrets.items():
        if secret:
            text = text.replace(secret, placeholder)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(REDACTED_TOKEN, text)
    return text


def save_cassette(cassette: Cassette, path: Path, secrets: dict[str, str] | None = None) -> None:
    data = {
        "cassette_format": FORMAT_VERSION,
        "name": cassette.name,
        "meta": cassette.meta,
        "interactions": [
            {"id": i.id, "title": i.title, "request": i.request, "responses": i.responses}
            for i in cassette.interactions
        ],
    }
    if cassette.scripted:
        data["scripted"] = [s.to_json() for s in cassette.scripted]
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(redact(text, secrets or {}), encoding="utf-8")
