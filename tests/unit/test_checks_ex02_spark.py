"""ex02_spark (the Spark bonus) evidence checks: synthetic request logs replayed from its cassette, and result
folders written as Spark's JSON writer writes them (part files of JSON lines, _SUCCESS and .crc beside them)."""
from __future__ import annotations

import json
import os

import pytest

import builders as b
from autograder.checks import get_check
from autograder.checks.ex02_spark import RESULTS_DIR

EX = "ex02_spark"
INPUTS = b.inputs(EX)


def run(name, log, claims=None, **fields):
    return get_check(EX, name)(b.evidence(EX, log, claims, **fields))


def request_of(log, review) -> dict:
    return b.one(log, user=review["text"])


def batch_claims(log) -> dict:
    """What the solution reports in ex02_spark_batch: one record per BATCH_REVIEWS review, as the model answered."""
    records = [{"review_id": r["review_id"], **b.reply_json(request_of(log, r))} for r in INPUTS["BATCH_REVIEWS"]]
    return {"ex02_spark_batch": {"batch_results": records}}


def write_results(work, log, rows_of=None, files=None):
    """Spark's output for the streamed reviews: one part file per micro-batch (the delivered file's index)."""
    folder = work / RESULTS_DIR
    folder.mkdir(parents=True)
    (folder / "_SUCCESS").write_text("")
    for batch_id, delivered in enumerate(files or INPUTS["STREAM_FILES"]):
        rows = [{"review_id": r["review_id"], **b.reply_json(request_of(log, r)), "batch_id": batch_id} for r in delivered]
        rows = rows_of(batch_id, rows) if rows_of else rows
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (folder / f"part-0000{batch_id}-abc.json").write_text(text, encoding="utf-8")
        (folder / f".part-0000{batch_id}-abc.json.crc").write_bytes(b"crc")
    return work


@pytest.fixture
def log():
    return b.cassette_log(EX)


def test_udf_requests_passes_on_the_solution_log(log):
    assert run("udf_requests", log, batch_claims(log)).passed


def test_udf_requests_fails_without_a_reviews_request(log):
    dropped = request_of(log, INPUTS["BATCH_REVIEWS"][2])
    verdict = run("udf_requests", b.without(log, [dropped]), batch_claims(log))
    assert (verdict.code, verdict.fields["review_id"]) == ("ex02_spark_request_missing", "r03")


def test_udf_requests_fails_when_the_request_was_refused(log):
    refused = request_of(log, INPUTS["BATCH_REVIEWS"][0])
    verdict = run("udf_requests", [b.rejected(e) if e is refused else e for e in log], batch_claims(log))
    assert (verdict.code, verdict.fields["review_id"]) == ("ex02_spark_request_missing", "r01")


@pytest.mark.parametrize("change", [
    lambda req: req.update(temperature=0.7),
    lambda req: req.update(model="databricks-gpt-oss-20b"),
    lambda req: req["response_format"]["json_schema"].update(strict=False),
    lambda req: req.update(messages=req["messages"][1:]),
], ids=["temperature", "model", "not_strict", "no_system_prompt"])
def test_udf_requests_fails_on_a_request_sent_otherwise(log, change):
    sent = request_of(log, INPUTS["BATCH_REVIEWS"][1])
    change(sent.request)
    verdict = run("udf_requests", log, batch_claims(log))
    assert (verdict.code, verdict.fields["review_id"]) == ("ex02_spark_request_settings", "r02")


def test_udf_requests_fails_when_batch_results_differ_from_the_answers(log):
    claims = batch_claims(log)
    claims["ex02_spark_batch"]["batch_results"][2]["needs_reply"] = False
    assert run("udf_requests", log, claims).code == "ex02_spark_udf_results"


def test_udf_requests_fails_without_batch_results(log):
    assert run("udf_requests", log, {}).code == "claim_missing"


def test_stream_results_passes_on_the_solutions_files(log, tmp_path):
    assert run("stream_results", log, work_dir=write_results(tmp_path, log)).passed


def test_stream_results_fails_without_the_results_folder(log, tmp_path):
    assert run("stream_results", log, work_dir=tmp_path).code == "ex02_spark_results_missing"


