"""The fixture server's request log: one `LogEntry` per request, written and read through that type only.

The server appends entries as it answers; the grader reads a snapshot (trusted: it never leaves the grader's
process); reports write it as JSONL with `LogEntry.to_json`, and the unit tests build their logs from it too.
"""
from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass, fields, replace
from pathlib import Path

MAX_BODY_BYTES = 2_000_000  # the largest request body the server reads
MAX_LOG_BYTES = 32 * MAX_BODY_BYTES  # request bodies kept in one log; later entries keep all but the bodies


@dataclass
class LogEntry:
    """One request the server saw, and its answer. A GET has no token check, body or fixture; a POST whose body
    was not parsed (no token, not JSON, too large) has no endpoint or request."""
    method: str
    path: str
    status: int = 0
    seq: int = 0
    time: float = 0.0
    authorized: bool | None = None  # whether it carried the workspace token (POST only)
    endpoint: str | None = None  # "chat/completions" or a serving endpoint's name, once the body was parsed
    request: dict | None = None  # the parsed JSON body
    response: dict | None = None  # what the server answered (POST only)
    fixture_id: str | None = None  # the recorded (or scripted) interaction that answered it
    scripted: bool = False  # answered by a scripted fixture, not a recorded one
    bodies_dropped: bool = False  # request and response left out: the log's body budget was spent

    @property
    def is_post(self) -> bool:
        return self.method == "POST"

    def to_json(self) -> dict:
        """The entry as the log's JSONL holds it: the fields a request of its kind has, in a fixed order."""
        data = {"seq": self.seq, "time": self.time, "method": self.method, "path": self.path}
        if self.is_post:
            data["authorized"] = bool(self.authorized)
            if self.request is not None:
                data["endpoint"], data["request"] = self.endpoint, self.request
        data["status"] = self.status
        if self.is_post:
            data["fixture_id"] = self.fixture_id
            if not self.bodies_dropped:
                data["response"] = self.response
            data["scripted"] = self.scripted
        if self.bodies_dropped:
            data["bodies_dropped"] = True
        return data

    @classmethod
    def from_json(cls, data: dict) -> "LogEntry":
        """An entry read back from the log's JSONL (unknown keys are left out)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class RequestLog:
    """Every request the server saw, in order; optionally mirrored to JSONL. Its memory is bounded: once the
    bodies kept reach MAX_LOG_BYTES, a later entry is logged without its request and response."""

    def __init__(self, path: Path | None = None):
        self.entries: list[LogEntry] = []
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self.body_bytes = 0

    def append(self, entry: LogEntry, body_bytes: int = 0) -> None:
        with self._lock:
            if self.body_bytes + body_bytes > MAX_LOG_BYTES:
                entry = replace(entry, request=None, response=None, bodies_dropped=True)
            else:
                self.body_bytes += body_bytes
            entry.seq = len(self.entries)
            self.entries.append(entry)
            if self.path:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")

    def snapshot(self) -> list[LogEntry]:
        with self._lock:
            return copy.deepcopy(self.entries)


def write_request_log(log: list[LogEntry], path: Path, limit: int) -> None:
    """The request log as JSONL, at most `limit` bytes: past it, one line says how many entries were left out."""
    written = 0
    with open(path, "w", encoding="utf-8") as fh:
        for index, entry in enumerate(log):
            line = json.dumps(entry.to_json(), ensure_ascii=False) + "\n"
            if written + len(line.encode("utf-8")) > limit:
                fh.write(json.dumps({"truncated": True, "limit_bytes": limit, "entries_left_out": len(log) - index})
                         + "\n")
                return
            fh.write(line)
            written += len(line.encode("utf-8"))
