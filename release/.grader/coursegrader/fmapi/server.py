"""The fixture server: a loopback fake of the Databricks serving-endpoints API.

Replay mode answers from cassettes; record mode proxies to a real workspace
and writes what it sees into a cassette. Every request goes into a log that
the grader reads from this process, out of the student kernel's reach.
"""
from __future__ import annotations

import copy
import datetime as _dt
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import socketserver
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..config import CASSETTE_DIR, Course
from . import matchers
from .cassette import Cassette, CassetteLibrary, Interaction
from .conform import conform_answer
from .log import MAX_BODY_BYTES, LogEntry, RequestLog
from .persister import load_cassette, load_cassettes, save_cassette
from .validation import RequestRejected, check_request

CHAT_PATH = "/serving-endpoints/chat/completions"
INVOCATIONS_PATH = re.compile(r"^/serving-endpoints/(?P<name>[^/]+)/invocations$")
WELL_KNOWN_PATH = "/.well-known/databricks-config"
SHUTDOWN_POLL_S = 0.02  # how often serve_forever looks for shutdown (its default 0.5 s, twice, per exercise)


class Upstream:
    """A real (or fake) Databricks workspace to proxy to in record mode."""

    def __init__(self, host: str, token: str, timeout_s: float = 120.0):
        self.host = host.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        req = urllib.request.Request(
            self.host + path,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")


def error_body(status: int, code: str, message: str) -> dict:
    """Databricks' error shape, with an OpenAI-style `error` so both clients read it."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error_code": code, "message": message, "error": {"message": message, "type": kind, "code": code}}


class FixtureServer:
    """Start with `with FixtureServer(...) as server:`; point clients at server.env()."""

    def __init__(
        self,
        cassette_dir: Path = CASSETTE_DIR,
        *,
        cassettes: list[Cassette] | None = None,
        token: str | None = None,
        port: int = 0,
        log_path: Path | None = None,
        upstream: Upstream | None = None,
        record_to: Path | None = None,
        course: Course,
    ):
        self.course = course
        self.token = token or "dapi-fixture-" + secrets.token_hex(8)
        self.log = RequestLog(log_path)
        self.upstream = upstream
        self.record_to = Path(record_to) if record_to else None
        if upstream:
            self.recording = load_cassette(self.record_to) if self.record_to and self.record_to.exists() else Cassette(
                name=self.record_to.stem if self.record_to else "recorded",
                meta={"recorded_from": self.course.redacted_host},
            )
            self.library = CassetteLibrary([self.recording])
        else:
            self.library = CassetteLibrary(cassettes if cassettes is not None else load_cassettes(cassette_dir))
        self._signatures = {id(i): matchers.signature(i.request["body"]) for i in self.library.interactions}
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._unix: list[socketserver.BaseServer] = []

    # -- lifecycle -------------------------------------------------------
    def start(self) -> "FixtureServer":
        handler = type("Handler", (_Handler,), {"server_app": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(SHUTDOWN_POLL_S,),
                                        name="fixture-server", daemon=True)
        self._thread.start()
        return self

    def serve_unix(self, path: Path) -> Path:
        """Also serve on a Unix socket (a sandbox without network reaches us through it); any local user may connect."""
        handler = type("Handler", (_Handler,), {"server_app": self})
        httpd = _UnixHTTPServer(str(path), handler)
        Path(path).chmod(0o666)
        threading.Thread(target=httpd.serve_forever, args=(SHUTDOWN_POLL_S,), name="fixture-server-unix",
                         daemon=True).start()
        self._unix.append(httpd)
        return Path(path)

    def stop(self) -> None:
        for httpd in self._unix:
            httpd.shutdown()
            httpd.server_close()
        self._unix.clear()
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FixtureServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """What a kernel needs so that unchanged student code talks to this server."""
        return {"DATABRICKS_HOST": self.url, "DATABRICKS_TOKEN": self.token}

    # -- request handling -----------------------------------------------
    def well_known(self) -> dict:
        return {
            "oidc_endpoint": f"{self.url}/oidc",
            "workspace_id": self.course.workspace_id,
            "cloud": "aws",
        }

    def handle_chat(self, path: str, endpoint: str, body: dict) -> tuple[int, dict, str | None]:
        """Returns (status, response body, fixture id)."""
        if endpoint != "chat/completions":
            body = {**body, "model": body.get("model") or endpoint}
        try:
            check_request(body)
        except RequestRejected as err:
            return 400, error_body(400, err.code, err.message), None
        if self.upstream:
            return self._record(path, endpoint, body)
        return self._replay(body)

    def _replay(self, body: dict) -> tuple[int, dict, str | None]:
        live = matchers.signature(body)
        ranked = []
        for interaction in self.library.interactions:
            recorded = self._signatures[id(interaction)]
            if not matchers.mismatches(recorded, live):
                response = self.library.serve(interaction)
                return response["status"], conform_answer(body, _fresh(response["body"])), interaction.id
            ranked.append((matchers.similarity(recorded, live), interaction, recorded))
        for scripted in self.library.scripted:
            if scripted.matches(live):
                response = scripted.respond(body)
                return response["status"], conform_answer(body, response["body"]), scripted.id
        ranked.sort(key=lambda t: -t[0])
        hints = "; ".join(
            f"[{i.id}] {i.title!r}: {', '.join(matchers.mismatches(rec, live))}" for _, i, rec in ranked[:3]
        )
        message = (
            "記録済みのフィクスチャに一致するリクエストがありません。課題で指定されたプロンプト・設定のまま送っているか確認してください。"
            f" / No recorded fixture matches this request. Closest: {hints or 'none'}"
        )
        return 400, error_body(400, "NO_MATCHING_FIXTURE", message), None

    def _record(self, path: str, endpoint: str, body: dict) -> tuple[int, dict, str | None]:
        status, response = self.upstream.post(path, body)
        live = matchers.signature(body)
        with self.library._lock:
            for interaction in self.recording.interactions:
                if self._signatures[id(interaction)] == live:
                    interaction.responses.append({"status": status, "body": response})
                    break
            else:
                interaction = Interaction(
                    id=f"{self.recording.name}-{len(self.recording.interactions) + 1:03d}",
                    title=_title(body),
                    request={"endpoint": endpoint, "body": body},
                    responses=[{"status": status, "body": response}],
                )
                self.recording.interactions.append(interaction)
                self._signatures[id(interaction)] = live
            self.recording.meta["recorded_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            if self.record_to:
                save_cassette(
                    self.recording,
                    self.record_to,
                    secrets={self.upstream.host: self.course.redacted_host, self.upstream.token: "<redacted-token>"},
                )
        return status, response, interaction.id


def _title(body: dict) -> str:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return matchers.normalize_text(users[-1].get("content"))[:50] if users else ""


def _fresh(body: dict) -> dict:
    """A replayed body is a copy, so one client cannot alter another's replay."""
    return copy.deepcopy(body)


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _content_length(headers) -> int | None:
    """The body's length: a non-negative Content-Length, 0 where there is none and no Transfer-Encoding;
    None for anything else (negative, not a number, chunked), which is refused without reading the body."""
    value = headers.get("Content-Length")
    if value is None:
        return None if headers.get("Transfer-Encoding") else 0
    value = value.strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


class _Handler(BaseHTTPRequestHandler):
    server_app: FixtureServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # the request log replaces stderr noise
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {self.server_app.token}"

    def do_GET(self) -> None:
        app = self.server_app
        if self.path.split("?")[0] == WELL_KNOWN_PATH:
            status, body = 200, app.well_known()
        else:
            status, body = 404, error_body(404, "NOT_FOUND", f"No API found for GET {self.path}")
        app.log.append(LogEntry("GET", self.path, status, time=time.time()))
        self._send(status, body)

    def do_POST(self) -> None:
        app = self.server_app
        path = self.path.split("?")[0]
        entry = LogEntry("POST", path, time=time.time(), authorized=self._authorized())
        length = _content_length(self.headers)
        raw = self.rfile.read(length) if length and length <= MAX_BODY_BYTES else b""
        match = INVOCATIONS_PATH.match(path)
        endpoint = "chat/completions" if path == CHAT_PATH else (match.group("name") if match else None)
        fixture_id = None
        if length is None or length > MAX_BODY_BYTES:  # the body is not read: the connection closes after the answer
            self.close_connection = True
            status, body = (411, error_body(411, "LENGTH_REQUIRED", "A request body needs a valid Content-Length.")) \
                if length is None else \
                (413, error_body(413, "REQUEST_TOO_LARGE", f"Request body over {MAX_BODY_BYTES} bytes ({length})."))
        elif endpoint is None:
            status, body = 404, error_body(404, "ENDPOINT_NOT_FOUND", f"No serving endpoint at {path}")
        elif not entry.authorized:
            status, body = 401, error_body(401, "UNAUTHENTICATED", "Invalid access token.")
        else:
            try:
                request = json.loads(raw or b"{}")
                if not isinstance(request, dict):
                    raise ValueError("body must be a JSON object")
            except ValueError as err:
                request = None
                status, body = 400, error_body(400, "MALFORMED_REQUEST", f"Request body is not valid JSON: {err}")
            else:
                entry.endpoint, entry.request = endpoint, request
                try:
                    status, body, fixture_id = app.handle_chat(path, endpoint, request)
                except Exception as err:  # noqa: BLE001 - a bad request must never kill the server
                    status, body = 500, error_body(500, "INTERNAL_ERROR", f"fixture server error: {err}")
        entry.status, entry.fixture_id, entry.response = status, fixture_id, body
        entry.scripted = fixture_id in {s.id for s in app.library.scripted}
        app.log.append(entry, body_bytes=len(raw))
        self._send(status, body)