def test_stream_results_fails_on_a_linked_results_folder(log, tmp_path):
    real = write_results(tmp_path / "real", log)
    (tmp_path / "spark_work").mkdir()
    os.symlink(real / RESULTS_DIR, tmp_path / RESULTS_DIR)
    assert run("stream_results", log, work_dir=tmp_path).code == "ex02_spark_results_unreadable"


def test_stream_results_fails_on_a_linked_part_file(log, tmp_path):
    work = write_results(tmp_path, log)
    os.symlink("/etc/passwd", work / RESULTS_DIR / "part-9.json")
    assert run("stream_results", log, work_dir=work).code == "ex02_spark_results_unreadable"


@pytest.mark.parametrize("content", [b"not json\n", b"[1, 2]\n", b"\xff\xfe\n", b" " * (1 << 20) + b"{}\n"],
                         ids=["not_json", "not_an_object", "not_utf8", "oversized"])
def test_stream_results_fails_on_an_unreadable_part_file(log, tmp_path, content):
    work = write_results(tmp_path, log)
    (work / RESULTS_DIR / "part-9.json").write_bytes(content)
    assert run("stream_results", log, work_dir=work).code == "ex02_spark_results_unreadable"


def test_stream_results_fails_when_the_first_file_was_processed_twice(log, tmp_path):
    first, second, third = INPUTS["STREAM_FILES"]
    work = write_results(tmp_path, log, files=[first, second, first + second + third])  # a run without its checkpoint
    verdict = run("stream_results", log, work_dir=work)
    assert (verdict.code, verdict.fields["review_id"], verdict.fields["count"]) == ("ex02_spark_stream_rows", "r06", 2)


def test_stream_results_fails_when_the_second_batch_overwrote_the_first(log, tmp_path):
    work = write_results(tmp_path, log, files=INPUTS["STREAM_FILES"][2:])  # each batch replaced the one before
    verdict = run("stream_results", log, work_dir=work)
    assert (verdict.code, verdict.fields["count"]) == ("ex02_spark_stream_rows", 0)


def test_stream_results_fails_on_a_row_for_no_streamed_review(log, tmp_path):
    extra = {"review_id": "r01", **b.reply_json(request_of(log, INPUTS["BATCH_REVIEWS"][0])), "batch_id": 1}
    work = write_results(tmp_path, log, rows_of=lambda batch_id, rows: rows + [extra] * batch_id)
    assert run("stream_results", log, work_dir=work).code == "ex02_spark_stream_extra_rows"


def test_stream_results_fails_on_a_row_unlike_the_models_answer(log, tmp_path):
    flip = lambda batch_id, rows: [{**r, "needs_reply": not r["needs_reply"]} if r["review_id"] == "r09" else r for r in rows]
    verdict = run("stream_results", log, work_dir=write_results(tmp_path, log, rows_of=flip))
    assert (verdict.code, verdict.fields["review_id"]) == ("ex02_spark_stream_answer", "r09")


def test_stream_results_fails_on_rows_written_without_asking_the_model(log, tmp_path):
    streamed = [request_of(log, r) for delivered in INPUTS["STREAM_FILES"] for r in delivered]
    work = write_results(tmp_path, log)
    verdict = run("stream_results", b.without(log, streamed), work_dir=work)
    assert (verdict.code, verdict.fields["review_id"]) == ("ex02_spark_request_missing", "r06")


@pytest.mark.parametrize("batch_of", [lambda batch_id, i: 0, lambda batch_id, i: i, lambda batch_id, i: None],
                         ids=["one_batch", "a_batch_per_row", "no_batch_id"])
def test_stream_results_fails_unless_each_file_is_one_micro_batch(log, tmp_path, batch_of):
    regroup = lambda batch_id, rows: [{**r, "batch_id": batch_of(batch_id, i)} for i, r in enumerate(rows)]
    verdict = run("stream_results", log, work_dir=write_results(tmp_path, log, rows_of=regroup))
    assert (verdict.code, verdict.fields["files"]) == ("ex02_spark_stream_batches", 3)
