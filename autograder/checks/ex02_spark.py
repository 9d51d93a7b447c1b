"""ex02_spark, the Spark bonus: the requests its Pandas UDF sent, and the streaming query's result files, read back.

Spark runs in the student's sandbox; what counts is what the grader saw outside it: the fixture server's request log
(the UDF's requests and the answers they were served) and the JSON files the foreachBatch function wrote into the
notebook's folder, read here with bounded reads.
"""
from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

from ..evidence import Evidence, Exchange, Verdict, claim_matches, fail, ok, same_messages
from . import check

EX = "ex02_spark"
SCHEMA_NAME = "review_triage"
TRIAGE_KEYS = ("product_name", "sentiment", "needs_reply")
RESULTS_DIR = Path("spark_work") / "results"  # RESULTS_DIR, as ex02_spark_common makes it, under the notebook's folder
MAX_RESULT_BYTES = 1 << 20  # all result files together: four rows take a few hundred bytes
MAX_RESULT_FILES = 200


def _requests_for(ev: Evidence, text: str) -> list[Exchange]:
    """Every request (served or not) that sent this review as its last user message under the triage schema."""
    return [x for x in ev.exchanges if x.schema_name == SCHEMA_NAME and x.messages
            and x.messages[-1].get("role") == "user" and x.messages[-1].get("content") == text]


def _settings_ok(ev: Evidence, x: Exchange, text: str) -> bool:
    spec = (x.request.get("response_format") or {}).get("json_schema") or {}
    return (spec.get("strict") is True and x.request.get("model") == ev.chat_model
            and x.request.get("temperature") in (0, 0.0)
            and same_messages(x.messages, [("system", ev.inputs["TRIAGE_SYSTEM_PROMPT"]), ("user", text)]))


def _answer(x: Exchange) -> dict | None:
    try:
        answer = json.loads(x.reply.get("content") or "")
    except ValueError:
        return None
    return {k: answer.get(k) for k in TRIAGE_KEYS} if isinstance(answer, dict) else None


def _served_answer(ev: Evidence, review: dict) -> tuple[dict | None, Verdict | None]:
    """The answer the model gave for this review (its last served request), or the failure that explains its absence."""
    sent = _requests_for(ev, review["text"])
    if not sent:
        return None, fail("ex02_spark_request_missing", review_id=review["review_id"])
    if not all(_settings_ok(ev, x, review["text"]) for x in sent):
        return None, fail("ex02_spark_request_settings", review_id=review["review_id"], model=ev.chat_model)
    served = [x for x in sent if x.status == 200]
    if not served:
        return None, fail("ex02_spark_request_missing", review_id=review["review_id"])
    return _answer(served[-1]), None


@check(EX)
def udf_requests(ev: Evidence) -> Verdict:
    """B.1: the UDF sent each of BATCH_REVIEWS with the system prompt, the strict triage schema, the dictated model and
    temperature 0, and batch_results is what the model answered, review by review."""
    expected = []
    for review in ev.inputs["BATCH_REVIEWS"]:
        answer, failure = _served_answer(ev, review)
        if failure:
            return failure
        expected.append({"review_id": review["review_id"], **(answer or {})})
    return claim_matches(ev, "ex02_spark_batch", "batch_results", expected, mismatch="ex02_spark_udf_results")


@dataclass(frozen=True)
class ResultFiles:
    """The rows the foreachBatch function wrote (JSON lines in RESULTS_DIR), or why they cannot be read."""
    rows: tuple[dict, ...] = ()
    problem: str = ""  # "" when read; else missing or unreadable


def read_results(work_dir: Path | None) -> ResultFiles:
    """Spark's JSON output: part-*.json files of JSON lines (its _SUCCESS and .crc files are not rows). A link, a
    folder that is not one, an oversized output or a line that is not a JSON object is unreadable, never followed."""
    folder = Path(work_dir or ".") / RESULTS_DIR
    try:
        if not all(stat.S_ISDIR(p.lstat().st_mode) for p in (folder.parent, folder)):
            return ResultFiles(problem="unreadable")
    except OSError:
        return ResultFiles(problem="missing")
    rows, total = [], 0
    entries = sorted(folder.iterdir())
    if len(entries) > MAX_RESULT_FILES:
        return ResultFiles(problem="unreadable")
    for path in entries:
        if not path.name.endswith(".json") or path.name.startswith((".", "_")):
            continue
        info = path.lstat()
        total += info.st_size
        if not stat.S_ISREG(info.st_mode) or total > MAX_RESULT_BYTES:
            return ResultFiles(problem="unreadable")
        try:
            lines = path.read_bytes()[:info.st_size].decode("utf-8").splitlines()
            parsed = [json.loads(line) for line in lines if line.strip()]
        except (OSError, ValueError):
            return ResultFiles(problem="unreadable")
        if not all(isinstance(row, dict) for row in parsed):
            return ResultFiles(problem="unreadable")
        rows += parsed
    return ResultFiles(tuple(rows))


@check(EX)
def stream_results(ev: Evidence) -> Verdict:
    """B.2: the files in RESULTS_DIR hold each streamed review once, as the model answered it (so the stream sent it),
    and the reviews of one delivered file share a micro-batch that the other file's do not."""
    found = read_results(ev.work_dir)
    if found.problem == "missing":
        return fail("ex02_spark_results_missing")
    if found.problem:
        return fail("ex02_spark_results_unreadable")
    files = ev.inputs["STREAM_FILES"]
    wanted = [review for delivered in files for review in delivered]
    ids = [row.get("review_id") for row in found.rows]
    for review in wanted:
        if ids.count(review["review_id"]) != 1:
            return fail("ex02_spark_stream_rows", review_id=review["review_id"], count=ids.count(review["review_id"]))
    if len(ids) != len(wanted):
        return fail("ex02_spark_stream_extra_rows", count=len(ids), expected=len(wanted))
    by_id = {row["review_id"]: row for row in found.rows}
    for review in wanted:
        answer, failure = _served_answer(ev, review)
        if failure:
            return failure
        if {k: by_id[review["review_id"]].get(k) for k in TRIAGE_KEYS} != answer:
            return fail("ex02_spark_stream_answer", review_id=review["review_id"])
    batches = [{json.dumps(by_id[r["review_id"]].get("batch_id")) for r in delivered} for delivered in files]
    if any(len(b) != 1 for b in batches) or len(set().union(*batches)) != len(files):
        return fail("ex02_spark_stream_batches", files=len(files))
    return ok()
